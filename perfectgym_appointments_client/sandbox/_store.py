"""The sandbox's studio: its data, its bookings, and the requests that read or change them.

The rules live in rooms of their own: the seeded data in ``_data``, the calendar (opening hours,
slot grids, instants) in ``_calendar``, the validation rules in ``_rules``, the bookings and the
rules that change them in ``_ledger``; the records and the refusal in ``_model``. A ``Store`` owns
one of each and answers what the HTTP app asks. It is plain Python with no web framework, so tests
can inspect the state the server holds (``Sandbox.store``). The server runs in its own thread;
every read or change of state takes ``Store.lock`` so a test reading the store never sees a
booking half made.

Besides the seeded appointments there is one open at every hour, "Open Gym 24/7"
(``Store.open_gym()``): its slots run from local midnight to midnight, so some cross a DST change
(``02:00+02:00`` to ``02:00+01:00`` in October, ``01:00+01:00`` to ``03:00+02:00`` in March).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

from . import _data, _rules
from ._calendar import appointment_length, grid, utc, wall_add
from ._ledger import Ledger
from ._model import (
    BOOKING_HORIZON,
    CONCURRENT_MODIFICATION,
    DEMO_CUSTOMER_ID,
    LIST_WINDOW,
    ZONE,
    ZONE_ID,
    Appointment,
    BookingRecord,
    Customer,
    Instructor,
    RuleViolation,
    about_id,
    refusal,
)

__all__ = [
    "BOOKING_HORIZON",
    "CONCURRENT_MODIFICATION",
    "DEMO_CUSTOMER_ID",
    "LIST_WINDOW",
    "ZONE",
    "ZONE_ID",
    "Appointment",
    "BookingRecord",
    "Customer",
    "Instructor",
    "RuleViolation",
    "Store",
    "appointment_length",
    "refusal",
]


class Store:
    """One studio's data and bookings, built deterministically from ``seed``.

    ``appointments`` seeded appointments, then "Open Gym 24/7" (:meth:`open_gym`), whose id comes
    after theirs and which leaves the seeded data as it would be without it.
    ``clock`` gives the current time (aware); tests pass a fixed one to pin "now".
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        appointments: int = 132,
        customers: int = 60,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if appointments < 1 or customers < 8:
            raise ValueError("the sandbox needs at least 1 appointment and 8 customers")
        self.seed = seed
        self.lock = threading.RLock()
        self._clock = clock or (lambda: dt.datetime.now(ZONE))
        self.booking_horizon = BOOKING_HORIZON
        # Seconds a cancel holds its booking before writing (the sandbox's database time); two
        # cancels of one booking within it meet as a concurrent modification (409).
        self.write_latency = 0.0
        rng = random.Random(seed)  # noqa: S311 - seeded sample data
        self.ledger = Ledger(self.lock, 1_300_000_000 + rng.randrange(1_000) * 1_000)
        self.bookings = self.ledger.bookings
        self.instructors = _data.make_instructors(rng)
        self.appointments = _data.make_appointments(rng, appointments, self.instructors)
        self._listed_ids = sorted(i for i, a in self.appointments.items() if a.online)
        self.customers = _data.make_customers(rng, customers, self.now().date())
        now = self.now()
        past = _data.history(rng, now, list(self.customers.values()), list(self.appointments.values()))
        for customer, appointment, start, instructor_id, paid in past:
            self.ledger.record(customer, appointment, start, instructor_id, now, paid=paid)
        gym = _data.open_gym(self.appointments, self.instructors)  # last, and drawing nothing from rng
        self.appointments[gym.id] = gym
        self._listed_ids.append(gym.id)  # the highest id: the list stays sorted

    def now(self) -> dt.datetime:
        return self._clock().astimezone(ZONE)

    # -- lookups ---------------------------------------------------------------------------------
    def appointment(self, appointment_id: int, reference: str = "bookableAppointmentId") -> Appointment:
        """Any appointment, listed or not: GET by id answers those switched off for online booking too."""
        try:
            return self.appointments[appointment_id]
        except KeyError:
            raise about_id(
                404, "errormessage.bookable.appointment.not.found", appointment_id, reference
            ) from None

    def customer(self, customer_id: int) -> Customer:
        try:
            return self.customers[customer_id]
        except KeyError:
            raise about_id(404, "errormessage.customer.not.found", customer_id, "customerId") from None

    def booking(self, booking_id: int) -> BookingRecord:
        return self.ledger.get(booking_id)

    def listed(self) -> list[Appointment]:
        """What GET /v1/appointments/bookable lists, in its order: the appointments bookable online."""
        return [self.appointments[i] for i in self._listed_ids]

    def appointment_page(self, after: int, size: int) -> tuple[list[Appointment], bool]:
        ids = self._listed_ids  # ascending, fixed once seeded
        first = bisect.bisect_right(ids, after)
        return [self.appointments[i] for i in ids[first : first + size]], first + size < len(ids)

    def customer_bookings(self, customer_id: int) -> list[BookingRecord]:
        """What GET /v1/appointments/booking lists: bookings starting and ending within
        ``LIST_WINDOW`` of now, canceled ones included (with their status)."""
        with self.lock:
            self.customer(customer_id)
            now = utc(self.now())
            low, high = now - LIST_WINDOW, now + LIST_WINDOW
            return sorted(
                (
                    b
                    for b in self.ledger.of_customer(customer_id)
                    if low <= utc(b.start) and utc(b.end) <= high
                ),
                key=lambda b: (utc(b.start), b.id),
            )

    # -- the requests ----------------------------------------------------------------------------
    def check(self, customer: Customer, appointment: Appointment, start: dt.datetime, end: dt.datetime,
              wanted: list[int] | None = None) -> str:  # fmt: skip
        """The ValidationStatus of this slot for this customer (see ``_rules.check``)."""
        return _rules.check(
            self.ledger,
            customer,
            appointment,
            start,
            end,
            now=self.now(),
            horizon=self.booking_horizon,
            wanted=wanted,
        )

    def validate(self, customer_id: int, appointment_id: int, start: dt.datetime, end: dt.datetime,
                 wanted: list[int] | None = None) -> str:  # fmt: skip
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id)
            _rules.check_instructors(self.instructors, wanted)
            return self.check(customer, appointment, start, end, wanted)

    def book(self, customer_id: int, appointment_id: int, start: dt.datetime, end: dt.datetime,
             wanted: list[int] | None = None) -> BookingRecord:  # fmt: skip
        """Book the slot, or raise :func:`refusal` (400, the ValidationStatus as errorCode)."""
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id)
            _rules.check_instructors(self.instructors, wanted)
            status = self.check(customer, appointment, start, end, wanted)
            if status != "AVAILABLE":
                raise refusal(status)
            instructor = _rules.free_instructors(self.ledger, appointment, start, end, wanted)[0]
            return self.ledger.record(customer, appointment, start, instructor, self.now(), paid=True)

    @contextlib.contextmanager
    def modifying(self, booking_id: int) -> Iterator[BookingRecord]:
        """Hold a booking for a change; see ``Ledger.modifying``."""
        with self.ledger.modifying(booking_id) as record:
            yield record

    def cancel(self, booking_id: int) -> BookingRecord:
        """Cancel a booking that has not started; the slot and the credit come back."""
        with self.lock:
            record = self.ledger.get(booking_id)
            category = self.appointments[record.appointment_id].category
            return self.ledger.cancel(record, self.customers[record.customer_id], category, self.now())

    def slots(self, appointment_id: int, first_day: dt.date, days: int,
              customer_id: int | None = None) -> list[tuple[dt.datetime, dt.datetime, list[Instructor]]]:  # fmt: skip
        """Free slots, earliest first: only those the time rules allow (outside the lead time,
        inside the horizon, none for an appointment not bookable online); with a customer, only
        those that customer may book."""
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id) if customer_id is not None else None
            step = appointment_length(appointment)
            now = self.now()
            found = []
            for offset in range(days):
                for start in grid(first_day + dt.timedelta(days=offset), appointment):
                    end = wall_add(start, step)
                    if (
                        _rules.time_status(appointment, start, end, now=now, horizon=self.booking_horizon)
                        != "AVAILABLE"
                    ):
                        continue
                    if customer is not None and self.check(customer, appointment, start, end) != "AVAILABLE":
                        continue
                    free = _rules.free_instructors(self.ledger, appointment, start, end)
                    if free:
                        found.append((start, end, [self.instructors[i] for i in free]))
            return found

    # -- for tests and the soak ------------------------------------------------------------------
    def customer_with(self, profile: str) -> Customer:
        """The seeded customer showing one rule: demo, idle, no-contingent, limit-reached, basic."""
        return next(c for c in self.customers.values() if c.profile == profile)

    def offline_appointment(self) -> Appointment:
        """A seeded appointment switched off for online booking (NOT_AVAILABLE, never listed)."""
        return next(a for a in self.appointments.values() if not a.online)

    def open_gym(self) -> Appointment:
        """The "Open Gym 24/7" appointment: listed, online, not premium, 60 minutes, lead time 0,
        two instructors, bookable at any hour of any day (every other rule applies), so slots
        across a DST change exist."""
        return next(a for a in self.appointments.values() if a.all_hours)

    def rename_appointment(self, appointment_id: int, title: str) -> Appointment:
        """Give an appointment a new title, as a studio may at any time: its listing and every
        booking of it (made before or after) show the new one from now on."""
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"an appointment's title must be a non-empty string, got {title!r}")
        with self.lock:
            renamed = replace(self.appointment(appointment_id), title=title)
            self.appointments[appointment_id] = renamed
            return renamed

    def add_customer(
        self, *, premium: bool = True, credits: int = 1_000, booking_limit: int = 1_000
    ) -> Customer:
        """A fresh customer with plenty of credits (load tests give each task its own)."""
        with self.lock:
            customer_id = max(self.customers) + 1
            customer = Customer(
                id=customer_id,
                first_name="Load",
                last_name=f"Tester {customer_id}",
                premium=premium,
                contingent=dict.fromkeys(_data.CATEGORIES, credits),
                booking_limit=booking_limit,
                profile="added",
            )
            self.customers[customer_id] = customer
            return customer

    def snapshot(self) -> list[BookingRecord]:
        """A consistent copy of every booking, taken under the lock."""
        with self.lock:
            return [BookingRecord(**vars(b)) for b in self.bookings.values()]
