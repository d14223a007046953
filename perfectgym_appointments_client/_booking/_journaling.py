"""Rule 8: a booking outlives its process. With a journal (``AppointmentsClient(journal=...)``):

- each booking flow's intent (``begin``) is written before its request is sent, and its outcome
  (``finish``) once it has been reported to ``on_booking_outcome``;
- a resubmit of a booking the journal shows made (by any process, any time) is answered by a
  ``GET`` of that booking (``held_in_journal``), inside or outside the bookings list's window;
- a cancel of a booking the journal shows canceled answers at once (``canceled_in_journal``);
- ``recover`` (``_recover.py``) resolves the intents whose process is gone by evidence.

A journal that fails never fails a flow (``Journal.call``): the flow then goes on as without one.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import attrs

from .._exceptions import PerfectGymError
from .._generated.models import AppointmentBookingRequest
from .._journal import PENDING, Entry, Journal
from .._models import Booking
from .._request import logger
from ._outcome import BookingOutcome, OutcomeKind

if TYPE_CHECKING:
    from .._operations import Operations

__all__ = ["begin", "canceled_in_journal", "finish", "held_in_journal", "ms"]

# The resubmit looks at this many of the journal's bookings of a customer at one instant (newest
# first): more than one means earlier ones were canceled, each costing a GET.
MAX_RESUBMIT_LOOKUPS = 3


def ms(value: dt.datetime) -> int:
    return round(value.timestamp() * 1000)


async def begin(
    journal: Journal,
    studio: str,
    operation: str,
    subject: AppointmentBookingRequest | int,
    *,
    validated: bool,
    old_booking_id: int | None,
) -> Entry | None:
    """Write the flow's intent before its request is sent; the entry, or None if the journal failed."""
    if isinstance(subject, AppointmentBookingRequest):
        wire = subject.to_dict()
        entry = journal.new_entry(
            operation, studio, customer_id=subject.customer_id,
            bookable_appointment_id=subject.bookable_appointment_id, start=wire["startDateTime"],
            end=wire["endDateTime"], start_ms=ms(subject.start_date_time), end_ms=ms(subject.end_date_time),
            old_booking_id=old_booking_id, validated="AVAILABLE" if validated else None,
        )  # fmt: skip
    else:
        entry = journal.new_entry(operation, studio, booking_id=subject)
    return entry if await journal.add(entry) else None


async def finish(journal: Journal, entry: Entry, outcome: BookingOutcome) -> None:
    """The flow's outcome, once reported: the entry is finished. If the store fails now, the
    outcome is kept in memory for the next ``recover()`` to write (``Journal.unwritten``)."""
    booking_id = outcome.booking_id if outcome.operation != "cancel" else entry.booking_id
    fields = {
        # An outcome the flow could not tell stays pending: recover() tries again to prove it
        # once the flow's bound has passed, and reports what it finds.
        "state": PENDING if outcome.kind is OutcomeKind.UNKNOWN else outcome.kind.value,
        "booking_id": booking_id if booking_id is not None else entry.booking_id,
        "detail": _detail(outcome),
        "reported": True,
        "updated_at": journal.clock(),
    }
    if not await journal.update(entry.id, **fields):
        journal.remember_unwritten(entry.id, fields)


def _detail(outcome: BookingOutcome) -> str:
    if outcome.error is None:
        return ""
    return f"{type(outcome.error).__name__}: {outcome.error}"[:500]


async def held_in_journal(
    journal: Journal, studio: str, ops: Operations, body: AppointmentBookingRequest
) -> Booking | None:
    """A booking of this customer, appointment and instants that the journal shows made and a GET
    shows still active, as ``already_existed``; None otherwise (then the book goes ahead)."""
    entries = await journal.entries(
        journal.store.booked,
        studio,
        body.customer_id,
        ms(body.start_date_time),
        ms(body.end_date_time),
    )
    seen: set[int] = set()
    for entry in entries:
        if entry.bookable_appointment_id != body.bookable_appointment_id or entry.booking_id is None:
            continue
        if entry.booking_id in seen:
            continue
        seen.add(entry.booking_id)
        if len(seen) > MAX_RESUBMIT_LOOKUPS:
            break
        try:
            booking = await ops.get_booking(entry.booking_id)
        except PerfectGymError as exc:
            logger.warning("could not read booking %s the journal shows made: %s", entry.booking_id, exc)
            return None
        if not booking.is_canceled:
            return attrs.evolve(booking, already_existed=True)
    return None


async def canceled_in_journal(journal: Journal, studio: str, booking_id: int) -> bool:
    """Whether the journal shows this booking canceled (by a cancel or a reschedule that moved it)."""
    for entry in await journal.entries(journal.store.about_booking, studio, booking_id):
        if entry.kind == "cancel" and entry.booking_id == booking_id and entry.state == OutcomeKind.CANCELED:
            return True
        if (
            entry.kind == "reschedule"
            and entry.old_booking_id == booking_id
            and entry.state == OutcomeKind.RESCHEDULED
        ):
            return True
    return False
