"""The studio's seeded data: instructors, appointments, customers and their past bookings.

Everything is drawn from one ``random.Random`` in a fixed order, so a seed always gives the same
studio; the "Open Gym 24/7" appointment is added last and draws nothing, so it leaves the seeded
data as it would be without it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from ._calendar import grid
from ._model import DEMO_CUSTOMER_ID, LEAD_TIMES, Appointment, Customer, Instructor

__all__ = [
    "CATEGORIES",
    "PastBooking",
    "history",
    "make_appointments",
    "make_customers",
    "make_instructors",
    "open_gym",
]

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
CATEGORIES = tuple(_BASES)
_VARIANTS = ["Express", "Classic", "Plus", "Extended", "Premium", "Duo"]
_FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Kira", "Lukas",
          "Mia", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Udo", "Vera", "Wim", "Yara", "Zoe"]  # fmt: skip
_LAST = ["Schmidt", "Meyer", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch", "Richter", "Klein",
         "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun", "Hartmann", "Krause", "Lange"]  # fmt: skip

# (customer, appointment, start, instructor id, whether it took a credit)
PastBooking = tuple[Customer, Appointment, dt.datetime, int, bool]


def make_instructors(rng: random.Random) -> dict[int, Instructor]:
    ids = sorted(rng.sample(range(1_210_000_000, 1_210_001_000), 16))
    firsts = rng.sample(_FIRST, 16)
    instructors = {}
    for index, (instructor_id, first) in enumerate(zip(ids, firsts, strict=True)):
        last = rng.choice(_LAST)
        public = f"Coach {first}" if index % 3 else None
        instructors[instructor_id] = Instructor(instructor_id, first, last, public)
    return instructors


def make_appointments(
    rng: random.Random, count: int, instructors: dict[int, Instructor]
) -> dict[int, Appointment]:
    pool = list(instructors)
    # each category has its own team of instructors, overlapping a little
    teams = {category: rng.sample(pool, 5) for category in _BASES}
    titles = [
        (c, f"{base} {variant}") for c, bases in _BASES.items() for base in bases for variant in _VARIANTS
    ]
    appointments = {}
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
        appointments[next_id] = Appointment(
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
    return appointments


def make_customers(rng: random.Random, count: int, today: dt.date) -> dict[int, Customer]:
    sampled = sorted(rng.sample(range(1_210_005_000, 1_210_009_000), count))
    ids = [DEMO_CUSTOMER_ID, *(i for i in sampled if i != DEMO_CUSTOMER_ID)][:count]
    customers = {}
    for index, customer_id in enumerate(ids):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        customer = Customer(
            id=customer_id,
            first_name=first,
            last_name=last,
            premium=rng.random() < 0.5,
            contingent={c: rng.randrange(4, 40) for c in CATEGORIES},
            booking_limit=rng.randrange(4, 12),
        )
        # The first few customers each show one rule, so every ValidationStatus is reachable.
        if index == 0:
            customer.profile, customer.premium, customer.booking_limit = "demo", True, 50
            customer.contingent = dict.fromkeys(CATEGORIES, 500)
        elif index == 1:
            customer.profile = "idle"
            customer.idle_periods = [(today - dt.timedelta(days=10), today + dt.timedelta(days=60))]
        elif index == 2:
            customer.profile, customer.premium = "no-contingent", True
            customer.contingent = dict.fromkeys(CATEGORIES, 0)
        elif index == 3:
            customer.profile, customer.premium, customer.booking_limit = "limit-reached", True, 1
        elif index == 4:
            customer.profile, customer.premium = "basic", False
        elif rng.random() < 0.1:
            start = today + dt.timedelta(days=rng.randrange(3, 20))
            customer.idle_periods = [(start, start + dt.timedelta(days=rng.randrange(2, 14)))]
        customers[customer_id] = customer
    return customers


def history(
    rng: random.Random, now: dt.datetime, customers: list[Customer], appointments: list[Appointment]
) -> Iterator[PastBooking]:
    """Past bookings for a few customers (they took no credit), then the one future booking of
    the limit-reached customer."""
    for customer in customers[:12]:
        for _ in range(rng.randrange(1, 4)):
            appointment = rng.choice(appointments)
            day = now.date() - dt.timedelta(days=rng.randrange(3, 40))
            start = _grid_start(day, appointment, rng)
            if start is not None:
                yield customer, appointment, start, appointment.instructor_ids[0], False
    limited = next(c for c in customers if c.profile == "limit-reached")
    for offset in range(1, 30):
        day = now.date() + dt.timedelta(days=offset)
        appointment = appointments[offset % len(appointments)]
        start = _grid_start(day, appointment, rng)
        if start is not None and not appointment.premium_only and appointment.online:
            yield limited, appointment, start, appointment.instructor_ids[0], True
            return


def open_gym(appointments: dict[int, Appointment], instructors: dict[int, Instructor]) -> Appointment:
    """ "Open Gym 24/7": the id after every seeded one, bookable at any hour of any day."""
    appointment_id = max(appointments) + 1
    title = "Open Gym 24/7"
    return Appointment(
        id=appointment_id,
        title=title,
        duration=60,
        category="Training",
        description=f"{title}: 60 minutes, training, at any hour of any day.",
        img_url=f"https://example.com/img/{appointment_id}.png",
        instructor_ids=tuple(sorted(instructors)[:2]),
        requires_confirmation=False,
        premium_only=False,
        lead_minutes=0,
        all_hours=True,
    )


def _grid_start(day: dt.date, appointment: Appointment, rng: random.Random) -> dt.datetime | None:
    starts = list(grid(day, appointment))
    return rng.choice(starts) if starts else None
