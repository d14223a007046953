"""Booking flows in the cases the other booking tests leave out, through the fake API: a refusal
named only in typedArgs, a refusal after a repeat, a duplicate that cannot be canceled or looked
for, two bookings at the same instant, validation errors and a customer-wide refusal in
book_first_available, a reschedule refused or ambiguous, a cancel whose read-back fails."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
from fakeapi import FakeAPI, slot_json, status_once, wire

from perfectgym_appointments_client import (
    AppointmentsClient,
    BadRequestError,
    BookingOutcome,
    BookingOutcomeUnknownError,
    ConfigurationError,
    NoSlotAvailableError,
    OutcomeKind,
    RetryPolicy,
    ServiceUnavailableError,
    SlotNotBookableError,
    ValidationStatus,
)

pytestmark = pytest.mark.anyio

BOOK = "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"
VALIDATE = "/v1/appointments/bookable/validate"
LOGGER = "perfectgym_appointments_client"


async def no_sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


def make(
    api: FakeAPI, outcomes: list[BookingOutcome] | None = None, max_retries: int = 2
) -> AppointmentsClient:
    return AppointmentsClient(
        **api.client_kwargs(),
        retry_policy=RetryPolicy(max_retries=max_retries, sleep=no_sleep),
        on_booking_outcome=outcomes.append if outcomes is not None else None,
    )


def answer_once(method: str, path: str, status: int, body: dict[str, Any]) -> Any:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == method and request.url.path == path:
            return httpx.Response(status, json=body)
        return None

    return fault


def refusal(error_code: str, status: str) -> dict[str, Any]:
    return {
        "errorMessage": "The slot cannot be booked",
        "errorCode": error_code,
        "typedArgs": [{"value": "startDateTime", "type": "STRING"}, {"value": status, "type": "ENUM"}],
    }


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
            await client.book(5, 1, slot, validate=False)
    assert info.value.status is ValidationStatus.STUDIO_CLOSED
    assert api.count("POST", BOOK) == 1
    assert api.live_bookings(5) == []
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


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
            await client.book(5, 1, slot, validate=False)
    assert not isinstance(info.value, SlotNotBookableError)
    assert info.value.error_code == "errormessage.validation"
    assert api.count("POST", BOOK) == 1  # an answer: nothing made, nothing repeated
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


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
            await client.book(5, 1, slot, validate=False)
    assert info.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
    assert api.count("POST", BOOK) == 2
    assert api.live_bookings(5) == []
    assert [o.kind for o in outcomes] == [OutcomeKind.NOT_BOOKED]


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
            booking = await client.book(5, 1, (await client.get_slots(1))[0], validate=False)
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
            booking = await client.book(5, 1, (await client.get_slots(1))[0], validate=False)
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert api.count("POST", BOOK) == 2
    assert [(o.kind, o.canceled_booking_ids) for o in outcomes] == [(OutcomeKind.BOOKED, ())]
    assert any(
        f"could not look for a duplicate of booking {booking.booking_id}" in r.getMessage()
        for r in caplog.records
    )


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
        booking = await client.book(5, 1, (await client.get_slots(1))[0], validate=False)
    assert (booking.booking_id, booking.title) == (100, "Appointment 1")
    assert api.count("POST", BOOK) == 1  # found, not repeated
    assert api.count("GET", "/v1/appointments/bookable/1") == 1  # the title, asked for once
    assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.BOOKED, 100)]


# -- book_first_available ----------------------------------------------------------------------------


async def test_validation_errors_are_counted_and_the_next_slot_is_tried() -> None:
    api = FakeAPI()
    api.faults += [status_once(500, "POST", VALIDATE), status_once(500, "POST", VALIDATE)]
    async with make(api) as client:
        booking = await client.book_first_available(5, 1, days_ahead=1, concurrency=1)
    assert booking.start_date_time.hour == 10  # 08:00 and 09:00 could not be validated
    assert len(api.live_bookings(5)) == 1


async def test_when_every_validation_fails_the_first_error_is_the_cause() -> None:
    api = FakeAPI()
    api.faults += [status_once(500, "POST", VALIDATE) for _ in range(4)]
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(5, 1, days_ahead=1, concurrency=2)
    assert info.value.statuses == {"ERROR": 4}
    assert info.value.checked == 4
    assert getattr(info.value.__cause__, "status_code", None) == 500
    assert api.count("POST", BOOK) == 0


async def test_a_customer_wide_refusal_at_booking_time_stops_the_search() -> None:
    api = FakeAPI()
    api.faults.append(answer_once("POST", BOOK, 400, refusal("NO_CONTINGENT", "NO_CONTINGENT")))
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as info:
            await client.book_first_available(5, 1, days_ahead=1, concurrency=1)
    # The first slot validated AVAILABLE, then the booking said the customer has no credit left:
    # no other slot can change that.
    assert info.value.statuses == {"TAKEN_MEANWHILE": 1}
    assert info.value.checked == 1
    assert isinstance(info.value.__cause__, SlotNotBookableError)
    assert info.value.__cause__.status is ValidationStatus.NO_CONTINGENT
    assert api.count("POST", BOOK) == 1


# -- reschedule ---------------------------------------------------------------------------------------


async def test_a_reschedule_to_a_slot_that_does_not_validate_changes_nothing() -> None:
    api = FakeAPI()
    api.validation[wire(9)] = "STUDIO_CLOSED"
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(5, 1, slots[0])
        with pytest.raises(SlotNotBookableError) as info:
            await client.reschedule(old.booking_id, slots[1], bookable_appointment_id=1)
    assert info.value.status is ValidationStatus.STUDIO_CLOSED
    assert [b["bookingId"] for b in api.live_bookings(5)] == [old.booking_id]
    assert api.count("POST", BOOK) == 1
    assert api.count("DELETE", f"{BOOKINGS}/{old.booking_id}") == 0


async def test_a_reschedule_cannot_guess_the_appointment_when_titles_repeat() -> None:
    api = FakeAPI()
    api.appointments[1]["title"] = "Appointment 1"  # two bookable appointments of that title
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(5, 1, slots[0])
        with pytest.raises(ConfigurationError, match=r"\(2 match its title\): pass bookable_appointment_id"):
            await client.reschedule(old.booking_id, slots[1])
    assert [b["bookingId"] for b in api.live_bookings(5)] == [old.booking_id]
    assert api.count("POST", BOOK) == 1


# -- cancel -------------------------------------------------------------------------------------------


async def test_an_ambiguous_cancel_of_a_booking_that_does_not_exist_is_not_repeated() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "DELETE", f"{BOOKINGS}/999"))
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.cancel_booking(999)
    assert api.count("DELETE", f"{BOOKINGS}/999") == 1
    assert api.count("GET", f"{BOOKINGS}/999") == 1  # read back: not found, nothing to repeat
    assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.NOT_CANCELED, 999)]


async def test_an_ambiguous_cancel_whose_read_back_fails_is_unknown() -> None:
    api = FakeAPI()
    outcomes: list[BookingOutcome] = []
    async with make(api, outcomes) as client:
        booking = await client.book(5, 1, (await client.get_slots(1))[0])
        path = f"{BOOKINGS}/{booking.booking_id}"
        api.faults += [status_once(503, "DELETE", path), status_once(403, "GET", path)]
        with pytest.raises(BookingOutcomeUnknownError, match="may or may not be canceled") as info:
            await client.cancel_booking(booking.booking_id)
    assert getattr(info.value.__cause__, "status_code", None) == 403
    assert api.count("DELETE", path) == 1  # never repeated blind
    assert [(o.operation, o.kind) for o in outcomes] == [
        ("book", OutcomeKind.BOOKED),
        ("cancel", OutcomeKind.UNKNOWN),
    ]
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
