"""The facade's behaviour against a scripted fake API (httpx.MockTransport, or a loopback socket for aiohttp)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from fakeapi import DAY, KEY, FakeAPI, raise_once, slot_json, status_once, wire

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    AppointmentStatus,
    BookableAppointment,
    Booking,
    BookingOutcomeUnknownError,
    BookingStatus,
    ConfigurationError,
    NoSlotAvailableError,
    NotFoundError,
    PaginationError,
    ParticipantStatus,
    PerfectGymError,
    RescheduleError,
    ResponseValidationError,
    RetryPolicy,
    Slot,
    SlotNotBookableError,
    ValidationStatus,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]
BERLIN = ZoneInfo("Europe/Berlin")
BOOK = "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"


async def no_sleep(_: float) -> None:
    return None


def make(api: FakeAPI, **kwargs: Any) -> AppointmentsClient:
    policy = RetryPolicy(max_retries=kwargs.pop("max_retries", 2), sleep=no_sleep)
    return AppointmentsClient(**api.client_kwargs(), retry_policy=policy, **kwargs)


# -- configuration --------------------------------------------------------------------------------


async def test_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFECTGYM_BASE_URL", "https://env-tenant.example/")
    monkeypatch.setenv("PERFECTGYM_API_KEY", "env-key-55")
    client = AppointmentsClient()
    assert client.base_url == "https://env-tenant.example"
    assert "env-key-55" not in repr(client)
    assert "***" in repr(client)


async def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="PERFECTGYM_API_KEY"):
        AppointmentsClient()
    with pytest.raises(ConfigurationError, match="PERFECTGYM_BASE_URL"):
        AppointmentsClient(api_key="k")
    with pytest.raises(ConfigurationError, match="http"):
        AppointmentsClient(api_key="k", base_url="tenant.example")


async def test_custom_http_client_is_used_and_not_closed() -> None:
    api = FakeAPI()
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = httpx.AsyncClient(transport=api.transport(), event_hooks={"request": [hook]})
    async with AppointmentsClient(api_key=KEY, base_url="https://tenant.example", http_client=http) as client:
        await client.get_bookable_appointment(2)
    assert seen == ["/v1/appointments/bookable/2"]
    assert not http.is_closed
    await http.aclose()


async def test_default_timeout_is_set() -> None:
    client = AppointmentsClient(api_key="k", base_url="https://tenant.example")
    assert client._api.backend.read_timeout == 30.0
    timeout = client._api.backend.client.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (10.0, 30.0, 30.0, 30.0)
    await client.aclose()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_connections": 0}, ValueError),
        ({"max_connections": "8"}, TypeError),
        ({"max_connections": 8, "http_client": httpx.AsyncClient()}, ConfigurationError),
    ],
)
async def test_bad_connection_limits_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        AppointmentsClient(api_key="k", base_url="https://tenant.example", **kwargs)


# -- pagination -----------------------------------------------------------------------------------


async def test_items_follow_the_cursor_across_pages() -> None:
    api = FakeAPI(appointments=25)
    async with make(api) as client:
        ids = [a.id async for a in client.bookable_appointments(slice_size=10)]
    assert ids == list(range(1, 26))
    offsets = [r.url.params["offset"] for r in api.requests]
    assert offsets == ["0", "10", "20"]
    assert {r.url.params["sliceSize"] for r in api.requests} == {"10"}


async def test_pages_and_limit() -> None:
    api = FakeAPI(appointments=25)
    async with make(api) as client:
        pages = [p async for p in client.bookable_appointments(slice_size=10).pages()]
        assert [(p.number, len(p.items), p.has_next) for p in pages] == [
            (1, 10, True),
            (2, 10, True),
            (3, 5, False),
        ]
        assert all(isinstance(a, BookableAppointment) for p in pages for a in p.items)
        api.requests.clear()
        limited = [a.id async for a in client.bookable_appointments(slice_size=10, limit=14)]
    assert limited == list(range(1, 15))
    assert len(api.requests) == 2  # no page fetched past the limit


async def test_next_page_is_prefetched_while_the_caller_works() -> None:
    api = FakeAPI(appointments=30)
    async with make(api) as client:
        pages = client.bookable_appointments(slice_size=10).pages()
        first = await pages.__anext__()
        assert [a.id for a in first.items] == list(range(1, 11))
        with anyio.fail_after(5):
            await api.page_requested.setdefault("10", anyio.Event()).wait()  # fetched without asking
        await anyio.wait_all_tasks_blocked()
        assert "20" not in api.page_requested  # at most one page ahead
        second = await pages.__anext__()
        assert [a.id for a in second.items] == list(range(11, 21))


async def test_without_async_with_pages_are_fetched_one_by_one() -> None:
    api = FakeAPI(appointments=20)
    client = make(api)
    pages = client.bookable_appointments(slice_size=10).pages()
    await pages.__anext__()
    assert "10" not in api.page_requested
    assert [a.id async for a in client.bookable_appointments(slice_size=10)] == list(range(1, 21))
    await client.aclose()


async def test_repeated_cursor_stops_with_an_error() -> None:
    api = FakeAPI(appointments=25)
    api.repeat_cursor = True
    seen: list[int] = []

    async def walk(client: AppointmentsClient) -> None:
        async for appointment in client.bookable_appointments(slice_size=10):
            seen.append(appointment.id)

    async with make(api) as client:
        with pytest.raises(PaginationError, match="cursor '0' again"):
            await walk(client)
    assert len(api.requests) == 1
    assert seen == list(range(1, 11))  # the page that pointed back was new: delivered, then the error


@pytest.mark.parametrize(("lead_in", "loop"), [(0, 2), (3, 1), (5, 7), (40, 33)])
async def test_a_looping_server_is_stopped_whatever_the_loop(lead_in: int, loop: int) -> None:
    # Cursors 0 -> c1 -> ... -> c<lead_in> -> then around a loop of ``loop`` cursors forever.
    def next_cursor(cursor: int) -> int:
        following = cursor + 1
        return following if following <= lead_in + loop else lead_in + 1

    requests: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        cursor = int(request.url.params["offset"])
        requests.append(cursor)
        nxt = next_cursor(cursor)
        body = {"result": [{"id": 1000 + cursor}], "hasNext": True, "offset": str(nxt)}
        return httpx.Response(200, json=body)

    client = AppointmentsClient(
        api_key=KEY,
        base_url="https://tenant.example",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )
    seen: list[int] = []

    async def walk() -> None:
        async for appointment in client.bookable_appointments(slice_size=10):
            seen.append(appointment.id)

    with pytest.raises(PaginationError, match="again"):
        await walk()
    await client.aclose()
    # Every page fetched was delivered before the error, and the walk stopped within twice the
    # path's length.
    assert seen == [1000 + c for c in requests]
    assert lead_in + loop <= len(requests) <= 2 * (lead_in + loop) + 2


async def test_prefetch_errors_reach_the_consumer() -> None:
    api = FakeAPI(appointments=20)

    def second_page_fails(request: httpx.Request) -> httpx.Response | None:
        if request.url.params.get("offset") == "10":
            return httpx.Response(404, json={"errorMessage": "gone", "errorCode": "NOT_FOUND"})
        return None

    api.faults.append(second_page_fails)
    seen: list[int] = []
    async with make(api) as client:
        with pytest.raises(NotFoundError, match="gone"):  # noqa: PT012 - the items before the error count
            async for appointment in client.bookable_appointments(slice_size=10):
                seen.append(appointment.id)
    assert seen == list(range(1, 11))  # the first page arrived whole; the prefetched page's error came next


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (9, ValueError), (101, ValueError), ("50", TypeError), (True, TypeError)],
)
async def test_slice_size_is_checked_before_any_request(value: Any, error: type[Exception]) -> None:
    api = FakeAPI()
    async with make(api) as client:
        with pytest.raises(error, match="slice_size"):
            client.bookable_appointments(slice_size=value)
    assert api.requests == []


# -- reads ------------------------------------------------------------------------------------------


async def test_get_slots_sends_the_query_and_returns_zoned_slots() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1, customer_id=5, days_ahead=6, start_date=dt.date(2022, 6, 22))
    assert [dict(r.url.params) for r in api.requests] == [
        {"customerId": "5", "daysAhead": "6", "slotWindowStartDate": "2022-06-22"}
    ]
    assert [s.start_date_time.hour for s in slots] == [8, 9, 10, 11]
    assert all(s.start_date_time.tzinfo == BERLIN for s in slots)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get_slots(0), ValueError),
        (lambda c: c.get_slots(1, customer_id="5"), TypeError),
        (lambda c: c.get_slots(1, days_ahead=0), ValueError),
        (lambda c: c.get_slots(1, start_date="2022-06-22"), TypeError),
        (lambda c: c.get_slots(1, start_date=dt.datetime(2022, 6, 22)), ValueError),
        (lambda c: c.get_booking(-1), ValueError),
        (lambda c: c.list_bookings(None), TypeError),
        (lambda c: c.cancel_booking(1.0), TypeError),
        (lambda c: c.validate_slot(5, 1, object()), TypeError),
        (lambda c: c.book(5, 1, Slot(dt.datetime(2022, 6, 22, 8), dt.datetime(2022, 6, 22, 9))), ValueError),
        (
            lambda c: c.book(
                5,
                1,
                Slot(dt.datetime(2022, 6, 22, 9, tzinfo=BERLIN), dt.datetime(2022, 6, 22, 8, tzinfo=BERLIN)),
            ),
            ValueError,
        ),
        (lambda c: c.book_first_available(5, 1, earliest="08:00"), TypeError),
        (lambda c: c.reschedule(100, "tomorrow"), TypeError),
    ],
)
async def test_wrong_arguments_fail_before_any_request(call: Any, error: type[Exception]) -> None:
    api = FakeAPI()
    async with make(api) as client:
        with pytest.raises(error):
            await call(client)
    assert api.requests == []


# -- booking ----------------------------------------------------------------------------------------


async def first_slot(client: AppointmentsClient) -> Slot:
    return (await client.get_slots(1))[0]


async def test_book_validates_then_books_and_sends_the_slot_back_verbatim() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = await first_slot(client)
        booking = await client.book(5, 1, slot)
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
        booking = await client.book(5, 1, MySlot(), validate=False)
    sent = json.loads(api.requests[-1].content)
    assert sent["startDateTime"] == wire(15)
    assert "instructorIds" not in sent
    assert booking.start_date_time == MySlot.start_date_time


async def test_refused_validation_books_nothing() -> None:
    api = FakeAPI()
    api.validation[wire(8)] = "NO_CONTINGENT"
    async with make(api) as client:
        with pytest.raises(SlotNotBookableError) as info:
            await client.book(5, 1, await first_slot(client))
    assert info.value.status is ValidationStatus.NO_CONTINGENT
    assert api.count("POST", BOOK) == 0


async def test_unknown_validation_status_is_refused_not_crashed() -> None:
    api = FakeAPI()
    api.validation[wire(8)] = "WAITLIST_ONLY"
    async with make(api) as client:
        slot = await first_slot(client)
        status = await client.validate_slot(5, 1, slot)
        assert status.value == "WAITLIST_ONLY"
        assert str(status) == "WAITLIST_ONLY"
        with pytest.raises(SlotNotBookableError, match="WAITLIST_ONLY"):
            await client.book(5, 1, slot)


async def test_confirmation_required_is_never_reported_as_booked() -> None:
    api = FakeAPI()
    api.booking_status = "BOOKED_WITH_CONFIRMATION_REQUIRED"
    async with make(api) as client:
        booking = await client.book(5, 1, await first_slot(client))
    assert booking.booking_status is BookingStatus.BOOKED_WITH_CONFIRMATION_REQUIRED
    assert booking.needs_confirmation
    assert not booking.is_confirmed


async def test_commit_then_drop_returns_the_booking_the_server_made() -> None:
    api = FakeAPI()
    api.drop_after_commit = 1
    async with make(api) as client:
        booking = await client.book(5, 1, await first_slot(client))
    assert api.count("POST", BOOK) == 1  # never sent twice
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert api.count("GET", BOOKINGS) == 1


async def test_ambiguous_5xx_that_made_nothing_is_retried_after_checking() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api) as client:
        booking = await client.book(5, 1, await first_slot(client), validate=False)
    assert api.count("POST", BOOK) == 2
    # checked before the second attempt, and once more after it (for a duplicate)
    assert api.count("GET", BOOKINGS) == 2
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_rate_limited_booking_is_retried_without_checking() -> None:
    api = FakeAPI()
    api.faults.append(status_once(429, "POST", BOOK, {"Retry-After": "1"}))
    async with make(api) as client:
        await client.book(5, 1, await first_slot(client), validate=False)
    assert api.count("POST", BOOK) == 2
    assert api.count("GET", BOOKINGS) == 0


async def test_connect_failure_is_retried_without_checking() -> None:
    api = FakeAPI()
    api.faults.append(raise_once(httpx.ConnectError("refused"), "POST", BOOK))
    async with make(api) as client:
        await client.book(5, 1, await first_slot(client), validate=False)
    assert api.count("POST", BOOK) == 2
    assert len(api.live_bookings(5)) == 1


async def test_outcome_unknown_when_the_check_fails_too() -> None:
    api = FakeAPI()
    api.drop_after_commit = 1
    for _ in range(9):  # the bookings listing fails on every retry of every round of the check
        api.faults.append(status_once(503, "GET", BOOKINGS))
    async with make(api) as client:
        with pytest.raises(BookingOutcomeUnknownError) as info:
            await client.book(5, 1, await first_slot(client), validate=False)
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
        booking = await client.book(5, 1, await first_slot(client), validate=False)
    assert api.count("POST", BOOK) == 1
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]


async def test_no_retry_budget_means_no_second_booking_request() -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "POST", BOOK))
    async with make(api, max_retries=0) as client:
        with pytest.raises(PerfectGymError):
            await client.book(5, 1, await first_slot(client), validate=False)
    assert api.count("POST", BOOK) == 1
    assert api.live_bookings(5) == []


def commit_then_garble(api: FakeAPI, method: str) -> Any:
    """The server carries the request out, then answers 200 with a body nobody can read."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != method or not request.url.path.startswith(BOOKINGS):
            return None
        api.route(request)
        return httpx.Response(200, content=b"<html>proxy error</html>", headers={"Content-Type": "text/html"})

    return fault


