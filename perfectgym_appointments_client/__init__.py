"""Asyncio client for the appointment endpoints of the PerfectGym Next (Magicline) Open API.

    async with AppointmentsClient(api_key=..., base_url=...) as client:
        async for appointment in client.bookable_appointments():
            ...

The hand-written facade lives in the modules next to this one; the generated layer (models and
operations made by openapi-python-client from openapi.yaml) is ``_generated``.
"""

from typing import TYPE_CHECKING, Any

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
    CircuitOpenError,
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
from ._version import API_VERSION, __version__

if TYPE_CHECKING:
    from ._booking import BookingOutcome, OutcomeKind
    from ._booking._cancel import ALREADY_CANCELED, CANCELED
    from ._breaker import CircuitBreaker
    from ._call_options import CallOptions
    from ._client import AppointmentsClient
    from ._display import Rows, SlotsChart, slots_chart, slots_per_day_and_instructor, to_dataframe, to_rows
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
    from ._telemetry import Telemetry
    from ._throttling import RateLimit
    from ._zoned import ZonedDateTime, format_zoned_datetime, parse_zoned_datetime

# Imported on first use (PEP 562): ``import perfectgym_appointments_client`` loads the exception
# tree and the versions only, so a program that imports it (a CLI's --help, a web app's module
# scan) does not pay for attrs, the generated models and the request layer until it names them.
# ``from perfectgym_appointments_client import AppointmentsClient`` loads the client and what
# it needs (benchmarks/RESULTS.md has both figures).
_LAZY = {
    "AppointmentsClient": "_client",
    "AppointmentStatus": "_models",
    "BookableAppointment": "_models",
    "Booking": "_models",
    "BookingStatus": "_models",
    "Instructor": "_models",
    "Page": "_models",
    "ParticipantStatus": "_models",
    "Slot": "_models",
    "SlotLike": "_models",
    "ValidationStatus": "_models",
    "AsyncPaginator": "_pagination",
    "RetryPolicy": "_retry",
    "RateLimit": "_throttling",
    "CircuitBreaker": "_breaker",
    "Telemetry": "_telemetry",
    "CallOptions": "_call_options",
    "ZonedDateTime": "_zoned",
    "format_zoned_datetime": "_zoned",
    "parse_zoned_datetime": "_zoned",
    "BookingOutcome": "_booking",
    "CANCELED": "_booking._cancel",
    "ALREADY_CANCELED": "_booking._cancel",
    "OutcomeKind": "_booking",
    "Rows": "_display",
    "SlotsChart": "_display",
    "slots_chart": "_display",
    "slots_per_day_and_instructor": "_display",
    "to_dataframe": "_display",
    "to_rows": "_display",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ALREADY_CANCELED",
    "API_VERSION",
    "CANCELED",
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
    "CallOptions",
    "CircuitBreaker",
    "CircuitOpenError",
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
    "Telemetry",
    "ValidationStatus",
    "ZonedDateTime",
    "__version__",
    "format_zoned_datetime",
    "parse_zoned_datetime",
    "slots_chart",
    "slots_per_day_and_instructor",
    "to_dataframe",
    "to_rows",
]
