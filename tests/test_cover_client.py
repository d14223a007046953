"""AppointmentsClient's options and the corners of its call path, via httpx.MockTransport: the base
URL of a given http_client, the booking check's settle time, retries given twice, timeouts, a
Retry-After date without a zone, errors whose message is empty, a page prefetch cut off by closing
the client, and a week of slots when the first window names no zone."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    ConfigurationError,
    RetryPolicy,
)

pytestmark = pytest.mark.anyio

KEY = "cover-key-5b2"
BERLIN = ZoneInfo("Europe/Berlin")
NO_TIMEOUT = {"connect": None, "read": None, "write": None, "pool": None}


def appointment(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": 1, "title": "Yoga"})


def mock_client(handler: Any, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)


# -- options -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_env")
async def test_a_given_http_client_supplies_the_base_url() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return appointment(request)

    async with (
        mock_client(handler, base_url="https://tenant.example") as http,
        AppointmentsClient(api_key=KEY, http_client=http, rate_limit=None) as client,
    ):
        assert (await client.get_bookable_appointment(1)).title == "Yoga"
    assert [str(url) for url in seen] == ["https://tenant.example/v1/appointments/bookable/1"]
    with pytest.raises(ConfigurationError, match="no base URL"):
        AppointmentsClient(api_key=KEY, http_client=httpx.AsyncClient())


@pytest.mark.parametrize("settle", [-0.1, 60.5, True, "1", None])
def test_the_booking_check_settle_time_is_0_to_60_seconds(settle: Any) -> None:
    with pytest.raises(ValueError, match="booking_check_settle must be 0 to 60 seconds"):
        AppointmentsClient(api_key=KEY, base_url="https://tenant.example", booking_check_settle=settle)


def test_retries_are_given_once() -> None:
    policy = RetryPolicy(max_retries=5)
    with pytest.raises(ConfigurationError, match="pass max_retries or retry_policy, not both"):
        AppointmentsClient(api_key=KEY, base_url="https://tenant.example", retry_policy=policy, max_retries=3)
    # The same number twice is no conflict.
    AppointmentsClient(api_key=KEY, base_url="https://tenant.example", retry_policy=policy, max_retries=5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": True},
        {"max_retries": 1.5},
        {"backoff_base": -1},
        {"backoff_cap": -0.5},
        {"max_retry_after": -1},
    ],
)
def test_a_retry_policy_refuses_negative_or_fractional_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**kwargs)


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
        return appointment(request)

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


# -- retries and errors ------------------------------------------------------------------------------


@pytest.fixture
def new_york_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time is New York's, five hours from UTC in winter."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_local_time")
async def test_a_retry_after_date_without_a_zone_is_utc() -> None:
    # "-0000": an HTTP date that names no zone (RFC 5322); it is UTC, not the machine's time.
    when = email.utils.formatdate(time.time() + 30, usegmt=False).rsplit(" ", 1)[0] + " -0000"
    delays: list[float] = []
    answers = iter([httpx.Response(503, headers={"Retry-After": when}), appointment])

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        return answer(request) if callable(answer) else answer

    async with AppointmentsClient(
        api_key=KEY,
        base_url="https://tenant.example",
        http_client=mock_client(handler),
        retry_policy=RetryPolicy(max_retries=1, sleep=sleep),
        rate_limit=None,
    ) as client:
        assert (await client.get_bookable_appointment(1)).title == "Yoga"
    [delay] = delays
    assert 27 <= delay <= 30, delay  # read as local time it would be 5 hours off


@pytest.mark.parametrize(
    ("raised", "described"),
    [
        (httpx.ConnectError(""), "ConnectError"),  # nothing says why: the type alone
        (httpx.ConnectError("refused"), "ConnectError: refused"),
    ],
)
async def test_a_connection_error_names_its_type_and_reason(raised: Exception, described: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async with AppointmentsClient(
        api_key=KEY, base_url="https://tenant.example", http_client=mock_client(handler), max_retries=0,
        rate_limit=None,
    ) as client:  # fmt: skip
        with pytest.raises(APIConnectionError) as info:
            await client.get_bookable_appointment(1)
    assert str(info.value).endswith(
        f"getBookableAppointment (GET https://tenant.example/v1/appointments/bookable/1) failed: {described}"
    )


async def test_an_empty_cause_chain_ends_at_the_first_exception_with_a_message() -> None:
    inner = ValueError("")
    middle = OSError("")
    middle.__cause__ = inner

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("") from middle

    async with AppointmentsClient(
        api_key=KEY, base_url="https://tenant.example", http_client=mock_client(handler), max_retries=0,
        rate_limit=None,
    ) as client:  # fmt: skip
        with pytest.raises(APIConnectionError) as info:
            await client.get_bookable_appointment(1)
    assert str(info.value).endswith("failed: ConnectError")


# -- listings ---------------------------------------------------------------------------------------


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


def berlin_slot(day: dt.date) -> dict[str, Any]:
    start = dt.datetime.combine(day, dt.time(10), BERLIN)
    end = start + dt.timedelta(hours=1)

    def wire(value: dt.datetime) -> str:
        offset = value.strftime("%z")
        return f"{value:%Y-%m-%dT%H:%M}:00.000{offset[:3]}:{offset[3:]}[Europe/Berlin]"

    return {"startDateTime": wire(start), "endDateTime": wire(end), "instructors": []}


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
        return httpx.Response(200, json=[berlin_slot(first + dt.timedelta(days=n)) for n in range(days)])

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
