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

from typing import Any

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


class _Delete:
    """``delete_appointment_booking``, refusing what is no confirmation though its schema allows it.

    The official ``VoidResult`` requires nothing, so an error's body sent with a 200 (a proxy, a
    failing gateway) would parse as a cancel without text, and optional fields are kept as sent,
    so ``success`` could be a list. Both are refused, naming the field: the request layer makes
    that a ResponseValidationError, and the booking is read back like after any other
    unreadable success.
    """

    OPERATION_ID = delete_appointment_booking.OPERATION_ID
    METHOD = delete_appointment_booking.METHOD
    REQUIRED_SCOPE = delete_appointment_booking.REQUIRED_SCOPE
    SUCCESS_STATUSES = delete_appointment_booking.SUCCESS_STATUSES
    build_request = staticmethod(delete_appointment_booking.build_request)

    @staticmethod
    def parse_response(status_code: int, data: Any) -> CancelResult:
        result = delete_appointment_booking.parse_response(status_code, data)
        text: object = result.success
        if text is None and "errorMessage" in result.additional_properties:
            raise TypeError("errorMessage: an error's body sent with a success status")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"success: expected str or null, got {type(text).__name__}")
        return result


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
    result: CancelResult | str = await api.request(_Delete(), booking_id, decide=decide)
    if isinstance(result, str):
        return result
    # A 200 is the cancel done; its text is optional, and an empty one tells nothing to show.
    return result.success or CANCELED
