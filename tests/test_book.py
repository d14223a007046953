"""book: the request it sends, the refusals (a validation status, a 400 naming one, no retry budget)
and the retries that need no booking check (a rate limit, a connection never made). Through the
fake API (tests/fakeapi.py), on both HTTP backends. When a booking request may have made a
booking it did not answer for: tests/test_booking_check.py.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from fakeapi import (
    BERLIN,
    BOOK,
    BOOKINGS,
    DAY,
    FakeAPI,
    answer_once,
    first_slot,
    httpx_alone,
    make,
    raise_once,
    refusal,
    status_once,
    wire,
)
from not_in_spec import enum_value

from perfectgym_appointments_client import (
    BadRequestError,
    Booking,
    BookingOutcome,
    BookingStatus,
    OutcomeKind,
    PerfectGymError,
    SlotNotBookableError,
    ValidationStatus,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]


# -- the request -------------------------------------------------------------------------------------


async def test_book_validates_then_books_and_sends_the_slot_back_verbatim() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = await first_slot(client)
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)
    assert isinstance(booking, Booking)
    assert booking.customer_id == 5
    assert booking.is_confirmed
    assert not booking.needs_confirmation
    sent = json.loads(next(r for r in api.requests if r.url.path == BOOK).content)
    assert sent == {
        "customerId": 5,
        "bookableAppointmentId": 1,
        "startDateTime": wire(8),
        "endDateTime": wire(9, millis=False),
        "instructorIds": [7],
    }
    assert api.count("POST", "/v1/appointments/bookable/validate") == 1


async def test_book_with_a_user_datetime_slot() -> None:
    api = FakeAPI()

    class MySlot:
        start_date_time = dt.datetime.combine(DAY, dt.time(15), BERLIN)
        end_date_time = dt.datetime.combine(DAY, dt.time(16), BERLIN)

    async with make(api) as client:
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=MySlot(), validate=False)
    sent = json.loads(api.requests[-1].content)
    assert sent["startDateTime"] == wire(15)
    assert "instructorIds" not in sent
    assert booking.start_date_time == MySlot.start_date_time


async def test_confirmation_required_is_never_reported_as_booked() -> None:
    api = FakeAPI()
    api.booking_status = "BOOKED_WITH_CONFIRMATION_REQUIRED"
    async with make(api) as client:
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
    assert booking.booking_status is BookingStatus.BOOKED_WITH_CONFIRMATION_REQUIRED
    assert booking.needs_confirmation
    assert not booking.is_confirmed


# -- refusals ----------------------------------------------------------------------------------------


async def test_refused_validation_books_nothing() -> None:
    api = FakeAPI()
    api.validation[wire(8)] = "NO_CONTINGENT"
    async with make(api) as client:
        with pytest.raises(SlotNotBookableError) as info:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
    assert info.value.status is ValidationStatus.NO_CONTINGENT
    assert api.count("POST", BOOK) == 0


async def test_unknown_validation_status_is_refused_not_crashed() -> None:
    unknown = enum_value("ValidationStatus", like="WAITLIST_ONLY")
    api = FakeAPI()
    api.validation[wire(8)] = unknown
    async with make(api) as client:
        slot = await first_slot(client)
        status = await client.validate_slot(customer_id=5, bookable_appointment_id=1, slot=slot)
        assert status.value == unknown
        assert str(status) == unknown
        with pytest.raises(SlotNotBookableError, match=unknown):
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)


@httpx_alone
async def test_a_refusal_named_only_in_typed_args_is_slot_not_bookable() -> None:
    api = FakeAPI()
    # The errorCode is a translation key; the status is the ENUM argument.
    api.faults.append(
        answer_once("POST", BOOK, 400, refusal("errormessage.booking.refused", "STUDIO_CLOSED"))
    )
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(SlotNotBookableError) as info:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert info.value.status is ValidationStatus.STUDIO_CLOSED
    assert api.count("POST", BOOK) == 1
    assert api.live_bookings(5) == []
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


@httpx_alone
async def test_a_400_whose_typed_args_name_no_status_is_not_a_refusal() -> None:
    api = FakeAPI()
    body = {
        "errorMessage": "bad",
        "errorCode": "errormessage.validation",
        "typedArgs": [{"value": "X", "type": "ENUM"}],
    }
    api.faults.append(answer_once("POST", BOOK, 400, body))
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(BadRequestError) as info:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert not isinstance(info.value, SlotNotBookableError)
    assert info.value.error_code == "errormessage.validation"
    assert api.count("POST", BOOK) == 1  # an answer: nothing made, nothing repeated
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


async def test_no_retry_budget_means_no_second_booking_request() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api, max_retries=0) as client:
        with pytest.raises(PerfectGymError):
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
            )
    assert api.count("POST", BOOK) == 1
    assert api.live_bookings(5) == []


# -- retries that need no check ----------------------------------------------------------------------


async def test_rate_limited_booking_is_retried_without_checking() -> None:
    api = FakeAPI()
    api.faults.append(status_once(429, "POST", BOOK, {"Retry-After": "1"}))
    async with make(api) as client:
        await client.book(
            customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
        )
    assert api.count("POST", BOOK) == 2
    assert api.count("GET", BOOKINGS) == 0


async def test_connect_failure_is_retried_without_checking() -> None:
    api = FakeAPI()
    api.faults.append(raise_once(httpx.ConnectError("refused"), "POST", BOOK))
    async with make(api) as client:
        await client.book(
            customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
        )
    assert api.count("POST", BOOK) == 2
    assert len(api.live_bookings(5)) == 1
