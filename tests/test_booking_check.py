"""The booking check: when a booking request may have made a booking it got no answer for (a
dropped connection, a 5xx, a 409, a garbled 200), what book returns, repeats and reports. Inside
the bookings list's window (two weeks around now) the list is the evidence; outside it, a
validation after the failure; a booking a repeat made twice is canceled. A member is never booked
twice, and never told "not booked" when they are.

Through the fake API (tests/fakeapi.py); the same rules over real sockets against the sandbox are
in tests/test_booking_check_sandbox.py, and the soak exercises them at random.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fakeapi import (
    BOOK,
    BOOKINGS,
    FAR_DAY,
    FakeAPI,
    answer_once,
    commit_then_garble,
    first_slot,
    httpx_alone,
    make,
    refusal,
    slot_json,
    status_once,
)

from perfectgym_appointments_client import (
    APIConnectionError,
    BookingIdUnknownError,
    BookingOutcome,
    BookingOutcomeUnknownError,
    OutcomeKind,
    ResponseValidationError,
    Slot,
    SlotNotBookableError,
    ValidationStatus,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]

LOGGER = "perfectgym_appointments_client"


def far_api() -> FakeAPI:
    """Slots three weeks out: past the bookings list's two-week window."""
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7], day=FAR_DAY) for h in (8, 9, 10)]
    return api


def commit_then(status: int) -> Any:
    """The booking is made, then the answer is lost: a ``status`` error instead."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK:
            fault.api.book(json.loads(request.content))  # type: ignore[attr-defined]
            return httpx.Response(status, json={"errorMessage": "lost", "errorCode": "x"})
        return None

    return fault


def add(api: FakeAPI, fault: Any) -> None:
    fault.api = api
    api.faults.append(fault)


def late_commit(api: FakeAPI) -> None:
    """The first booking request times out at the gateway but lands just before the repeat."""
    first: dict[str, Any] = {}

    def slow_first(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK:
            first["body"] = json.loads(request.content)
            return httpx.Response(504, json={"errorMessage": "gateway timeout", "errorCode": "x"})
        return None

    def lands_before_the_repeat(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == BOOK and "body" in first:
            api.book(first.pop("body"))
        return None

    api.faults += [slow_first, lands_before_the_repeat]


# -- inside the bookings list's window: the list is the evidence -------------------------------------


async def test_commit_then_drop_returns_the_booking_the_server_made() -> None:
    api = FakeAPI()
    api.drop_after_commit = 1
    async with make(api) as client:
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
    assert api.count("POST", BOOK) == 1  # never sent twice
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert api.count("GET", BOOKINGS) == 1


async def test_ambiguous_5xx_that_made_nothing_is_retried_after_checking() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
        )
    assert api.count("POST", BOOK) == 2
    # checked before the second attempt, and once more after it (for a duplicate)
    assert api.count("GET", BOOKINGS) == 2
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_409_after_a_commit_is_found_not_repeated() -> None:
    api = FakeAPI()
    add(api, commit_then(409))
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
    assert api.count("POST", BOOK) == 1
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_a_renamed_appointment_is_still_found_by_its_instant() -> None:
    api = FakeAPI()
    api.titles[1] = "Personal Training (renamed)"
    api.drop_after_commit = 1
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
    assert api.count("POST", BOOK) == 1
    assert booking.title == "Personal Training (renamed)"
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_a_booking_at_the_same_wall_time_on_another_day_is_not_taken_for_ours() -> None:
    api = FakeAPI()
    other = slot_json(8, day=FAR_DAY)
    api.book({"customerId": 5, "bookableAppointmentId": 1, **other})  # an older booking, elsewhere
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
    assert api.count("POST", BOOK) == 2
    assert len(api.live_bookings(5)) == 2
    assert booking.start_date_time != Slot.from_dict(other).start_date_time


@httpx_alone
async def test_of_two_bookings_at_the_instant_the_one_of_the_booked_appointment_is_returned() -> None:
    """The customer already holds a booking at that instant (another appointment, a newer id); the
    request commits and its answer is lost: the check picks the booking whose title matches."""
    api = FakeAPI()
    api.titles = {1: "Appointment 1", 2: "Appointment 2"}
    slot = slot_json(8)
    api.next_booking_id = 900
    api.book({"customerId": 5, "bookableAppointmentId": 2, **slot})  # id 900, the other appointment
    api.next_booking_id = 100
    api.drop_after_commit = 1  # ours: id 100, then the connection drops
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
        )
    assert (booking.booking_id, booking.title) == (100, "Appointment 1")
    assert api.count("POST", BOOK) == 1  # found, not repeated
    assert api.count("GET", "/v1/appointments/bookable/1") == 1  # the title, asked for once
    assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.BOOKED, 100)]


@httpx_alone
async def test_customer_in_other_booking_after_a_repeat_that_made_nothing_is_a_refusal() -> None:
    """The repeat's "customer in other booking" could be our first request, committed late; the
    check proves it is not (nothing at that instant), so it is the studio's answer."""
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))  # nothing made
    api.faults.append(
        answer_once("POST", BOOK, 400, refusal("CUSTOMER_IN_OTHER_BOOKING", "CUSTOMER_IN_OTHER_BOOKING"))
    )
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(SlotNotBookableError) as info:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert info.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
    assert api.count("POST", BOOK) == 2
    assert api.live_bookings(5) == []
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


async def test_outcome_unknown_when_the_check_fails_too() -> None:
    api = FakeAPI()
    api.drop_after_commit = 1
    for _ in range(9):  # the bookings listing fails on every retry of every round of the check
        api.faults.append(status_once(503, "GET", BOOKINGS))
    async with make(api) as client:
        with pytest.raises(BookingOutcomeUnknownError) as info:
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
            )
    assert isinstance(info.value.cause, APIConnectionError)
    assert api.count("POST", BOOK) == 1  # no blind retry
    assert api.count("GET", BOOKINGS) == 9  # three rounds of three attempts
    assert len(api.live_bookings(5)) == 1