async def test_malformed_success_on_book_returns_the_booking_the_server_made() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = await first_slot(client)
        api.faults.append(commit_then_garble(api, "POST"))
        booking = await client.book(5, 1, slot, validate=False)
    assert api.count("POST", BOOK) == 1  # not booked again
    assert [b["bookingId"] for b in api.live_bookings(5)] == [booking.booking_id]
    assert booking.start_date_time == slot.start_date_time


async def test_malformed_success_on_book_that_made_nothing_is_raised_not_retried() -> None:
    api = FakeAPI()
    api.faults.append(lambda r: httpx.Response(200, content=b"{}") if r.url.path == BOOK else None)
    async with make(api) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.book(5, 1, await first_slot(client), validate=False)
    assert info.value.operation == "bookAppointmentBooking"
    assert api.count("POST", BOOK) == 1
    assert api.count("GET", BOOKINGS) == 1  # it looked before giving up
    assert api.live_bookings(5) == []


async def test_malformed_success_on_cancel_counts_once_the_booking_reads_canceled() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(5, 1, await first_slot(client))
        api.faults.append(commit_then_garble(api, "DELETE"))
        await client.cancel_booking(made.booking_id)
        assert api.live_bookings(5) == []
        # A garbled answer to a cancel the server did not carry out is an error.
        again = await client.book(5, 1, await first_slot(client))
        api.faults.append(lambda r: httpx.Response(200, content=b"") if r.method == "DELETE" else None)
        with pytest.raises(ResponseValidationError):
            await client.cancel_booking(again.booking_id)
    assert [b["bookingId"] for b in api.live_bookings(5)] == [again.booking_id]


