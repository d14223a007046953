"""What a failed request says about itself (never arrived, ambiguous, refused) and the errors
that state what the booking check could or could not prove."""

from __future__ import annotations

import datetime as dt

import attrs

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    BadRequestError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    ConflictError,
    RateLimitError,
    ResponseValidationError,
)
from .._generated.models import AppointmentBookingRequest
from .._models import Booking, ValidationStatus
from .._zoned import instant

LIST_WINDOW = dt.timedelta(days=14)
# Our clock and the server's differ a little; a slot this close to the window's edge may or may
# not be listed, so the list is not trusted to show it.
LIST_MARGIN = dt.timedelta(hours=1)


@attrs.define
class Evidence:
    made: bool | None  # None: unknown
    booking: Booking | None = None
    detail: str = ""
    # Not made by this request, as far as it can be told: the customer holds this booking of the
    # same appointment at that instant, and another call of this client made or returned it.
    held: Booking | None = None


def never_arrived(exc: APIError) -> bool:
    """A 429, or a request that never left: the server did nothing, so sending again is safe."""
    if isinstance(exc, RateLimitError):
        return True
    return isinstance(exc, APIConnectionError) and not exc.may_have_reached_server


def ambiguous(exc: BaseException) -> bool:
    """The request may have been carried out: no answer after sending, a 5xx, a 409 (concurrent
    modification), or a success status whose body cannot be read."""
    if isinstance(exc, APIConnectionError):
        return exc.may_have_reached_server
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or isinstance(exc, ConflictError)
    return isinstance(exc, ResponseValidationError)


def refusal_status(exc: BaseException) -> ValidationStatus | None:
    """The ValidationStatus a 400 to a booking request names as its errorCode, if it names one."""
    if not isinstance(exc, BadRequestError):
        return None
    code = exc.error_code
    if code is not None and code in ValidationStatus.__members__:
        return ValidationStatus(code)
    for kind, value in exc.typed_args:
        if kind == "ENUM" and isinstance(value, str) and value in ValidationStatus.__members__:
            return ValidationStatus(value)
    return None


def in_list_window(body: AppointmentBookingRequest, now: dt.datetime) -> bool:
    """Whether the bookings list (+/- 2 weeks around now) surely shows a booking of this slot."""
    earliest, latest = instant(now - LIST_WINDOW + LIST_MARGIN), instant(now + LIST_WINDOW - LIST_MARGIN)
    return instant(body.start_date_time) >= earliest and instant(body.end_date_time) <= latest


def id_unknown(body: AppointmentBookingRequest, cause: APIError, detail: str) -> BookingIdUnknownError:
    visible_from = (body.end_date_time - LIST_WINDOW).astimezone(body.start_date_time.tzinfo).date()
    return BookingIdUnknownError(
        f"customer {body.customer_id} is booked on bookable appointment {body.bookable_appointment_id} at "
        f"{body.start_date_time.isoformat()} ({detail}), but the booking's id cannot be read yet: the "
        f"bookings list shows only two weeks ahead; list_bookings({body.customer_id}) shows it from "
        f"{visible_from.isoformat()} on. The request failed with: {cause}",
        customer_id=body.customer_id,
        bookable_appointment_id=body.bookable_appointment_id,
        start_date_time=body.start_date_time,
        end_date_time=body.end_date_time,
        visible_from=visible_from,
        cause=cause,
    )


def unknown(body: AppointmentBookingRequest, cause: APIError, why: str) -> BookingOutcomeUnknownError:
    return BookingOutcomeUnknownError(
        f"booking for customer {body.customer_id} on bookable appointment {body.bookable_appointment_id} at "
        f"{body.start_date_time.isoformat()} failed ambiguously ({cause}) and {why}; nothing was "
        "repeated: list the customer's bookings (or validate the slot) before trying again",
        customer_id=body.customer_id,
        cause=cause,
        bookable_appointment_id=body.bookable_appointment_id,
        start_date_time=body.start_date_time,
        end_date_time=body.end_date_time,
    )
