"""The client against the real API's contract (../shared/api-facts.md), through the fake API.

Bounds, the 6-day slot window, the HEAD key check, Accept-Language, scopes, typed error arguments,
409 as concurrent modification and the early stop of book_first_available. The same facts are
checked against the real-socket sandbox in tests/test_sandbox_contract_client.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fakeapi import KEY, FakeAPI, raise_once, status_once
from not_in_spec import enum_value

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    BadRequestError,
    ConfigurationError,
    PermissionDeniedError,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client._booking._cancel import CANCELED

pytestmark = pytest.mark.anyio

BOOK = "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"
SLOTS = "/v1/appointments/bookable/1/slots"


def make(api: FakeAPI, **kwargs: Any) -> AppointmentsClient:
    return AppointmentsClient(**{**api.client_kwargs(), **kwargs})


def slot_requests(api: FakeAPI) -> list[dict[str, str]]:
    return [dict(r.url.params) for r in api.requests if r.url.path == SLOTS]


# -- slots: at most 6 days a request --------------------------------------------------------------


async def test_a_long_window_is_asked_for_in_windows_of_six_days() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1, customer_id=5, days_ahead=14, start_date=dt.date(2022, 6, 22))
    asked = sorted(slot_requests(api), key=lambda q: q["slotWindowStartDate"])
    assert asked == [
        {"customerId": "5", "daysAhead": "6", "slotWindowStartDate": "2022-06-22"},
        {"customerId": "5", "daysAhead": "6", "slotWindowStartDate": "2022-06-28"},
        {"customerId": "5", "daysAhead": "2", "slotWindowStartDate": "2022-07-04"},
    ]
    # The fake answers the same four slots to every window: they are merged, each once.
    assert [s.start_date_time.hour for s in slots] == [8, 9, 10, 11]


async def test_windows_are_merged_in_time_order_by_instant() -> None:
    api = FakeAPI()

    def by_window(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != SLOTS:
            return None
        api.faults.append(by_window)  # answer every window, not just the first
        day = request.url.params["slotWindowStartDate"]
        # Each window answers its own first day and the one before (an overlap at the edge), in
        # reverse order, one of them written in UTC: the merge orders by instant.
        first = dt.date.fromisoformat(day)
        before = first - dt.timedelta(days=1)
        return httpx.Response(
            200,
            json=[
                {"startDateTime": f"{first}T10:00:00.000+02:00[Europe/Berlin]",
                 "endDateTime": f"{first}T11:00:00.000+02:00[Europe/Berlin]"},
                {"startDateTime": f"{before}T06:00:00Z", "endDateTime": f"{before}T07:00:00Z"},
            ],
        )  # fmt: skip

    api.faults.append(by_window)
    async with make(api) as client:
        slots = await client.get_slots(1, days_ahead=13, start_date=dt.date(2022, 6, 22))
    starts = [s.start_date_time for s in slots]
    assert starts == sorted(starts, key=lambda d: d.timestamp())
    assert len({d.timestamp() for d in starts}) == len(starts) == 6
    assert all(int(q["daysAhead"]) <= 6 for q in slot_requests(api))


async def test_without_a_start_date_the_first_window_names_the_studios_today() -> None:
    api = FakeAPI()
    api.slots[1] = [
        {
            "startDateTime": "2099-01-05T08:00:00.000+01:00[Europe/Berlin]",
            "endDateTime": "2099-01-05T09:00:00.000+01:00[Europe/Berlin]",
        }
    ]
    async with make(api) as client:
        await client.get_slots(1, days_ahead=10)
    asked = slot_requests(api)
    assert asked[0] == {"daysAhead": "6"}  # the studio's today: no date sent
    berlin_today = dt.datetime.now(ZoneInfo("Europe/Berlin")).date()
    assert asked[1:] == [{"daysAhead": "4", "slotWindowStartDate": str(berlin_today + dt.timedelta(days=6))}]


async def test_without_days_ahead_the_apis_default_applies() -> None:
    api = FakeAPI()
    async with make(api) as client:
        await client.get_slots(1)
    assert slot_requests(api) == [{}]


@pytest.mark.parametrize("days", [1, 6])
async def test_up_to_six_days_is_one_request(days: int) -> None:
    api = FakeAPI()
    async with make(api) as client:
        await client.get_slots(1, days_ahead=days)
    assert slot_requests(api) == [{"daysAhead": str(days)}]


# -- HEAD, Accept-Language ------------------------------------------------------------------------


async def test_check_api_key_uses_head() -> None:
    api = FakeAPI()
    async with make(api) as client:
        assert await client.check_api_key() is True
    assert [(r.method, r.url.path) for r in api.requests] == [("HEAD", "/v1/appointments/bookable")]
    async with make(api, api_key="wrong-key") as client:
        assert await client.check_api_key() is False


async def test_check_api_key_raises_when_there_is_no_answer() -> None:
    api = FakeAPI()
    api.faults.append(raise_once(httpx.ConnectError("refused"), "HEAD", "/v1/appointments/bookable"))
    async with make(api, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.check_api_key()


async def test_accept_language_goes_on_every_request() -> None:
    api = FakeAPI()
    async with make(api, accept_language="de-CH") as client:
        await client.get_slots(1)
        await client.check_api_key()
    assert {r.headers.get("Accept-Language") for r in api.requests} == {"de-CH"}


async def test_an_unknown_language_is_refused_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="accept_language"):
        AppointmentsClient(api_key=KEY, base_url="https://tenant.example", accept_language="german")


# -- errors ---------------------------------------------------------------------------------------


async def test_permission_denied_names_the_scope_the_operation_needs() -> None:
    api = FakeAPI()
    api.faults.append(status_once(403, "POST", BOOK))
    async with make(api) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
            )
    assert info.value.required_scope == "APPOINTMENTS_WRITE"
    assert "APPOINTMENTS_WRITE" in str(info.value)
    assert api.count("POST", BOOK) == 1  # a 403 is not retried


async def test_typed_args_and_error_code_as_sent() -> None:
    api = FakeAPI()

    def too_large(request: httpx.Request) -> httpx.Response | None:
        body = {
            "errorMessage": "The value is too large",
            "errorCode": "errormessage.validation.max",
            "traceId": "t-1",
            "reference": "daysAhead",
            "args": [{"max": 6}],
            "typedArgs": [
                {"value": 6, "type": "INTEGER"},
                {"value": ["A", "B"], "type": "TERM_LIST"},
                "junk",
            ],
        }
        return httpx.Response(400, json=body) if request.url.path == SLOTS else None

    api.faults.append(too_large)
    async with make(api) as client:
        with pytest.raises(BadRequestError) as info:
            await client.get_slots(1, days_ahead=2)
    error = info.value
    assert error.error_code == "errormessage.validation.max"
    assert error.reference == "daysAhead"
    assert error.typed_args == [("INTEGER", 6), ("TERM_LIST", ["A", "B"])]
    assert error.error_args == [{"max": 6}]


async def test_connection_errors_name_the_host() -> None:
    api = FakeAPI()
    api.faults.append(raise_once(httpx.ConnectError("refused"), "GET", SLOTS))
    async with make(api, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.get_slots(1, customer_id=5)
    assert "https://tenant.example/v1/appointments/bookable/1/slots" in str(info.value)
    assert info.value.host == "https://tenant.example"
    assert "customerId" not in str(info.value)


# -- 409: concurrent modification -----------------------------------------------------------------


async def test_409_on_cancel_reads_the_booking_back_and_a_canceled_one_is_done() -> None:
    api = FakeAPI()
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )

        def someone_else_canceled(request: httpx.Request) -> httpx.Response | None:
            if request.method == "DELETE":
                api.bookings[booking.booking_id]["bookingStatus"] = "CANCELED"
                return httpx.Response(409, json={"errorMessage": "modified", "errorCode": "errormessage.concurrent.modification"})  # fmt: skip
            return None

        api.faults.append(someone_else_canceled)
        message = await client.cancel_booking(booking.booking_id)
    assert message == CANCELED  # the 409 carried no confirmation: the constant, no made-up text
    assert api.count("DELETE", f"{BOOKINGS}/{booking.booking_id}") == 1
    assert api.count("GET", f"{BOOKINGS}/{booking.booking_id}") == 1


async def test_409_on_cancel_of_a_booking_still_active_cancels_again() -> None:
    api = FakeAPI()
    async with make(api) as client:
        booking = await client.book(
            customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0]
        )
        api.faults.append(status_once(409, "DELETE", f"{BOOKINGS}/{booking.booking_id}"))
        await client.cancel_booking(booking.booking_id)
    assert api.live_bookings(5) == []
    assert api.count("DELETE", f"{BOOKINGS}/{booking.booking_id}") == 2


async def test_409_on_book_goes_through_the_booking_check() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = (await client.get_slots(1))[0]
        api.faults.append(status_once(409, "POST", BOOK))
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert booking.start_date_time == slot.start_date_time
    assert len(api.live_bookings(5)) == 1
    # the check listed the customer's bookings before the one repeat, and once more after it
    # (to catch a duplicate)
    methods = [(r.method, r.url.path) for r in api.requests if r.url.path in (BOOK, BOOKINGS)]
    assert methods == [("POST", BOOK), ("GET", BOOKINGS), ("POST", BOOK), ("GET", BOOKINGS)]


async def test_409_on_book_after_a_commit_returns_the_booking_without_a_second_request() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = (await client.get_slots(1))[0]

        def commit_then_409(request: httpx.Request) -> httpx.Response | None:
            if request.method == "POST" and request.url.path == BOOK:
                api.book(json.loads(request.content))
                return httpx.Response(409, json={"errorMessage": "modified", "errorCode": "x"})
            return None

        api.faults.append(commit_then_409)
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert api.count("POST", BOOK) == 1


async def test_a_refusal_by_the_studios_rules_is_slot_not_bookable() -> None:
    api = FakeAPI()

    def refused(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == BOOK:
            body = {
                "errorMessage": "no",
                "errorCode": "CUSTOMER_IN_OTHER_BOOKING",
                "reference": "startDateTime",
            }
            return httpx.Response(400, json=body)
        return None

    api.faults.append(refused)
    async with make(api) as client:
        with pytest.raises(SlotNotBookableError) as info:
            await client.book(
                customer_id=5, bookable_appointment_id=1, slot=(await client.get_slots(1))[0], validate=False
            )
    assert info.value.status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
    assert api.count("POST", BOOK) == 1
    # One look for a booking of this slot the customer already holds (a resubmit): none here, so
    # the refusal stands, and nothing else is read.
    assert api.count("GET", BOOKINGS) == 1


def test_the_added_statuses_are_named_members() -> None:
    for name in (
        "END_DATE_TIME_NOT_AFTER_START_DATE_TIME",
        "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME",
        "NOT_AVAILABLE",
    ):
        status = ValidationStatus(name)
        assert status.is_known
        assert status is ValidationStatus[name]
    assert not ValidationStatus(enum_value("ValidationStatus", like="SOMETHING_NEW")).is_known
