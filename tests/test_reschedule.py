"""reschedule: the new booking first, then the old one canceled; the appointment found by its
title when not given; and what is left when a step fails. Through the fake API
(tests/fakeapi.py), on both HTTP backends. A reschedule cancelled by its caller mid-way:
tests/test_booking_outcome.py.
"""

from __future__ import annotations

import json

import pytest
from fakeapi import BOOK, BOOKINGS, FakeAPI, httpx_alone, make, status_once, wire

from perfectgym_appointments_client import (
    ConfigurationError,
    RescheduleError,
    SlotNotBookableError,
    ValidationStatus,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]


async def test_reschedule_books_new_then_cancels_old() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        new = await client.reschedule(old.booking_id, slots[1], bookable_appointment_id=1)
    assert new.start_date_time.hour == 9
    methods = [(r.method, r.url.path) for r in api.requests]
    assert methods.index(
        ("POST", BOOK), methods.index(("GET", f"{BOOKINGS}/{old.booking_id}"))
    ) < methods.index(("DELETE", f"{BOOKINGS}/{old.booking_id}"))
    assert [b["bookingId"] for b in api.live_bookings(5)] == [new.booking_id]


async def test_reschedule_finds_the_appointment_by_title() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        new = await client.reschedule(old.booking_id, slots[2])
    assert (
        json.loads(next(r for r in reversed(api.requests) if r.url.path == BOOK).content)[
            "bookableAppointmentId"
        ]
        == 1
    )
    assert new.start_date_time.hour == 10


async def test_reschedule_keeps_the_new_booking_when_cancel_fails() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        api.faults.append(status_once(400, "DELETE", f"{BOOKINGS}/{old.booking_id}"))
        with pytest.raises(RescheduleError) as info:
            await client.reschedule(old.booking_id, slots[1], bookable_appointment_id=1)
    error = info.value
    assert error.old_booking_id == old.booking_id
    assert str(old.booking_id) in str(error)
    assert str(error.new_booking_id) in str(error)
    assert sorted(b["bookingId"] for b in api.live_bookings(5)) == sorted(
        [old.booking_id, error.new_booking_id]
    )


@httpx_alone
async def test_a_reschedule_to_a_slot_that_does_not_validate_changes_nothing() -> None:
    api = FakeAPI()
    api.validation[wire(9)] = "STUDIO_CLOSED"
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        with pytest.raises(SlotNotBookableError) as info:
            await client.reschedule(old.booking_id, slots[1], bookable_appointment_id=1)
    assert info.value.status is ValidationStatus.STUDIO_CLOSED
    assert [b["bookingId"] for b in api.live_bookings(5)] == [old.booking_id]
    assert api.count("POST", BOOK) == 1
    assert api.count("DELETE", f"{BOOKINGS}/{old.booking_id}") == 0


@httpx_alone
async def test_a_reschedule_cannot_guess_the_appointment_when_titles_repeat() -> None:
    api = FakeAPI()
    api.appointments[1]["title"] = "Appointment 1"  # two bookable appointments of that title
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(customer_id=5, bookable_appointment_id=1, slot=slots[0])
        with pytest.raises(ConfigurationError, match=r"\(2 match its title\): pass bookable_appointment_id"):
            await client.reschedule(old.booking_id, slots[1])
    assert [b["bookingId"] for b in api.live_bookings(5)] == [old.booking_id]
    assert api.count("POST", BOOK) == 1