async def test_get_list_and_cancel_bookings() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(5, 1, await first_slot(client))
        read = await client.get_booking(made.booking_id)
        assert (read.booking_id, read.customer_id) == (made.booking_id, 5)
        assert read.appointment_status is AppointmentStatus.PLANNED
        assert read.participant_status is ParticipantStatus.UNSET
        assert [b.booking_id for b in await client.list_bookings(5)] == [made.booking_id]
        message = await client.cancel_booking(made.booking_id)
        assert str(made.booking_id) in message
        assert (await client.get_booking(made.booking_id)).is_canceled
        with pytest.raises(NotFoundError) as info:
            await client.get_booking(999)
    assert info.value.trace_id == "t-404"


async def test_cancel_that_dropped_after_success_counts_as_done() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(5, 1, await first_slot(client))

        def cancel_then_drop(request: httpx.Request) -> httpx.Response | None:
            if request.method == "DELETE":
                api.bookings[made.booking_id]["bookingStatus"] = "CANCELED"
                raise httpx.ReadTimeout("timed out")
            return None

        api.faults.append(cancel_then_drop)
        await client.cancel_booking(made.booking_id)
    assert api.count("DELETE", f"{BOOKINGS}/{made.booking_id}") == 1


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("bookingStatus", "booking_status"),
        ("appointmentStatus", "appointment_status"),
        ("participantStatus", "participant_status"),
    ],
)
async def test_unknown_enum_values_on_bookings_do_not_crash(field: str, attribute: str) -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(5, 1, await first_slot(client))
        api.bookings[made.booking_id][field] = "SOMETHING_NEW"
        read = await client.get_booking(made.booking_id)
        listed = await client.list_bookings(5)
    assert getattr(read, attribute).value == "SOMETHING_NEW"
    assert str(getattr(listed[0], attribute)) == "SOMETHING_NEW"


