"""Rule 5: reschedule books the new slot before it cancels the old booking, so it never ends
with neither; when it cannot end with exactly the new one, RescheduleError names both."""

from __future__ import annotations

import attrs

from .._arguments import booking_request
from .._constants import MAX_SLICE_SIZE
from .._exceptions import (
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    ConfigurationError,
    PerfectGymError,
    RescheduleError,
    SlotNotBookableError,
)
from .._generated.models import AppointmentBookingRequest
from .._models import Booking, SlotLike, ValidationStatus
from ._book import book_once
from ._cancel import cancel_once
from ._check import BookingCheck
from ._outcome import BookingOutcome, OutcomeKind, outcome

__all__ = ["prepare_reschedule", "reschedule_once"]


async def prepare_reschedule(
    check: BookingCheck,
    booking_id: int,
    new_slot: SlotLike,
    bookable_appointment_id: int | None,
    validate: bool,
) -> tuple[AppointmentBookingRequest, bool]:
    """The new booking's request, and whether it validated AVAILABLE just now; nothing is sent
    that could change a booking."""
    ops = check.ops
    old = await ops.get_booking(booking_id)
    if old.customer_id is None:  # pragma: no cover - getAppointmentBooking requires customerId
        raise ConfigurationError(f"booking {booking_id} has no customer id")
    if bookable_appointment_id is None:
        bookable_appointment_id = await _appointment_id_for(check, old)
    body = booking_request(old.customer_id, bookable_appointment_id, new_slot, None)
    if not validate:
        return body, False
    status = await ops.validate(body)
    if status is not ValidationStatus.AVAILABLE:
        raise SlotNotBookableError(
            status, customer_id=old.customer_id, bookable_appointment_id=bookable_appointment_id
        )
    return body, True


async def reschedule_once(
    check: BookingCheck, booking_id: int, body: AppointmentBookingRequest, validated: bool
) -> tuple[Booking, BookingOutcome]:
    try:
        new, duplicates = await book_once(check, body, validated)
    except (BookingIdUnknownError, BookingOutcomeUnknownError) as exc:
        # The new booking exists or may: the old one stays, so the member is never left
        # with neither.
        raise RescheduleError(
            f"booking the new slot for booking {booking_id} ended without a booking id ({exc}); "
            f"the old booking {booking_id} was kept, so the customer may now hold both",
            old_booking_id=booking_id,
            new_booking_id=None,
            cause=exc,
        ) from exc
    if new.already_existed:
        # The customer holds the new slot already (booked before this call): nothing was moved,
        # and the old booking stays, as when the validation says so.
        raise SlotNotBookableError(
            ValidationStatus.CUSTOMER_IN_OTHER_BOOKING,
            customer_id=body.customer_id,
            bookable_appointment_id=body.bookable_appointment_id,
        )
    try:
        await cancel_once(check, booking_id)
    except PerfectGymError as exc:
        raise RescheduleError(
            f"booked {new.booking_id} but could not cancel the old booking {booking_id} ({exc}); "
            "both bookings exist now",
            old_booking_id=booking_id,
            new_booking_id=new.booking_id,
            cause=exc,
        ) from exc
    ended = outcome("reschedule", OutcomeKind.RESCHEDULED, body, new.booking_id, (*duplicates, booking_id))
    return new, attrs.evolve(ended, old_booking_id=booking_id)


async def _appointment_id_for(check: BookingCheck, booking: Booking) -> int:
    matches = [
        a.id async for a in check.ops.bookable_appointments(MAX_SLICE_SIZE, None) if a.title == booking.title
    ]
    if len(matches) != 1:
        raise ConfigurationError(
            f"cannot tell which bookable appointment booking {booking.booking_id} ({booking.title!r}) "
            f"belongs to ({len(matches)} match its title): pass bookable_appointment_id=..."
        )
    return matches[0]
