"""BookingFlows: the four booking calls of one client, each composed from the rooms beside it
(the request and its check, the cancel, the shield and the report)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from .._exceptions import SlotNotBookableError
from .._generated.models import AppointmentBookingRequest
from .._models import Booking, SlotLike, ValidationStatus
from .._operations import Operations
from ._book import book_once
from ._cancel import cancel_once
from ._check import BookingCheck
from ._first_available import book_first_available
from ._outcome import BookingOutcome, OutcomeHook, OutcomeKind, outcome
from ._reschedule import prepare_reschedule, reschedule_once
from ._shield import run_to_the_end

__all__ = ["BookingFlows"]


class BookingFlows:
    """The booking flows of one client (``client._flows``), over its :class:`Operations`."""

    def __init__(
        self, ops: Operations, *, settle: float, on_outcome: OutcomeHook | None, run_bound: float
    ) -> None:
        self._ops = ops
        self._check = BookingCheck(ops, settle=settle)
        self._on_outcome = on_outcome
        self._run_bound = run_bound

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

    async def book(
        self, body: AppointmentBookingRequest, *, validate: bool, validated: bool = False
    ) -> Booking:
        """``validate``: validate first (SlotNotBookableError unless AVAILABLE); ``validated``:
        the caller just saw it validate AVAILABLE (evidence the check can use)."""
        if validate:
            status = await self._ops.validate(body)
            if status is not ValidationStatus.AVAILABLE:
                raise SlotNotBookableError(
                    status, customer_id=body.customer_id, bookable_appointment_id=body.bookable_appointment_id
                )
            validated = True

        async def run() -> tuple[Booking, BookingOutcome]:
            booking, duplicates = await book_once(self._check, body, validated)
            return booking, outcome("book", OutcomeKind.BOOKED, body, booking.booking_id, duplicates)

        return await run_to_the_end("book", body, run, bound=self._run_bound, hook=self._on_outcome)

    async def cancel(self, booking_id: int) -> str:
        async def run() -> tuple[str, BookingOutcome]:
            message = await cancel_once(self._check, booking_id)
            return message, BookingOutcome(
                operation="cancel", kind=OutcomeKind.CANCELED, booking_id=booking_id
            )

        return await run_to_the_end("cancel", booking_id, run, bound=self._run_bound, hook=self._on_outcome)

    async def reschedule(
        self, booking_id: int, new_slot: SlotLike, *, bookable_appointment_id: int | None, validate: bool
    ) -> Booking:
        body, validated = await prepare_reschedule(
            self._check, booking_id, new_slot, bookable_appointment_id, validate
        )

        async def run() -> tuple[Booking, BookingOutcome]:
            return await reschedule_once(self._check, booking_id, body, validated)

        return await run_to_the_end(
            "reschedule", body, run, bound=self._run_bound, hook=self._on_outcome, old_booking_id=booking_id
        )

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
        async def book_validated(body: AppointmentBookingRequest) -> Booking:
            return await self.book(body, validate=False, validated=True)

        return await book_first_available(
            self._ops, book_validated, customer_id, bookable_appointment_id, start_date, days_ahead,
            earliest, latest, instructor_id, concurrency,
        )  # fmt: skip