# -- reschedule -------------------------------------------------------------------------------------


async def test_reschedule_books_new_then_cancels_old() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1)
        old = await client.book(5, 1, slots[0])
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
        old = await client.book(5, 1, slots[0])
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
        old = await client.book(5, 1, slots[0])
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


# -- book_first_available ---------------------------------------------------------------------------


async def test_books_the_earliest_available_slot() -> None:
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7 if h % 2 else 8]) for h in range(8, 20)]
    for h in (8, 9, 10):
        api.validation[wire(h)] = "CUSTOMER_IN_OTHER_BOOKING"
    async with make(api) as client:
        booking = await client.book_first_available(5, 1, concurrency=4)
    assert booking.start_date_time.hour == 11
    assert api.count("POST", BOOK) == 1
    assert 1 < api.max_in_flight <= 4


async def test_first_available_filters_time_and_instructor() -> None:
    api = FakeAPI()
    api.slots[1] = [slot_json(h, [7 if h % 2 else 8]) for h in range(8, 20)]
    async with make(api) as client:
        by_time = await client.book_first_available(5, 1, earliest=dt.time(12, 0), latest=dt.time(18, 0))
        by_instructor = await client.book_first_available(6, 1, instructor_id=7)
        aware_bound = dt.datetime.combine(DAY, dt.time(15, 30), BERLIN)
        by_datetime = await client.book_first_available(9, 1, earliest=aware_bound)
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
            await client.book_first_available(5, 1, days_ahead=1)
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
            await client.book_first_available(5, 1, days_ahead=1, earliest=dt.time(9), concurrency=1)
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
        booking = await client.book_first_available(5, 1, days_ahead=1)
    assert booking.start_date_time.hour == 9
    assert len(api.live_bookings(5)) == 1


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


async def test_search_slots_is_bounded_and_keeps_order() -> None:
    api = FakeAPI(appointments=30)
    for i in range(1, 31):
        api.slots[i] = [slot_json(8 + i % 5)]
    async with make(api) as client:
        found = await client.search_slots(range(30, 0, -1), concurrency=5)
    assert list(found) == list(range(30, 0, -1))
    assert found[7][0].start_date_time.hour == 10
    assert 1 < api.max_in_flight <= 5
