"""AppointmentsClient's configuration, pagination and reads, against a scripted fake API
(tests/fakeapi.py: httpx.MockTransport, or a loopback socket for aiohttp); tests whose handler is
an httpx.MockTransport of their own run on httpx alone. The booking flows have files of their
own: test_book.py, test_booking_check.py, test_cancel.py, test_reschedule.py,
test_book_first_available.py, test_booking_outcome.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import httpx
import pytest
from fakeapi import (
    BERLIN,
    KEY,
    FakeAPI,
    first_slot,
    httpx_alone,
    make,
    mock_client,
    one_appointment,
    slot_json,
)
from not_in_spec import enum_value

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    BookableAppointment,
    ConfigurationError,
    NotFoundError,
    PaginationError,
    RetryPolicy,
    Slot,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]
NO_TIMEOUT = {"connect": None, "read": None, "write": None, "pool": None}


# -- configuration -----------------------------------------------------------------------------------


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


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)


@httpx_alone
@pytest.mark.usefixtures("no_env")
async def test_a_given_http_client_supplies_the_base_url() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return one_appointment(request)

    async with (
        mock_client(handler, base_url="https://tenant.example") as http,
        AppointmentsClient(api_key=KEY, http_client=http, rate_limit=None) as client,
    ):
        assert (await client.get_bookable_appointment(1)).title == "Yoga"
    assert [str(url) for url in seen] == ["https://tenant.example/v1/appointments/bookable/1"]
    with pytest.raises(ConfigurationError, match="no base URL"):
        AppointmentsClient(api_key=KEY, http_client=httpx.AsyncClient())


@httpx_alone
@pytest.mark.parametrize("settle", [-0.1, 60.5, True, "1", None])
def test_the_booking_check_settle_time_is_0_to_60_seconds(settle: Any) -> None:
    with pytest.raises(ValueError, match="booking_check_settle must be 0 to 60 seconds"):
        AppointmentsClient(api_key=KEY, base_url="https://tenant.example", booking_check_settle=settle)


@httpx_alone
def test_retries_are_given_once() -> None:
    policy = RetryPolicy(max_retries=5)
    with pytest.raises(ConfigurationError, match="pass max_retries or retry_policy, not both"):
        AppointmentsClient(api_key=KEY, base_url="https://tenant.example", retry_policy=policy, max_retries=3)
    # The same number twice is no conflict.
    AppointmentsClient(api_key=KEY, base_url="https://tenant.example", retry_policy=policy, max_retries=5)


@httpx_alone
@pytest.mark.parametrize(
    ("timeout_option", "expected"),
    [
        (None, NO_TIMEOUT),  # None: no timeout at all, whatever the http_client says
        (httpx.Timeout(3.0, connect=1.0), {"connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0}),
        (2, {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}),
    ],
)
async def test_the_timeout_asked_for_reaches_every_request(
    timeout_option: Any, expected: dict[str, Any]
) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return one_appointment(request)

    async with (
        mock_client(handler, timeout=5.0) as http,
        AppointmentsClient(
            api_key=KEY,
            base_url="https://tenant.example",
            http_client=http,
            timeout=timeout_option,
            rate_limit=None,
        ) as client,
    ):
        await client.get_bookable_appointment(1)
    assert seen == [expected]


# -- pagination --------------------------------------------------------------------------------------


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


@httpx_alone
async def test_a_page_being_prefetched_when_the_client_closes_is_a_connection_error() -> None:
    second_page_asked = anyio.Event()
    second_page_cancelled = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        offset = request.url.params.get("offset", "0")
        if offset == "0":
            return httpx.Response(
                200,
                json={"result": [{"id": 1, "title": "Yoga"}], "hasNext": True, "offset": "page-2"},
            )
        second_page_asked.set()
        try:
            await anyio.sleep(30)  # the prefetch of page 2 is still waiting when the client closes
        except anyio.get_cancelled_exc_class():
            second_page_cancelled.set()
            raise
        raise AssertionError("not cancelled")

    async with mock_client(handler) as http:
        async with AppointmentsClient(
            api_key=KEY, base_url="https://tenant.example", http_client=http, rate_limit=None
        ) as client:
            pages = client.bookable_appointments(slice_size=10).pages()
            first = await pages.__anext__()
            assert [a.title for a in first.items] == ["Yoga"]
            with anyio.fail_after(10):
                await second_page_asked.wait()  # fetched ahead, while nobody asked for it yet
        assert second_page_cancelled.is_set()
        with pytest.raises(
            APIConnectionError, match=r"page prefetch was cancelled \(the client was closed\)"
        ):
            await pages.__anext__()


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


# -- reads -------------------------------------------------------------------------------------------


async def test_get_slots_sends_the_query_and_returns_zoned_slots() -> None:
    api = FakeAPI()
    async with make(api) as client:
        slots = await client.get_slots(1, customer_id=5, days_ahead=6, start_date=dt.date(2022, 6, 22))
    assert [dict(r.url.params) for r in api.requests] == [
        {"customerId": "5", "daysAhead": "6", "slotWindowStartDate": "2022-06-22"}
    ]
    assert [s.start_date_time.hour for s in slots] == [8, 9, 10, 11]
    assert all(s.start_date_time.tzinfo == BERLIN for s in slots)


@httpx_alone
async def test_days_ahead_when_the_first_window_names_no_zone() -> None:
    """No slot in the first six days, so no zone to say which day is today: the rest is asked for
    from a day before UTC's today, a day longer, and trimmed to the studio's own days."""
    requests: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        requests.append(params)
        if "slotWindowStartDate" not in params:
            return httpx.Response(200, json=[])  # the first window: nothing free
        first = dt.date.fromisoformat(params["slotWindowStartDate"])
        days = int(params["daysAhead"])
        return httpx.Response(
            200, json=[slot_json(10, day=first + dt.timedelta(days=n)) for n in range(days)]
        )

    utc_today = dt.datetime.now(dt.UTC).date()
    async with AppointmentsClient(
        api_key=KEY, base_url="https://tenant.example", http_client=mock_client(handler), rate_limit=None
    ) as client:
        slots = await client.get_slots(1, customer_id=5, days_ahead=8)
    berlin_today = dt.datetime.now(BERLIN).date()
    assert requests[0] == {"customerId": "5", "daysAhead": "6"}
    # Then one window: from UTC's yesterday + 6 days, for the 10 - 6 days left.
    assert requests[1:] == [
        {"customerId": "5", "daysAhead": "4", "slotWindowStartDate": str(utc_today + dt.timedelta(days=5))}
    ]
    days = [slot.start_date_time.date() for slot in slots]
    assert days == sorted(days)
    assert days, "the later days' slots are kept"
    # Nothing past the 8 days asked for, counted from the studio's today.
    assert max(days) == berlin_today + dt.timedelta(days=7)
    assert all(slot.start_date_time.tzinfo == BERLIN for slot in slots)


async def test_search_slots_is_bounded_and_keeps_order() -> None:
    api = FakeAPI(appointments=30)
    for i in range(1, 31):
        api.slots[i] = [slot_json(8 + i % 5)]
    async with make(api) as client:
        found = await client.search_slots(range(30, 0, -1), concurrency=5)
    assert list(found) == list(range(30, 0, -1))
    assert found[7][0].start_date_time.hour == 10
    assert 1 < api.max_in_flight <= 5


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("bookingStatus", "booking_status"),
        ("appointmentStatus", "appointment_status"),
        ("participantStatus", "participant_status"),
    ],
)
async def test_unknown_enum_values_on_bookings_do_not_crash(field: str, attribute: str) -> None:
    unknown = enum_value("BookingStatus", "AppointmentStatus", "ParticipantStatus", like="SOMETHING_NEW")
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        api.bookings[made.booking_id][field] = unknown
        read = await client.get_booking(made.booking_id)
        listed = await client.list_bookings(5)
    assert getattr(read, attribute).value == unknown
    assert str(getattr(listed[0], attribute)) == unknown


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
        (lambda c: c.validate_slot(customer_id=5, bookable_appointment_id=1, slot=object()), TypeError),
        (
            lambda c: c.book(
                customer_id=5,
                bookable_appointment_id=1,
                slot=Slot(dt.datetime(2022, 6, 22, 8), dt.datetime(2022, 6, 22, 9)),
            ),
            ValueError,
        ),
        (
            lambda c: c.book(
                customer_id=5,
                bookable_appointment_id=1,
                slot=Slot(
                    dt.datetime(2022, 6, 22, 9, tzinfo=BERLIN), dt.datetime(2022, 6, 22, 8, tzinfo=BERLIN)
                ),
            ),
            ValueError,
        ),
        (
            lambda c: c.book_first_available(customer_id=5, bookable_appointment_id=1, earliest="08:00"),
            TypeError,
        ),
        (lambda c: c.reschedule(100, "tomorrow"), TypeError),
    ],
)
async def test_wrong_arguments_fail_before_any_request(call: Any, error: type[Exception]) -> None:
    api = FakeAPI()
    async with make(api) as client:
        with pytest.raises(error):
            await call(client)
    assert api.requests == []
