"""Rule 8, after a crash: ``recover`` resolves the journal's entries whose process is gone (or that
are older than a flow may run) by evidence (the id the journal holds, read back; else the booking
check: the list inside its window, the validation recorded before the request outside it), reports
each once through ``on_booking_outcome`` (a claim in the journal keeps two recovering processes
from both reporting it), and leaves what cannot be proven pending (``pending``): never guessed."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from .._exceptions import APIConnectionError, BookingOutcomeUnknownError, PerfectGymError
from .._generated.models import AppointmentBookingRequest
from .._journal import PENDING, Entry, Journal, process_alive, this_process
from .._request import logger
from .._zoned import parse_zoned_datetime
from ._check import BookingCheck
from ._outcome import BookingOutcome, OutcomeKind, report
from ._shield import Shield

__all__ = ["pending", "recover"]


def _due(entry: Entry, now: float, bound: float) -> bool:
    """Whether an entry is recovery's to resolve: reported never, or pending in a process that is
    gone (or older than a flow may run, for a process on another host or one still running)."""
    if entry.state != PENDING:
        return not entry.reported and (entry.process != this_process() or now - entry.updated_at > bound)
    if now - entry.created_at > bound:
        return True
    return entry.process != this_process() and process_alive(entry.process) is False


def _body(entry: Entry) -> AppointmentBookingRequest:
    assert entry.customer_id is not None
    assert entry.bookable_appointment_id is not None
    assert entry.start is not None
    assert entry.end is not None
    return AppointmentBookingRequest(
        customer_id=entry.customer_id,
        bookable_appointment_id=entry.bookable_appointment_id,
        start_date_time=parse_zoned_datetime(entry.start, "start"),
        end_date_time=parse_zoned_datetime(entry.end, "end"),
    )


def _outcome_of(entry: Entry, kind: OutcomeKind, booking_id: int | None) -> BookingOutcome:
    slot: dict[str, Any] = {}
    if entry.start is not None and entry.end is not None:
        body = _body(entry)
        slot = {"start_date_time": body.start_date_time, "end_date_time": body.end_date_time}
    return BookingOutcome(
        operation=entry.kind,
        kind=kind,
        booking_id=booking_id,
        customer_id=entry.customer_id,
        bookable_appointment_id=entry.bookable_appointment_id,
        old_booking_id=entry.old_booking_id,
        recovered=True,
        **slot,
    )


async def _resolve(entry: Entry, check: BookingCheck, *, settled: bool) -> BookingOutcome | None:
    """What the entry's flow did, by evidence; None when it cannot be proven. ``settled``: the
    entry is older than its request could still be at the server; before that, "not made" proves
    nothing (the request may land later) and only "made" is taken."""
    ops = check.ops
    try:
        if entry.kind == "cancel":
            assert entry.booking_id is not None
            booking = await check.look(lambda: ops.get_booking(entry.booking_id))  # type: ignore[arg-type]
            if not booking.is_canceled and not settled:
                return None  # the cancel may still land
            kind = OutcomeKind.CANCELED if booking.is_canceled else OutcomeKind.NOT_CANCELED
            return _outcome_of(entry, kind, entry.booking_id)
        made, booking_id = await _booking_made(entry, check)
        if made is None or (not made and not settled):
            return None
        if entry.kind == "book":
            if not made:
                return _outcome_of(entry, OutcomeKind.NOT_BOOKED, None)
            kind = OutcomeKind.BOOKED if booking_id is not None else OutcomeKind.BOOKED_ID_UNKNOWN
            return _outcome_of(entry, kind, booking_id)
        # reschedule: the new booking first, then the old one's cancel
        if not made:
            return _outcome_of(entry, OutcomeKind.NOT_BOOKED, None)
        assert entry.old_booking_id is not None
        old = await check.look(lambda: ops.get_booking(entry.old_booking_id))  # type: ignore[arg-type]
        kind = OutcomeKind.RESCHEDULED if old.is_canceled else OutcomeKind.BOTH_BOOKINGS
        return _outcome_of(entry, kind, booking_id)
    except PerfectGymError as exc:
        logger.warning("could not resolve the journal's %s entry %s: %s", entry.kind, entry.id, exc)
        return None


async def _booking_made(entry: Entry, check: BookingCheck) -> tuple[bool | None, int | None]:
    """Whether the entry's booking request made a booking, and its id: by the id the journal
    holds, else by the booking check's evidence (the list, or the validation recorded before)."""
    if entry.booking_id is not None:
        booking = await check.look(lambda: check.ops.get_booking(entry.booking_id))  # type: ignore[arg-type]
        return True, booking.booking_id
    body = _body(entry)
    cause = APIConnectionError(
        f"the process that sent it ({entry.process}) stopped before its answer was recorded",
        operation="bookAppointmentBooking", method="POST", path="/v1/appointments/booking/book",
    )  # fmt: skip
    try:
        evidence = await check(body, entry.validated == "AVAILABLE", cause)
    except BookingOutcomeUnknownError:
        return None, None
    if evidence.made is None:
        return None, None
    if evidence.made:  # its id unknown when only the validations prove it (outside the list's window)
        return True, None if evidence.booking is None else evidence.booking.booking_id
    return False, None


async def recover(journal: Journal, studio: str, check: BookingCheck, shield: Shield) -> list[BookingOutcome]:
    """Resolve and report every entry of ``studio`` that is recovery's to resolve (``_due``);
    what cannot be proven stays pending. Returns the outcomes reported, each once."""
    owner = f"{this_process()}:{uuid.uuid4().hex[:8]}"
    await journal.write_unwritten()  # outcomes reported here while the store was failing
    now = journal.clock()
    entries = await journal.entries(journal.store.unfinished, studio)
    reported: list[BookingOutcome] = []
    immediate = BookingCheck(check.ops, settle=0)
    immediate.now = check.now
    for entry in entries:
        if entry.id in journal.unwritten or not _due(entry, now, shield.bound):
            continue  # reported by this process, its outcome not written yet; or not recovery's
        if not await journal.call(False, journal.store.claim, entry.id, owner, now + shield.bound, now):
            continue  # another process is resolving it
        if entry.state != PENDING:  # it ended, but the process died before it was reported
            kind = OutcomeKind(entry.state)
            outcome: BookingOutcome | None = _outcome_of(entry, kind, entry.booking_id)
        else:
            # Evidence is read at once (the booking check's settle wait is for a request just
            # sent); "not made" counts only once the request cannot still be at the server.
            settled = now - entry.created_at > shield.bound
            outcome = await _resolve(entry, immediate, settled=settled)
        if outcome is None:
            await journal.update(entry.id, claimed_by=None, claimed_until=None)
            continue
        await report(outcome, shield.hook, shield.telemetry)
        await journal.update(
            entry.id, state=outcome.kind.value, booking_id=outcome.booking_id, reported=True,
            updated_at=journal.clock(), detail="resolved by recover()",
        )  # fmt: skip
        reported.append(outcome)
    await journal.call(0, journal.store.prune, now, now - journal.finished_after)
    return reported


async def pending(journal: Journal, studio: str) -> list[BookingOutcome]:
    """The studio's flows whose outcome is not known yet (running, or unproven by recovery), as
    outcomes of kind ``UNKNOWN``."""
    entries = await journal.entries(journal.store.unfinished, studio)
    return [
        attrs.evolve(_outcome_of(entry, OutcomeKind.UNKNOWN, entry.booking_id), recovered=False)
        for entry in entries
        if entry.state == PENDING
    ]
