"""Cancelling a booking: repeated only when the request surely did nothing; after an ambiguous
failure (or a 409: someone else changed it) the booking is read back, and canceled by then is
done. Cancelling a booking that is already canceled is done too (the API's 400
``errormessage.appointment.booking.already.canceled`` becomes :data:`ALREADY_CANCELED`): a
resubmitted cancel, or one racing the studio's staff, wants the booking canceled, and it is.

What a cancel returns is the server's confirmation text when it sent one (the official
``VoidResult.success``, a string, which is optional: ``{}`` is a valid answer), else one of two
constants, never a sentence made up to look like the server's: :data:`CANCELED` (canceled, with
no text from the server: ``{}``, or an unclear answer and the booking read back canceled) and
:data:`ALREADY_CANCELED` (it was canceled before this call)."""

from __future__ import annotations

import anyio

from .._exceptions import (
    APIError,
    BadRequestError,
    BookingOutcomeUnknownError,
    ConflictError,
    NotFoundError,
    PerfectGymError,
    ResponseValidationError,
)
from .._generated.api.appointments import delete_appointment_booking
from .._generated.models import CancelResult
from .._retry import Resolved
from ._check import BookingCheck
from ._evidence import ambiguous, never_arrived
from ._outcome import BookingOutcome, OutcomeKind


async def cancel(check: BookingCheck, booking_id: int) -> tuple[str, BookingOutcome]:
    """``cancel_once``, and the outcome it is reported as."""
    message = await cancel_once(check, booking_id)
    return message, BookingOutcome(operation="cancel", kind=OutcomeKind.CANCELED, booking_id=booking_id)


__all__ = ["ALREADY_CANCELED", "CANCELED", "cancel", "cancel_once"]

CANCELED = "canceled"
"""Returned for a cancel the server confirmed without text, or found done by reading it back."""
ALREADY_CANCELED = "already canceled"
"""Returned for a booking that was canceled before this call (nothing was changed)."""
_ALREADY_CANCELED_CODE = "errormessage.appointment.booking.already.canceled"


async def cancel_once(check: BookingCheck, booking_id: int) -> str:
    """One cancel (with its safe repeats); returns the server's confirmation text, or
    :data:`CANCELED` / :data:`ALREADY_CANCELED`."""
    api = check.ops.api
    sent_again = False

    async def decide(exc: APIError, can_retry: bool) -> bool | Resolved:
        nonlocal sent_again
        if not sent_again and isinstance(exc, BadRequestError) and exc.error_code == _ALREADY_CANCELED_CODE:
            return Resolved(ALREADY_CANCELED)
        if never_arrived(exc):
            sent_again = sent_again or can_retry
            return api.retry_policy.is_retryable(exc)
        # "Already canceled" after our own repeat means our first request did it.
        if not ambiguous(exc) and not (sent_again and isinstance(exc, BadRequestError)):
            return False
        await anyio.sleep(check.settle)
        try:
            if (await check.look(lambda: check.ops.get_booking(booking_id))).is_canceled:
                return Resolved(CANCELED)
        except NotFoundError:
            return False
        except PerfectGymError as read_error:
            raise BookingOutcomeUnknownError(
                f"cancelling booking {booking_id} failed ambiguously ({exc}) and reading it back failed "
                f"too ({read_error}): it may or may not be canceled; get_booking({booking_id}) tells",
                customer_id=None,
                cause=exc,
            ) from read_error
        if isinstance(exc, ResponseValidationError):
            return False  # a success status we cannot read, and the booking still active
        retry = api.retry_policy.is_retryable(exc) or isinstance(exc, ConflictError)
        sent_again = sent_again or (retry and can_retry)
        return retry

    # Resolved by decide: one of the constants.
    result: CancelResult | str = await api.request(delete_appointment_booking, booking_id, decide=decide)
    if isinstance(result, str):
        return result
    # A 200 is the cancel done; its text is optional, and an empty one or one of another type
    # (optional fields are kept as sent) tells nothing a caller could show.
    text: object = result.success
    return text if isinstance(text, str) and text else CANCELED
