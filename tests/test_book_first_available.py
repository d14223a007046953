"""book_first_available: the earliest slot that validates, within the filters asked for; a slot
taken meanwhile or not validated skips to the next; an answer no other slot can change stops the
search, saying why. Through the fake API (tests/fakeapi.py), on both HTTP backends.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fakeapi import (
    BERLIN,
    BOOK,
    DAY,
    VALIDATE,
    FakeAPI,
    answer_once,
    httpx_alone,
    make,
    refusal,
    slot_json,
    status_once,
    wire,
)

from perfectgym_appointments_client import NoSlotAvailableError, SlotNotBookableError, ValidationStatus

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]


def refused_once(status: str) -> Any:
    """The studio refuses one booking request the way the API does: 400, the status as errorCode."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK:
            body = {
                "errorMessage": f"The slot cannot be booked: {status}",
                "errorCode": status,
                "reference": "startDateTime",
                "typedArgs": [{"value": status, "type": "ENUM"}],
            }
            return httpx.Response(400, json=body)
        return None

    return fault


async def test_books_the_earliest_available_slot() -> None:
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7 if h % 2 else 8]) for h in range(8, 20)]
    for h in (8, 9, 10):
        api.validation[wire(h)] = "CUSTOMER_IN_OTHER_BOOKING"
    async with make(api) as client:
        booking = await client.book_first_available(customer_id=5, bookable_appointment_id=1, concurrency=4)
    assert booking.start_date_time.hour == 11
    assert api.count("POST", BOOK) == 1
    assert 1 < api.max_in_flight <= 4


async def test_first_available_filters_time_and_instructor() -> None:
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7 if h % 2 else 8]) for h in range(8, 20)]
    async with make(api) as client:
        by_time = await client.book_first_available(
            customer_id=5, bookable_appointment_id=1, earliest=dt.time(12, 0), latest=dt.time(18, 0)
        )
        by_instructor = await client.book_first_available(
            customer_id=6, bookable_appointment_id=1, instructor_id=7
        )
        aware_bound = dt.datetime.combine(DAY, dt.time(15, 30), BERLIN)
        by_datetime = await client.book_first_available(
            customer_id=9, bookable_appointment_id=1, earliest=aware_bound
        )
    assert by_time.start_date_time.hour == 12
    assert by_instructor.start_date_time.hour == 9
    assert json.loads([r for r in api.requests if r.url.path == BOOK][1].content)["instructorIds"] == [7]
    assert by_datetime.start_date_time.hour == 16


async def test_no_slot_available_says_why() -> None:
    api = FakeAPI()
    for h in (8, 9, 10, 11):
        api.validation[wire(h)] = "CUSTOMER_IDLE" if h < 10 else "STUDIO_CLOSED"
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(customer_id=5, bookable_appointment_id=1, days_ahead=1)
    assert info.value.checked == 4
    assert info.value.statuses == {"CUSTOMER_IDLE": 2, "STUDIO_CLOSED": 2}
    assert api.count("POST", BOOK) == 0


@pytest.mark.parametrize(
    "status", ["NO_CONTINGENT", "BOOKING_LIMIT_REACHED", "BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED"]
)
async def test_book_first_available_stops_at_an_answer_no_other_slot_can_change(status: str) -> None:
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7]) for h in range(8, 20)]
    api.validation[wire(9)] = "STUDIO_CLOSED"
    api.validation[wire(10)] = status
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(
                customer_id=5, bookable_appointment_id=1, days_ahead=1, earliest=dt.time(9), concurrency=1
            )
    # 09:00 is closed, 10:00 says the customer can book nothing here: the nine later slots are
    # never asked about.
    assert info.value.checked == 2
    assert info.value.statuses == {"STUDIO_CLOSED": 1, status: 1}
    assert api.count("POST", "/v1/appointments/bookable/validate") == 2
    assert api.count("POST", BOOK) == 0


async def test_slot_taken_meanwhile_moves_on_to_the_next() -> None:
    api = FakeAPI()
    api.faults.append(refused_once("RESOURCE_NOT_AVAILABLE"))
    async with make(api) as client:
        booking = await client.book_first_available(customer_id=5, bookable_appointment_id=1, days_ahead=1)
    assert booking.start_date_time.hour == 9
    assert len(api.live_bookings(5)) == 1


@httpx_alone
async def test_validation_errors_are_counted_and_the_next_slot_is_tried() -> None:
    api = FakeAPI()
    api.faults += [status_once(500, "POST", VALIDATE), status_once(500, "POST", VALIDATE)]
    async with make(api) as client:
        booking = await client.book_first_available(
            customer_id=5, bookable_appointment_id=1, days_ahead=1, concurrency=1
        )
    assert booking.start_date_time.hour == 10  # 08:00 and 09:00 could not be validated
    assert len(api.live_bookings(5)) == 1


@httpx_alone
async def test_when_every_validation_fails_the_first_error_is_the_cause() -> None:
    api = FakeAPI()
    api.faults += [status_once(500, "POST", VALIDATE) for _ in range(4)]
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(
                customer_id=5, bookable_appointment_id=1, days_ahead=1, concurrency=2
            )
    assert info.value.statuses == {"ERROR": 4}
    assert info.value.checked == 4
    assert getattr(info.value.__cause__, "status_code", None) == 500
    assert api.count("POST", BOOK) == 0


@httpx_alone
async def test_a_customer_wide_refusal_at_booking_time_stops_the_search() -> None:
    api = FakeAPI()
    api.faults.append(answer_once("POST", BOOK, 400, refusal("NO_CONTINGENT", "NO_CONTINGENT")))
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(
                customer_id=5, bookable_appointment_id=1, days_ahead=1, concurrency=1
            )
    # The first slot validated AVAILABLE, then the booking said the customer has no credit left:
    # no other slot can change that.
    assert info.value.statuses == {"TAKEN_MEANWHILE": 1}
    assert info.value.checked == 1
    assert isinstance(info.value.__cause__, SlotNotBookableError)
    assert info.value.__cause__.status is ValidationStatus.NO_CONTINGENT
    assert api.count("POST", BOOK) == 1
