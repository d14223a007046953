"""The sandbox's studio: seeded data, the booking rules, and the state bookings change.

Everything here is plain Python with no web framework, so the rules can be read in one place
(``Store.check``) and tests can inspect the state the server holds (``Sandbox.store``). The server
runs in its own thread; every read or change of state takes ``Store.lock`` so a test reading the
store never sees a booking half made.

Date-times are compared as instants (in UTC): two datetimes sharing one ``ZoneInfo`` compare and
subtract by wall clock in Python, which is wrong by an hour across a DST switch. Only the opening
hours and the slot grid, which are wall-clock rules of the studio, look at local times.

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
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from ._i18n import text

__all__ = [
    "BOOKING_HORIZON",
    "CONCURRENT_MODIFICATION",
    "DEMO_CUSTOMER_ID",
    "LIST_WINDOW",
    "ZONE",
    "Appointment",
    "BookingRecord",
    "Customer",
    "Instructor",
    "RuleViolation",
    "Store",
]

ZONE = ZoneInfo("Europe/Berlin")
ZONE_ID = "Europe/Berlin"

# The id the API's docs (and the README) use for a customer; every seed gives it to the demo customer.
DEMO_CUSTOMER_ID = 1_210_005_199
# How far ahead customers may book (the studio's setting, the same for every appointment).
BOOKING_HORIZON = dt.timedelta(days=28)
# Minimum lead times the seed deals out, in minutes: a booking must start at least this late.
LEAD_TIMES = (0, 60, 120)
# GET /v1/appointments/booking lists bookings starting and ending within this of now.
LIST_WINDOW = dt.timedelta(days=14)
CONCURRENT_MODIFICATION = "errormessage.concurrent.modification"

# Opening hours by weekday (Monday = 0); Sunday closed. Opening times are multiples of every
# slot length (30, 45, 60, 90 minutes) so the slot grid, anchored at midnight, meets them.
OPENING_HOURS: dict[int, tuple[dt.time, dt.time] | None] = {
    0: (dt.time(6), dt.time(22)),
    1: (dt.time(6), dt.time(22)),
    2: (dt.time(6), dt.time(22)),
    3: (dt.time(6), dt.time(22)),
    4: (dt.time(6), dt.time(21)),
    5: (dt.time(9), dt.time(18)),
    6: None,
}

_BASES: dict[str, list[str]] = {
    "Training": [
        "Personal Training",
        "Strength Coaching",
        "Mobility Session",
        "Kettlebell Basics",
        "Boxing Pads",
    ],
    "Wellness": ["Massage", "Sauna Ritual", "Hydro Massage", "Stretch & Relax"],
    "Health": ["Physiotherapy", "Back Check", "Body Analysis", "Nutrition Consult"],
    "Consulting": ["Trial Training", "Program Update", "Membership Consultation"],
    "Courses": ["Private Yoga", "Reformer Pilates", "Spinning Intro", "Swim Coaching", "Climbing Intro"],
}
_VARIANTS = ["Express", "Classic", "Plus", "Extended", "Premium", "Duo"]
_FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Kira", "Lukas",
          "Mia", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Udo", "Vera", "Wim", "Yara", "Zoe"]  # fmt: skip
_LAST = ["Schmidt", "Meyer", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch", "Richter", "Klein",
         "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun", "Hartmann", "Krause", "Lange"]  # fmt: skip


def _present(body: dict[str, object], **optional: object) -> dict[str, object]:
    """``body`` plus the optional fields that have a value: the API leaves absent ones out (its
    schemas are not nullable), so the sandbox never sends null."""
    body.update((name, value) for name, value in optional.items() if value is not None)
    return body


@dataclass(frozen=True)
class Instructor:
    id: int
    first_name: str
    last_name: str
    public_name: str | None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "firstName": self.first_name, "lastName": self.last_name}
        return _present(body, publicName=self.public_name)


@dataclass(frozen=True)
class Appointment:
    id: int
    title: str
    duration: int  # minutes; also the slot grid step
    category: str
    description: str | None
    img_url: str | None
    instructor_ids: tuple[int, ...]
    requires_confirmation: bool  # booked as BOOKED_WITH_CONFIRMATION_REQUIRED
    premium_only: bool  # the restriction: only premium members may book
    lead_minutes: int  # minimum lead time: bookings must start at least this many minutes from now
    online: bool = True  # "available for online booking"; if not, listed nowhere and never bookable
    # Bookable at any hour of any day, opening hours and Sundays aside; its slot grid runs from
    # local midnight to the next, stepped in elapsed time (so a DST day has 23 or 25 hours of it).
    all_hours: bool = False

    @property
    def lead_time(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.lead_minutes)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "title": self.title,
            "duration": self.duration,
            "category": self.category,
        }
        return _present(body, description=self.description, imgUrl=self.img_url)


@dataclass
class Customer:
    id: int
    first_name: str
    last_name: str
    premium: bool
    contingent: dict[str, int]  # credits left per category; a booking takes one, a cancel gives it back
    booking_limit: int  # active bookings in the future at most
    idle_periods: list[tuple[dt.date, dt.date]] = field(default_factory=list)  # inclusive
    profile: str = "regular"  # what the seed made this customer show (demo, idle, no-contingent...)


@dataclass
class BookingRecord:
    id: int
    customer_id: int
    appointment_id: int
    start: dt.datetime
    end: dt.datetime
    instructor_id: int
    status: str  # BOOKED, BOOKED_WITH_CONFIRMATION_REQUIRED, CANCELED
    created: dt.datetime

    @property
    def active(self) -> bool:
        return self.status != "CANCELED"


class RuleViolation(Exception):
    """A request the studio refuses: ``status`` is the HTTP status, ``code`` the errorCode.

    ``params`` fill the fields of the code's message; ``error_args`` and ``typed_args`` become
    the answer's ``args`` and ``typedArgs``. ``message`` is the English text, ``message_in(tag)``
    the text in another language.
    """

    def __init__(
        self,
        status: int,
        code: str,
        reference: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        error_args: list[dict[str, Any]] | None = None,
        typed_args: list[dict[str, Any]] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.reference = reference
        self.params = dict(params or {})
        self.error_args = list(error_args or [])
        self.typed_args = list(typed_args or [])
        self.message = text(code, "en", **self.params)
        super().__init__(self.message)

    def message_in(self, language: str) -> str:
        return text(self.code, language, **self.params)


def refusal(status: str) -> RuleViolation:
    """A booking refused by a rule: 400 with the ValidationStatus as errorCode."""
    return RuleViolation(
        400,
        status,
        "startDateTime",
        error_args=[{"validationStatus": status}],
        typed_args=[{"value": status, "type": "ENUM"}],
    )


def _not_found(code: str, entity_id: int, reference: str) -> RuleViolation:
    return RuleViolation(
        404,
        code,
        reference,
        params={"id": entity_id},
        error_args=[{"id": entity_id}],
        typed_args=[{"value": entity_id, "type": "INTEGER"}],
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


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
        self._modifying: set[int] = set()
        rng = random.Random(seed)  # noqa: S311 - seeded sample data
        self.instructors: dict[int, Instructor] = {}
        self.appointments: dict[int, Appointment] = {}
        self.customers: dict[int, Customer] = {}
        self.bookings: dict[int, BookingRecord] = {}
        self._by_day: dict[dt.date, list[BookingRecord]] = {}
        self._by_customer: dict[int, list[BookingRecord]] = {}
        self._next_booking_id = 1_300_000_000 + rng.randrange(1_000) * 1_000
        self._make_instructors(rng)
        self._make_appointments(rng, appointments)
        self._listed_ids = sorted(i for i, a in self.appointments.items() if a.online)
        self._make_customers(rng, customers)
        self._make_history(rng)
        self._add_open_gym()  # last, and drawing nothing from rng: the seeded data stays the same

    # -- seeding ---------------------------------------------------------------------------------
    def _make_instructors(self, rng: random.Random) -> None:
        ids = sorted(rng.sample(range(1_210_000_000, 1_210_001_000), 16))
        firsts = rng.sample(_FIRST, 16)
        for index, (instructor_id, first) in enumerate(zip(ids, firsts, strict=True)):
            last = rng.choice(_LAST)
            public = f"Coach {first}" if index % 3 else None
            self.instructors[instructor_id] = Instructor(instructor_id, first, last, public)

    def _make_appointments(self, rng: random.Random, count: int) -> None:
        pool = list(self.instructors)
        # each category has its own team of instructors, overlapping a little
        teams = {category: rng.sample(pool, 5) for category in _BASES}
        titles = [
            (c, f"{base} {variant}") for c, bases in _BASES.items() for base in bases for variant in _VARIANTS
        ]
        next_id = 1_229_489_000
        for number in range(count):
            category, title = titles[number % len(titles)]
            if number >= len(titles):
                title = f"{title} #{number // len(titles) + 1}"
            variant = title.split()[-1] if number < len(titles) else title.split()[-2]
            duration = {"Express": 30, "Extended": 90}.get(variant, rng.choice([45, 60, 60]))
            next_id += rng.randrange(1, 40)
            # One in 45 is switched off for online booking (at least one once there are two).
            offline = count > 1 and number % 45 == min(44, count - 1)
            self.appointments[next_id] = Appointment(
                id=next_id,
                title=title,
                duration=duration,
                category=category,
                description=None if number % 7 == 3 else f"{title}: {duration} minutes, {category.lower()}.",
                img_url=None if number % 5 == 2 else f"https://example.com/img/{next_id}.png",
                instructor_ids=tuple(sorted(rng.sample(teams[category], 1 if variant == "Premium" else 2))),
                requires_confirmation=category in ("Wellness", "Health") and variant in ("Plus", "Extended"),
                premium_only=variant == "Premium",
                lead_minutes=rng.choice(LEAD_TIMES),
                online=not offline,
            )

    def _make_customers(self, rng: random.Random, count: int) -> None:
        today = self.now().date()
        sampled = sorted(rng.sample(range(1_210_005_000, 1_210_009_000), count))
        ids = [DEMO_CUSTOMER_ID, *(i for i in sampled if i != DEMO_CUSTOMER_ID)][:count]
        categories = list(_BASES)
        for index, customer_id in enumerate(ids):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            customer = Customer(
                id=customer_id,
                first_name=first,
                last_name=last,
                premium=rng.random() < 0.5,
                contingent={c: rng.randrange(4, 40) for c in categories},
                booking_limit=rng.randrange(4, 12),
            )
            # The first few customers each show one rule, so every ValidationStatus is reachable.
            if index == 0:
                customer.profile, customer.premium, customer.booking_limit = "demo", True, 50
                customer.contingent = dict.fromkeys(categories, 500)
            elif index == 1:
                customer.profile = "idle"
                customer.idle_periods = [(today - dt.timedelta(days=10), today + dt.timedelta(days=60))]
            elif index == 2:
                customer.profile, customer.premium = "no-contingent", True
                customer.contingent = dict.fromkeys(categories, 0)
            elif index == 3:
                customer.profile, customer.premium, customer.booking_limit = "limit-reached", True, 1
            elif index == 4:
                customer.profile, customer.premium = "basic", False
            elif rng.random() < 0.1:
                start = today + dt.timedelta(days=rng.randrange(3, 20))
                customer.idle_periods = [(start, start + dt.timedelta(days=rng.randrange(2, 14)))]
            self.customers[customer_id] = customer

    def _make_history(self, rng: random.Random) -> None:
        """Past bookings for a few customers, and the one future booking of the limit-reached one."""
        now = self.now()
        customers = list(self.customers.values())
        appointments = list(self.appointments.values())
        for customer in customers[:12]:
            for _ in range(rng.randrange(1, 4)):
                appointment = rng.choice(appointments)
                day = now.date() - dt.timedelta(days=rng.randrange(3, 40))
                start = self._grid_start(day, appointment, rng)
                if start is not None:
                    self._record(customer, appointment, start, appointment.instructor_ids[0], now, paid=False)
        limited = next(c for c in customers if c.profile == "limit-reached")
        for offset in range(1, 30):
            day = now.date() + dt.timedelta(days=offset)
            appointment = appointments[offset % len(appointments)]
            start = self._grid_start(day, appointment, rng)
            if start is not None and not appointment.premium_only and appointment.online:
                self._record(limited, appointment, start, appointment.instructor_ids[0], now, paid=True)
                break

    def _add_open_gym(self) -> None:
        appointment_id = max(self.appointments) + 1
        title = "Open Gym 24/7"
        self.appointments[appointment_id] = Appointment(
            id=appointment_id,
            title=title,
            duration=60,
            category="Training",
            description=f"{title}: 60 minutes, training, at any hour of any day.",
            img_url=f"https://example.com/img/{appointment_id}.png",
            instructor_ids=tuple(sorted(self.instructors)[:2]),
            requires_confirmation=False,
            premium_only=False,
            lead_minutes=0,
            all_hours=True,
        )
        self._listed_ids.append(appointment_id)  # the highest id: the list stays sorted

    def _grid_start(self, day: dt.date, appointment: Appointment, rng: random.Random) -> dt.datetime | None:
        starts = list(self._grid(day, appointment))
        return rng.choice(starts) if starts else None

    # -- clock and time grid ---------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return self._clock().astimezone(ZONE)

    def _grid(self, day: dt.date, appointment: Appointment) -> Iterator[dt.datetime]:
        """Slot starts of an appointment on a day: every ``duration`` minutes (elapsed) while the
        studio is open; for an all-hours appointment from local midnight to the next."""
        if appointment.all_hours:
            start, close = _midnight(day), _midnight(day + dt.timedelta(days=1))
        else:
            hours = OPENING_HOURS[day.weekday()]
            if hours is None:
                return
            start = dt.datetime.combine(day, hours[0], ZONE)
            close = dt.datetime.combine(day, hours[1], ZONE)
        step = appointment_length(appointment)
        while _utc(start) + step <= _utc(close):
            yield start
            start = _wall_add(start, step)

    @staticmethod
    def _on_grid(start: dt.datetime, end: dt.datetime, appointment: Appointment) -> bool:
        local = start.astimezone(ZONE)
        step = appointment_length(appointment)
        if appointment.all_hours:  # its grid is elapsed time from midnight, across a DST change too
            on_step = (_utc(start) - _utc(_midnight(local.date()))) % step == dt.timedelta(0)
        else:  # opening hours start after any DST change, so wall minutes and elapsed ones agree
            on_step = (local.hour * 60 + local.minute) % appointment.duration == 0
        return local.second == 0 and local.microsecond == 0 and on_step and _utc(end) - _utc(start) == step

    @staticmethod
    def _studio_open(start: dt.datetime, end: dt.datetime) -> bool:
        local_start, local_end = start.astimezone(ZONE), end.astimezone(ZONE)
        hours = OPENING_HOURS[local_start.weekday()]
        return (
            hours is not None
            and local_start.date() == local_end.date()
            and hours[0] <= local_start.time()
            and local_end.time() <= hours[1]
        )

    # -- lookups ---------------------------------------------------------------------------------
    def appointment(self, appointment_id: int, reference: str = "bookableAppointmentId") -> Appointment:
        """Any appointment, listed or not: GET by id answers those switched off for online booking too."""
        try:
            return self.appointments[appointment_id]
        except KeyError:
            raise _not_found(
                "errormessage.bookable.appointment.not.found", appointment_id, reference
            ) from None

    def customer(self, customer_id: int) -> Customer:
        try:
            return self.customers[customer_id]
        except KeyError:
            raise _not_found("errormessage.customer.not.found", customer_id, "customerId") from None

    def booking(self, booking_id: int) -> BookingRecord:
        try:
            return self.bookings[booking_id]
        except KeyError:
            raise _not_found("errormessage.appointment.booking.not.found", booking_id, "bookingId") from None

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
            now = _utc(self.now())
            low, high = now - LIST_WINDOW, now + LIST_WINDOW
            return sorted(
                (
                    b
                    for b in self._by_customer.get(customer_id, ())
                    if low <= _utc(b.start) and _utc(b.end) <= high
                ),
                key=lambda b: (_utc(b.start), b.id),
            )

    # -- the rules -------------------------------------------------------------------------------
    def _busy(self, start: dt.datetime, end: dt.datetime, *, appointment_id: int | None = None,
              instructor_id: int | None = None, customer_id: int | None = None) -> bool:  # fmt: skip
        begin, finish = _utc(start), _utc(end)
        # Bookings never cross midnight (the studio closes before, and the all-hours grid ends at
        # midnight), so one day's list is enough.
        for b in self._by_day.get(start.astimezone(ZONE).date(), ()):
            if not b.active or _utc(b.start) >= finish or _utc(b.end) <= begin:
                continue
            if appointment_id is not None and b.appointment_id == appointment_id:
                return True
            if instructor_id is not None and b.instructor_id == instructor_id:
                return True
            if customer_id is not None and b.customer_id == customer_id:
                return True
        return False

    def _free_instructors(self, appointment: Appointment, start: dt.datetime, end: dt.datetime,
                          wanted: list[int] | None = None) -> list[int]:  # fmt: skip
        if self._busy(start, end, appointment_id=appointment.id):
            return []  # the appointment's room or device is taken for this window
        candidates = [i for i in appointment.instructor_ids if not wanted or i in wanted]
        return [i for i in candidates if not self._busy(start, end, instructor_id=i)]

    def _time_status(self, appointment: Appointment, start: dt.datetime, end: dt.datetime) -> str:
        """The rules about the appointment and the time alone, whoever books."""
        now, begin, finish = _utc(self.now()), _utc(start), _utc(end)
        if finish <= begin:
            return "END_DATE_TIME_NOT_AFTER_START_DATE_TIME"
        if not appointment.online:
            return "NOT_AVAILABLE"
        if begin <= now:
            return "PAST_START_DATE_TIME"
        if not self._on_grid(start, end, appointment):
            return "PERIOD_DOES_NOT_MATCH"
        if begin - now < appointment.lead_time:
            return "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME"
        if begin - now > self.booking_horizon:
            return "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME"
        if not appointment.all_hours and not self._studio_open(start, end):
            return "STUDIO_CLOSED"
        return "AVAILABLE"

    def check(self, customer: Customer, appointment: Appointment, start: dt.datetime, end: dt.datetime,
              wanted: list[int] | None = None) -> str:  # fmt: skip
        """The ValidationStatus of this slot for this customer, first failing rule first.

        In order: the end after the start; the appointment bookable online; the start in the
        future, on the appointment's grid with its duration, outside its lead time, inside the
        booking horizon, in opening hours; the customer not idle that day, allowed by the
        appointment's restrictions, with a credit in its category, under the booking limit and
        free at that time; the room and one (wanted) instructor free.
        """
        status = self._time_status(appointment, start, end)
        if status != "AVAILABLE":
            return status
        local = start.astimezone(ZONE)
        if any(first <= local.date() <= last for first, last in customer.idle_periods):
            return "CUSTOMER_IDLE"
        if appointment.premium_only and not customer.premium:
            return "BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED"
        if customer.contingent.get(appointment.category, 0) <= 0:
            return "NO_CONTINGENT"
        now = _utc(self.now())
        active = sum(1 for b in self._by_customer.get(customer.id, ()) if b.active and _utc(b.end) > now)
        if active >= customer.booking_limit:
            return "BOOKING_LIMIT_REACHED"
        if self._busy(start, end, customer_id=customer.id):
            return "CUSTOMER_IN_OTHER_BOOKING"
        if not self._free_instructors(appointment, start, end, wanted):
            return "RESOURCE_NOT_AVAILABLE"
        return "AVAILABLE"

    def validate(self, customer_id: int, appointment_id: int, start: dt.datetime, end: dt.datetime,
                 wanted: list[int] | None = None) -> str:  # fmt: skip
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id)
            self._check_instructors(wanted)
            return self.check(customer, appointment, start, end, wanted)

    def _check_instructors(self, wanted: list[int] | None) -> None:
        for instructor_id in wanted or ():
            if instructor_id not in self.instructors:
                raise RuleViolation(
                    400,
                    "errormessage.instructor.not.found",
                    "instructorIds",
                    params={"id": instructor_id},
                    error_args=[{"id": instructor_id}],
                    typed_args=[{"value": instructor_id, "type": "INTEGER"}],
                )

    def book(self, customer_id: int, appointment_id: int, start: dt.datetime, end: dt.datetime,
             wanted: list[int] | None = None) -> BookingRecord:  # fmt: skip
        """Book the slot, or raise :func:`refusal` (400, the ValidationStatus as errorCode)."""
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id)
            self._check_instructors(wanted)
            status = self.check(customer, appointment, start, end, wanted)
            if status != "AVAILABLE":
                raise refusal(status)
            instructor = self._free_instructors(appointment, start, end, wanted)[0]
            return self._record(customer, appointment, start, instructor, self.now(), paid=True)

    def _record(self, customer: Customer, appointment: Appointment, start: dt.datetime, instructor_id: int,
                now: dt.datetime, *, paid: bool) -> BookingRecord:  # fmt: skip
        self._next_booking_id += 1 + (self._next_booking_id % 7)
        record = BookingRecord(
            id=self._next_booking_id,
            customer_id=customer.id,
            appointment_id=appointment.id,
            start=start.astimezone(ZONE),
            end=_wall_add(start.astimezone(ZONE), appointment_length(appointment)),
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
        is refused as a concurrent modification (409), as the API's optimistic locking does."""
        with self.lock:
            record = self.booking(booking_id)
            if booking_id in self._modifying:
                raise RuleViolation(409, CONCURRENT_MODIFICATION, "bookingId")
            self._modifying.add(booking_id)
        try:
            yield record
        finally:
            with self.lock:
                self._modifying.discard(booking_id)

    def cancel(self, booking_id: int) -> BookingRecord:
        """Cancel a booking that has not started; the slot and the credit come back."""
        with self.lock:
            record = self.booking(booking_id)
            if not record.active:
                raise RuleViolation(
                    400,
                    "errormessage.appointment.booking.already.canceled",
                    "bookingId",
                    params={"id": booking_id},
                    error_args=[{"id": booking_id}],
                    typed_args=[{"value": booking_id, "type": "INTEGER"}],
                )
            if _utc(record.start) <= _utc(self.now()):
                raise RuleViolation(
                    400,
                    "errormessage.appointment.booking.already.started",
                    "bookingId",
                    params={"id": booking_id},
                    error_args=[{"id": booking_id}],
                    typed_args=[{"value": booking_id, "type": "INTEGER"}],
                )
            record.status = "CANCELED"
            category = self.appointments[record.appointment_id].category
            customer = self.customers[record.customer_id]
            customer.contingent[category] = customer.contingent.get(category, 0) + 1
            return record

    def slots(self, appointment_id: int, first_day: dt.date, days: int,
              customer_id: int | None = None) -> list[tuple[dt.datetime, dt.datetime, list[Instructor]]]:  # fmt: skip
        """Free slots, earliest first: only those the time rules allow (outside the lead time,
        inside the horizon, none for an appointment not bookable online); with a customer, only
        those that customer may book."""
        with self.lock:
            appointment = self.appointment(appointment_id)
            customer = self.customer(customer_id) if customer_id is not None else None
            step = appointment_length(appointment)
            found = []
            for offset in range(days):
                for start in self._grid(first_day + dt.timedelta(days=offset), appointment):
                    end = _wall_add(start, step)
                    if self._time_status(appointment, start, end) != "AVAILABLE":
                        continue
                    if customer is not None and self.check(customer, appointment, start, end) != "AVAILABLE":
                        continue
                    free = self._free_instructors(appointment, start, end)
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
                contingent=dict.fromkeys(_BASES, credits),
                booking_limit=booking_limit,
                profile="added",
            )
            self.customers[customer_id] = customer
            return customer

    def snapshot(self) -> list[BookingRecord]:
        """A consistent copy of every booking, taken under the lock."""
        with self.lock:
            return [BookingRecord(**vars(b)) for b in self.bookings.values()]


def appointment_length(appointment: Appointment) -> dt.timedelta:
    return dt.timedelta(minutes=appointment.duration)


def _midnight(day: dt.date) -> dt.datetime:
    """The start of a day in the studio's zone (never in a DST gap or fold in Europe/Berlin)."""
    return dt.datetime.combine(day, dt.time(0), ZONE)


def _wall_add(start: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """Add a duration in elapsed time, then show the result in the studio's zone (DST-safe)."""
    return (start.astimezone(dt.UTC) + step).astimezone(ZONE)
