"""Asyncio client for the appointment endpoints of the PerfectGym Next (Magicline) Open API.

    async with AppointmentsClient(api_key=..., base_url=...) as client:
        async for appointment in client.bookable_appointments():
            ...

The hand-written facade lives in the modules next to this one; the generated layer (models and
endpoint functions made by openapi-python-client from openapi.yaml) is ``_generated``.
"""

from ._booking import BookingOutcome, OutcomeKind
from ._client import AppointmentsClient
from ._display import Rows, SlotsChart, slots_chart, slots_per_day_and_instructor, to_rows
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BookingError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NoSlotAvailableError,
    NotFoundError,
    PaginationError,
    PerfectGymError,
    PermissionDeniedError,
    RateLimitError,
    RescheduleError,
    ResponseValidationError,
    ServiceUnavailableError,
    SlotNotBookableError,
)
from ._models import (
    AppointmentStatus,
    BookableAppointment,
    Booking,
    BookingStatus,
    Instructor,
    Page,
    ParticipantStatus,
    Slot,
    SlotLike,
    ValidationStatus,
)
from ._pagination import AsyncPaginator
from ._retry import RetryPolicy
from ._throttling import RateLimit
from ._version import API_VERSION, __version__
from ._zoned import ZonedDateTime, format_zoned_datetime, parse_zoned_datetime

__all__ = [
    "API_VERSION",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AppointmentStatus",
    "AppointmentsClient",
    "AsyncPaginator",
    "AuthenticationError",
    "BadRequestError",
    "BookableAppointment",
    "Booking",
    "BookingError",
    "BookingIdUnknownError",
    "BookingOutcome",
    "BookingOutcomeUnknownError",
    "BookingStatus",
    "ConfigurationError",
    "ConflictError",
    "Instructor",
    "InternalServerError",
    "NoSlotAvailableError",
    "NotFoundError",
    "OutcomeKind",
    "Page",
    "PaginationError",
    "ParticipantStatus",
    "PerfectGymError",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "RescheduleError",
    "ResponseValidationError",
    "RetryPolicy",
    "Rows",
    "ServiceUnavailableError",
    "Slot",
    "SlotLike",
    "SlotNotBookableError",
    "SlotsChart",
    "ValidationStatus",
    "ZonedDateTime",
    "__version__",
    "format_zoned_datetime",
    "parse_zoned_datetime",
    "slots_chart",
    "slots_per_day_and_instructor",
    "to_rows",
]
