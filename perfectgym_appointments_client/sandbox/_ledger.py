"""The studio's bookings and the rules that change them.

A booking takes a credit of its category (a past, seeded one did not); a cancel gives it back and
is refused for a booking already canceled or already started; a change of a booking holds it, and
a second change meanwhile is a concurrent modification (409), as the API's optimistic locking is.
The ledger keeps the bookings by day and by customer, so the overlap rules read one day's list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Sequence

from ._calendar import appointment_length, utc, wall_add
from ._model import (
    CONCURRENT_MODIFICATION,
    ZONE,
    Appointment,
    BookingRecord,
    Customer,
    RuleViolation,
    about_id,
)

__all__ = ["Ledger"]


class Ledger:
    """Every booking by id, plus indexes by local day and by customer. Not locked itself: its
    owner (:class:`~._store.Store`) holds ``lock`` around every call."""

    def __init__(self, lock: threading.RLock, first_id: int) -> None:
        self.lock = lock
        self.bookings: dict[int, BookingRecord] = {}
        self._by_day: dict[dt.date, list[BookingRecord]] = {}
        self._by_customer: dict[int, list[BookingRecord]] = {}
        self._next_id = first_id
        self._modifying: set[int] = set()

    def get(self, booking_id: int) -> BookingRecord:
        try:
            return self.bookings[booking_id]
        except KeyError:
            raise about_id(
                404, "errormessage.appointment.booking.not.found", booking_id, "bookingId"
            ) from None

    def of_customer(self, customer_id: int) -> Sequence[BookingRecord]:
        return self._by_customer.get(customer_id, ())

    def active_after(self, customer_id: int, now: dt.datetime) -> int:
        """How many of the customer's bookings are active and not yet over: the booking limit's count."""
        instant = utc(now)
        return sum(1 for b in self.of_customer(customer_id) if b.active and utc(b.end) > instant)

    def busy(self, start: dt.datetime, end: dt.datetime, *, appointment_id: int | None = None,
             instructor_id: int | None = None, customer_id: int | None = None) -> bool:  # fmt: skip
        """Whether an active booking overlapping ``start``..``end`` holds the appointment (its room
        or device), the instructor, or the customer."""
        begin, finish = utc(start), utc(end)
        # Bookings never cross midnight (the studio closes before, and the all-hours grid ends at
        # midnight), so one day's list is enough.
        for b in self._by_day.get(start.astimezone(ZONE).date(), ()):
            if not b.active or utc(b.start) >= finish or utc(b.end) <= begin:
                continue
            if appointment_id is not None and b.appointment_id == appointment_id:
                return True
            if instructor_id is not None and b.instructor_id == instructor_id:
                return True
            if customer_id is not None and b.customer_id == customer_id:
                return True
        return False

    def record(self, customer: Customer, appointment: Appointment, start: dt.datetime, instructor_id: int,
               now: dt.datetime, *, paid: bool) -> BookingRecord:  # fmt: skip
        # Ids grow by uneven steps, as a real tenant's do: a client must not guess the next one.
        self._next_id += 1 + (self._next_id % 7)
        record = BookingRecord(
            id=self._next_id,
            customer_id=customer.id,
            appointment_id=appointment.id,
            start=start.astimezone(ZONE),
            end=wall_add(start.astimezone(ZONE), appointment_length(appointment)),
            instructor_id=instructor_id,
            status="BOOKED_WITH_CONFIRMATION_REQUIRED" if appointment.requires_confirmation else "BOOKED",
            created=now,
        )
        if paid:
            customer.contingent[appointment.category] = customer.contingent.get(appointment.category, 0) - 1
        self.bookings[record.id] = record
        self._by_day.setdefault(record.start.date(), []).append(record)
        self._by_customer.setdefault(record.customer_id, []).append(record)
        return record

    @contextlib.contextmanager
    def modifying(self, booking_id: int) -> Iterator[BookingRecord]:
        """Hold a booking for a change (404 if there is none); meanwhile another change of it
        is refused as a concurrent modification (409)."""
        with self.lock:
            record = self.get(booking_id)
            if booking_id in self._modifying:
                raise RuleViolation(409, CONCURRENT_MODIFICATION, "bookingId")
            self._modifying.add(booking_id)
        try:
            yield record
        finally:
            with self.lock:
                self._modifying.discard(booking_id)

    def cancel(
        self, record: BookingRecord, customer: Customer, category: str, now: dt.datetime
    ) -> BookingRecord:
        """Cancel a booking that has not started; the slot and the credit come back."""
        if not record.active:
            raise about_id(400, "errormessage.appointment.booking.already.canceled", record.id, "bookingId")
        if utc(record.start) <= utc(now):
            raise about_id(400, "errormessage.appointment.booking.already.started", record.id, "bookingId")
        record.status = "CANCELED"
        customer.contingent[category] = customer.contingent.get(category, 0) + 1
        return record