async def test_the_check_tries_harder_than_a_read() -> None:
    api = FakeAPI()
    api.drop_after_commit = 1
    for _ in range(8):  # all but the last attempt of the last round fail
        api.faults.append(status_once(503, "GET", BOOKINGS))
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
        )
    assert api.count("POST", BOOK) == 1
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


# -- outside the window: a validation after the failure is the evidence ------------------------------


async def test_far_slot_made_then_dropped_is_reported_booked_with_unknown_id() -> None:
    api = far_api()
    api.drop_after_commit = 1
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(BookingIdUnknownError) as info:
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=slot
            )  # validates AVAILABLE first: evidence for the check
    error = info.value
    assert api.count("POST", BOOK) == 1  # never a second booking request
    assert len(api.live_bookings(5)) == 1
    assert api.count("GET", BOOKINGS) == 0  # the list cannot show it: not asked
    assert error.customer_id == 5
    assert error.start_date_time == slot.start_date_time
    assert error.visible_from < FAR_DAY
    assert "list_bookings(5)" in str(error)
    assert [o.kind for o in outcomes] == [OutcomeKind.BOOKED_ID_UNKNOWN]


async def test_far_slot_without_prior_validation_is_unknown_not_rebooked() -> None:
    api = far_api()
    api.drop_after_commit = 1
    async with make(api) as client:
        slot = (await client.get_slots(1))[0]
        with pytest.raises(BookingOutcomeUnknownError, match="proves neither") as info:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert api.count("POST", BOOK) == 1
    assert len(api.live_bookings(5)) == 1
    assert info.value.start_date_time == slot.start_date_time


async def test_far_slot_that_validates_available_again_is_rebooked() -> None:
    api = far_api()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
    assert api.count("POST", BOOK) == 2
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


# -- a booking made twice ----------------------------------------------------------------------------


async def test_a_late_commit_seen_after_the_repeat_is_canceled_and_reported() -> None:
    api = FakeAPI()
    late_commit(api)
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
        )
    live = api.live_bookings(5)
    assert [b["bookingId"] for b in live] == [booking.booking_id]  # one left: the older
    assert api.count("POST", BOOK) == 2
    assert len(api.bookings) == 2
    (outcome,) = outcomes
    assert outcome.kind is OutcomeKind.BOOKED
    assert outcome.booking_id == booking.booking_id
    assert len(outcome.canceled_booking_ids) == 1
    assert outcome.canceled_booking_ids[0] != booking.booking_id


@httpx_alone
async def test_a_duplicate_that_cannot_be_canceled_is_logged_and_the_booking_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeAPI()
    late_commit(api)
    forbidden = {"errorMessage": "no privilege", "errorCode": "errormessage.no.privilege"}
    api.faults.append(lambda r: httpx.Response(403, json=forbidden) if r.method == "DELETE" else None)
    outcomes: list[BookingOutcome] = []
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with make(api, outcomes) as client:
            booking = await client.book(
                customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
            )
    live = sorted(b["bookingId"] for b in api.live_bookings(5))
    assert len(live) == 2  # both stand: the second could not be canceled
    assert booking.booking_id == live[0]  # the older one is the one kept
    assert [(o.kind, o.booking_id, o.canceled_booking_ids) for o in outcomes] == [
        (OutcomeKind.BOOKED, booking.booking_id, ())
    ]
    assert any(
        "booking was made twice" in r.getMessage() and "could not be canceled" in r.getMessage()
        for r in caplog.records
    )


@httpx_alone
async def test_a_failed_look_for_a_duplicate_is_logged_and_the_booking_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))  # nothing made: the request is repeated
    lists: list[int] = []

    def list_fails_after_the_check(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == BOOKINGS:
            lists.append(1)
            if len(lists) > 1:  # the check's own look answers; the look for a duplicate does not
                return httpx.Response(
                    403, json={"errorMessage": "no", "errorCode": "errormessage.no.privilege"}
                )
        return None

    # A fault that stays: the fake removes a fault once it answers, so re-add it each time.
    class Sticky:
        def __call__(self, request: httpx.Request) -> httpx.Response | None:
            response = list_fails_after_the_check(request)
            if response is not None:
                api.faults.append(self)
            return response

    api.faults.append(Sticky())
    outcomes: list[BookingOutcome] = []
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with make(api, outcomes) as client:
            booking = await client.book(
                customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
            )
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert api.count("POST", BOOK) == 2
    assert [(o.kind, o.canceled_booking_ids) for o in outcomes] == [(OutcomeKind.BOOKED, ())]
    assert any(
        f"could not look for a duplicate of booking {booking.booking_id}" in r.getMessage()
        for r in caplog.records
    )


# -- a garbled answer --------------------------------------------------------------------------------


async def test_malformed_success_on_book_returns_the_booking_the_server_made() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = await first_slot(client)
        api.faults.append(commit_then_garble(api, "POST"))
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert api.count("POST", BOOK) == 1  # not booked again
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert booking.start_date_time == slot.start_date_time


async def test_malformed_success_on_book_that_made_nothing_is_raised_not_retried() -> None:
    api = FakeAPI()
    api.faults.append(lambda r: httpx.Response(200, content=b"{}") if r.url.path == BOOK else None)
    async with make(api) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=await first_slot(client), validate=False
            )
    assert info.value.operation == "bookAppointmentBooking"
    assert api.count("POST", BOOK) == 1
    assert api.count("GET", BOOKINGS) == 1  # it looked before giving up
    assert api.live_bookings(5) == []
