"""BookingFlows: the four booking calls of one client, each composed from the rooms beside it
(the request and its check, the cancel, the shield and the report)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._exceptions import SlotNotBookableError
from .._generated.models import AppointmentBookingRequest
from .._models import Booking, SlotLike, ValidationStatus
from .._operations import Operations
from ._book import book, held_or_none
from ._cancel import ALREADY_CANCELED, cancel
from ._check import BookingCheck
from ._first_available import book_first_available
from ._journaling import canceled_in_journal, held_in_journal
from ._outcome import BookingOutcome, OutcomeHook
from ._recover import pending, recover
from ._reschedule import prepare_reschedule, reschedule_once
from ._shield import Shield

if TYPE_CHECKING:
    from .._journal import Journal
    from .._telemetry import Instruments

__all__ = ["BookingFlows"]


class BookingFlows:
    """The booking flows of one client (``client._flows``), over its :class:`Operations`.

    Each call hands ``Shield.run`` a flow from the module named for it, with its arguments (not
    a closure defined here), so a trace goes down from here and never comes back up.
    """

    def __init__(
        self,
        ops: Operations,
        *,
        settle: float,
        on_outcome: OutcomeHook | None,
        run_bound: float,
        telemetry: Instruments | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._ops = ops
        self._check = BookingCheck(ops, settle=settle)
        # A journal may hold many studios' entries (for_studio clients share it): each flow's are
        # its studio's, by base URL. The shield holds both; the flows read them from it.
        self._shield = Shield(
            bound=run_bound, hook=on_outcome, telemetry=telemetry, journal=journal, studio=ops.api.base_url
        )

    async def drain(self) -> int:
        """Wait for the flows still running (at most one flow's bound); how many still run."""
        return await self._shield.in_flight.drain(self._shield.bound)

    @property
    def settle(self) -> float:
        return self._check.settle

    @settle.setter
    def settle(self, seconds: float) -> None:
        self._check.settle = seconds

    @property
    def now(self) -> Callable[[], dt.datetime]:
        """Where "now" is for the bookings list's window (a test pins it with the sandbox's)."""
        return self._check.now

    @now.setter
    def now(self, clock: Callable[[], dt.datetime]) -> None:
        self._check.now = clock

    async def book(self, body: AppointmentBookingRequest, *, validate: bool) -> Booking:
        """``validate``: validate first (SlotNotBookableError unless AVAILABLE), which is also
        evidence the booking check can use."""
        journal, studio = self._shield.journal, self._shield.studio
        if journal is not None:
            # A booking the journal shows made, by any process, is answered from it (rule 8).
            held = await held_in_journal(journal, studio, self._ops, body)
            if held is not None:
                return held
        if validate:
            status = await self._ops.validate(body)
            if status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING:
                held = await held_or_none(self._check, body)
                if held is not None:  # a resubmit: nothing is sent, nothing to report
                    return held
            if status is not ValidationStatus.AVAILABLE:
                raise SlotNotBookableError(
                    status, customer_id=body.customer_id, bookable_appointment_id=body.bookable_appointment_id
                )
        return await self._shield.run("book", body, book, self._check, body, validate, validated=validate)

    async def cancel(self, booking_id: int) -> str:
        journal = self._shield.journal
        if journal is not None and await canceled_in_journal(journal, self._shield.studio, booking_id):
            return ALREADY_CANCELED
        return await self._shield.run("cancel", booking_id, cancel, self._check, booking_id)

    async def recover(self) -> list[BookingOutcome]:
        """Rule 8 after a crash (``_recover.py``); nothing without a journal."""
        if self._shield.journal is None:
            return []
        return await recover(self._shield.journal, self._shield.studio, self._check, self._shield)

    async def pending(self) -> list[BookingOutcome]:
        if self._shield.journal is None:
            return []
        return await pending(self._shield.journal, self._shield.studio)

    async def reschedule(
        self, booking_id: int, new_slot: SlotLike, *, bookable_appointment_id: int | None, validate: bool
    ) -> Booking:
        body, validated = await prepare_reschedule(
            self._check, booking_id, new_slot, bookable_appointment_id, validate
        )
        return await self._shield.run(
            "reschedule", body, reschedule_once, self._check, booking_id, body, validated,
            old_booking_id=booking_id, validated=validated,
        )  # fmt: skip

    async def book_first_available(
        self,
        customer_id: int,
        bookable_appointment_id: int,
        start_date: dt.date | None,
        days_ahead: int,
        earliest: dt.datetime | dt.time | None,
        latest: dt.datetime | dt.time | None,
        instructor_id: int | None,
        concurrency: int,
    ) -> Booking:
        return await book_first_available(
            self._check, self._shield, customer_id, bookable_appointment_id, start_date, days_ahead,
            earliest, latest, instructor_id, concurrency,
        )  # fmt: skip
