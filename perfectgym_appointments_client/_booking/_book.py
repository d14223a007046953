"""One booking request and what follows it: repeated only on evidence (rules 1 and 2), and after
a repeat, a duplicate both requests made is canceled (rule 3)."""

from __future__ import annotations

import anyio

from .._exceptions import (
    APIError,
    ConflictError,
    PerfectGymError,
    ResponseValidationError,
    SlotNotBookableError,
)
from .._generated.api.appointments import book_appointment_booking
from .._generated.models import AppointmentBooking, AppointmentBookingRequest
from .._models import Booking, ValidationStatus
from .._request import logger
from .._retry import Resolved
from ._cancel import cancel_once
from ._check import BookingCheck, booking_id
from ._evidence import ambiguous, id_unknown, never_arrived, refusal_status
from ._outcome import BookingOutcome, OutcomeKind, outcome


async def book(
    check: BookingCheck, body: AppointmentBookingRequest, validated: bool
) -> tuple[Booking, BookingOutcome]:
    """``book_once``, and the outcome it is reported as."""
    booking, duplicates = await book_once(check, body, validated)
    kind = OutcomeKind.ALREADY_BOOKED if booking.already_existed else OutcomeKind.BOOKED
    return booking, outcome("book", kind, body, booking.booking_id, duplicates)


__all__ = ["book", "book_once", "held_or_none"]


async def book_once(
    check: BookingCheck, body: AppointmentBookingRequest, validated: bool
) -> tuple[Booking, tuple[int, ...]]:
    """The booking request and its check. Returns the booking and any duplicate it canceled.

    ``validated``: the caller just saw the slot validate AVAILABLE (evidence the check can use).
    """
    api = check.ops.api
    repeated = False

    def refused_error(refused: ValidationStatus) -> SlotNotBookableError:
        return SlotNotBookableError(
            refused, customer_id=body.customer_id, bookable_appointment_id=body.bookable_appointment_id
        )

    async def decide(exc: APIError, can_retry: bool) -> bool | Resolved:
        nonlocal repeated
        refused = refusal_status(exc)
        # A refusal is an answer: nothing was booked by this request. But after a repeat,
        # "customer in other booking" may be our first request, committed late.
        if refused is not None and not (repeated and refused is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING):
            if refused is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING:
                held = await held_or_none(check, body)
                if held is not None:  # a resubmit: the member holds exactly this booking already
                    return Resolved(held)
            raise refused_error(refused) from exc
        if never_arrived(exc):  # sending again cannot make a second booking
            return api.retry_policy.is_retryable(exc)
        if not ambiguous(exc) and refused is None:
            return False  # 400/401/403/404: an answer, and nothing was made
        evidence = await check(body, validated, exc)
        if evidence.held is not None:
            return Resolved(evidence.held)
        if evidence.made:
            if evidence.booking is not None:
                logger.warning(
                    "bookAppointmentBooking failed (%s) but booking %s was made; returning it",
                    exc, evidence.booking.booking_id,
                )  # fmt: skip
                return Resolved(evidence.booking)
            raise id_unknown(body, exc, evidence.detail)
        # Proven: nothing was made. A refusal says why; a success status we could not read is
        # not worth repeating; any other failure is, if the policy allows.
        if refused is not None:
            raise refused_error(refused) from exc
        if isinstance(exc, ResponseValidationError):
            return False
        retry = api.retry_policy.is_retryable(exc) or isinstance(exc, ConflictError)
        repeated = repeated or (retry and can_retry)
        return retry

    # Resolved by the check: the Booking a failed request did make.
    result: AppointmentBooking | Booking = await api.request(
        book_appointment_booking, body=body, decide=decide
    )
    booking = (
        result if isinstance(result, Booking) else Booking.from_api(result, customer_id=body.customer_id)
    )
    check.claim(booking)
    if booking.already_existed or not repeated or not check.in_list_window(body):
        return booking, ()
    return await _drop_duplicate(check, body, booking)


async def held_or_none(check: BookingCheck, body: AppointmentBookingRequest) -> Booking | None:
    """``check.held``, or None when it cannot be read: the refusal then stands as the answer."""
    try:
        return await check.held(body)
    except PerfectGymError as exc:
        logger.warning("could not look for the booking customer %s already holds: %s", body.customer_id, exc)
        return None


async def _drop_duplicate(
    check: BookingCheck, body: AppointmentBookingRequest, booking: Booking
) -> tuple[Booking, tuple[int, ...]]:
    """After a repeated request: if both requests made a booking, cancel the newer one."""
    try:
        await anyio.sleep(check.settle)
        listed = await check.listed_at_instant(body)
        # Another call's booking is not a duplicate of this one's, whatever its id.
        same = sorted(
            (b for b in listed if b.booking_id == booking.booking_id or not check.is_claimed(b)),
            key=booking_id,
        )
    except PerfectGymError as exc:
        logger.warning("could not look for a duplicate of booking %s: %s", booking.booking_id, exc)
        return booking, ()
    if len(same) < 2:
        return booking, ()
    keep, canceled = same[0], []
    for duplicate in same[1:]:
        try:
            await cancel_once(check, duplicate.booking_id)
        except PerfectGymError as exc:
            # The booking stands either way; the duplicate stays, and the log says so.
            logger.warning(
                "booking was made twice for customer %s (%s and %s) and the second could not be canceled: %s",
                body.customer_id, keep.booking_id, duplicate.booking_id, exc,
            )  # fmt: skip
            continue
        canceled.append(duplicate.booking_id)
        logger.warning(
            "booking was requested twice and made twice for customer %s: kept %s, canceled %s",
            body.customer_id, keep.booking_id, duplicate.booking_id,
        )  # fmt: skip
    return keep, tuple(canceled)
