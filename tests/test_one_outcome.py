"""Every public call ends in one typed outcome: a value, or one exception of the PerfectGymError
tree, never an ExceptionGroup or a raw exception of httpx, aiohttp or anyio, whatever the
sandbox does to it. Calls that fan out (get_slots over more than six days, search_slots,
book_first_available) raise their first failure as itself.

Real sockets, a real sandbox, both HTTP backends, asyncio and trio.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from perfectgym_appointments_client import (
    AppointmentsClient,
    PerfectGymError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    ServiceUnavailableError,
    Slot,
)
from perfectgym_appointments_client.sandbox import ZONE, Faults, Sandbox

pytestmark = pytest.mark.anyio


def _next_monday_morning() -> dt.datetime:
    today = dt.datetime.now(ZONE).date()
    return dt.datetime.combine(today + dt.timedelta(days=7 - today.weekday()), dt.time(7), ZONE)


NOW = _next_monday_morning()
SLOW_COMMIT = 0.6  # seconds the sandbox holds a booking request: longer than the client's timeout
CLIENT_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=19, clock=lambda: NOW) as sb:
        yield sb


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest) -> str:
    """Named as conftest's fixture, so that its hook deselects trio + aiohttp."""
    return str(request.param)


@pytest.fixture
async def client(sandbox: Sandbox, http_backend: str) -> AsyncIterator[AppointmentsClient]:
    sandbox.faults = Faults()
    async with AppointmentsClient(
        http_backend=http_backend,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        retry_policy=RetryPolicy(max_retries=1, backoff_base=0.0),
        timeout=CLIENT_TIMEOUT,
        booking_check_settle=0,
    ) as c:
        yield c
    sandbox.faults = Faults()


# Each booking gets an hour of "Open Gym 24/7" nobody else has (its room takes one booking at a time).
_hours = itertools.count(1)


def fresh_slot() -> Slot:
    start = (NOW + dt.timedelta(days=1, hours=next(_hours))).replace(minute=0)
    return Slot(start_date_time=start, end_date_time=start + dt.timedelta(hours=1))


def booking_of(sandbox: Sandbox) -> int:
    """A booking made at the server directly, for the calls that need one."""
    customer = sandbox.store.add_customer()
    slot = fresh_slot()
    gym = sandbox.store.open_gym()
    return sandbox.store.book(customer.id, gym.id, slot.start_date_time, slot.end_date_time).id


Call = Callable[[AppointmentsClient, Sandbox], Awaitable[Any]]


async def _all_appointments(c: AppointmentsClient, sb: Sandbox) -> Any:
    return [a async for a in c.bookable_appointments(slice_size=10)]


async def _all_pages(c: AppointmentsClient, sb: Sandbox) -> Any:
    return [p async for p in c.bookable_appointments(slice_size=10).pages()]


CALLS: dict[str, Call] = {
    "check_api_key": lambda c, sb: c.check_api_key(),
    "bookable_appointments": _all_appointments,
    "bookable_appointments.pages": _all_pages,
    "get_bookable_appointment": lambda c, sb: c.get_bookable_appointment(sb.store.open_gym().id),
    "get_slots": lambda c, sb: c.get_slots(sb.store.open_gym().id, days_ahead=14),
    "search_slots": lambda c, sb: c.search_slots([a.id for a in sb.store.listed()[:4]], days_ahead=7),
    "validate_slot": lambda c, sb: c.validate_slot(
        customer_id=sb.store.add_customer().id,
        bookable_appointment_id=sb.store.open_gym().id,
        slot=fresh_slot(),
    ),
    "book": lambda c, sb: c.book(
        customer_id=sb.store.add_customer().id,
        bookable_appointment_id=sb.store.open_gym().id,
        slot=fresh_slot(),
    ),
    "book_first_available": lambda c, sb: c.book_first_available(
        customer_id=sb.store.add_customer().id,
        bookable_appointment_id=sb.store.open_gym().id,
        days_ahead=2,
        concurrency=4,
    ),
    "reschedule": lambda c, sb: c.reschedule(
        booking_of(sb), fresh_slot(), bookable_appointment_id=sb.store.open_gym().id
    ),
    "get_booking": lambda c, sb: c.get_booking(booking_of(sb)),
    "list_bookings": lambda c, sb: c.list_bookings(sb.demo_customer_id),
    "cancel_booking": lambda c, sb: c.cancel_booking(booking_of(sb)),
}

FAULTS: dict[str, Faults] = {
    "429": Faults(rate_429=1.0, retry_after=0),
    "503": Faults(rate_503=1.0, retry_after=0),
    "reset": Faults(rate_reset=1.0),
    "409": Faults(rate_409=1.0),
    "commit_then_drop": Faults(rate_commit_then_drop=1.0),
    "500_after_commit": Faults(rate_500_after_commit=1.0),
    "slow_commit": Faults(rate_slow_commit=1.0, slow_commit_seconds=SLOW_COMMIT),
    "one_503_then_none": Faults(rate_503=1.0, retry_after=0, max_faults=2),
    # Every answer later than the client's timeout: the first try and its retry time out.
    "latency": Faults(latency=CLIENT_TIMEOUT + 0.05),
}


def test_the_sweep_covers_every_public_method() -> None:
    public = {
        name
        for name, member in inspect.getmembers(AppointmentsClient)
        if not name.startswith("_") and callable(member)
    }
    # with_options and for_studio make clients and send nothing (tests/test_many_studios.py);
    # recover and pending_bookings work on a booking journal (tests/test_journal_*.py).
    journal = {"recover", "pending_bookings"}
    assert public - {"aclose", "with_options", "for_studio", *journal} == {
        name.split(".")[0] for name in CALLS
    }


# The write faults hit only booking and cancel requests: for the other calls they are no fault.
WRITES = {"book", "book_first_available", "reschedule", "cancel_booking"}
WRITE_FAULTS = {"409", "commit_then_drop", "500_after_commit", "slow_commit"}
# Latency past the timeout costs two timeouts a request: it is swept where timeouts meet a fan-out;
# a booking flow's timeouts are the slow commit's, a single read's tests/test_sandbox_faults.py's.
SLOW = {"get_slots", "search_slots", "book_first_available"}
SWEEP = [
    (call, fault)
    for call in CALLS
    for fault in FAULTS
    if (call in WRITES or fault not in WRITE_FAULTS) and (fault != "latency" or call in SLOW)
]


@pytest.mark.parametrize(("call", "fault"), SWEEP)
async def test_every_public_call_ends_in_a_value_or_one_typed_error(
    client: AppointmentsClient, sandbox: Sandbox, call: str, fault: str
) -> None:
    run = CALLS[call]
    sandbox.faults = FAULTS[fault]
    raised: Exception | None = None
    try:
        await run(client, sandbox)
    except Exception as exc:  # noqa: BLE001 - what the caller would see
        raised = exc
    if raised is not None:
        assert not isinstance(raised, BaseExceptionGroup), f"{call} under {fault}: {raised!r}"
        assert isinstance(raised, PerfectGymError), (
            f"{call} under {fault}: {type(raised).__module__}.{raised!r}"
        )
        assert not isinstance(raised.__cause__, BaseExceptionGroup)


# -- fan-out calls raise their first failure as itself ---------------------------------------------


async def test_get_slots_over_two_weeks_raises_a_rate_limit_as_itself(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    sandbox.faults = Faults(rate_429=1.0, retry_after=0)
    with pytest.raises(RateLimitError) as caught:
        await client.get_slots(sandbox.store.open_gym().id, days_ahead=14)
    assert type(caught.value) is RateLimitError


async def test_one_failing_window_fails_get_slots_with_that_windows_error(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    # One window's first try and its retry fail; every other request passes.
    sandbox.faults = Faults(rate_503=1.0, retry_after=0, max_faults=2)
    with pytest.raises(ServiceUnavailableError):
        await client.get_slots(sandbox.store.open_gym().id, days_ahead=14)
    sandbox.faults = Faults()
    gym = sandbox.store.open_gym()
    slots = await client.get_slots(gym.id, days_ahead=14)
    expected = sandbox.store.slots(gym.id, dt.datetime.now(ZONE).date(), 14)
    assert [s.start_date_time.astimezone(dt.UTC) for s in slots] == [
        start.astimezone(dt.UTC) for start, _, _ in expected
    ]


async def test_search_slots_raises_its_first_failure_with_the_others_in_its_notes(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    sandbox.faults = Faults(rate_503=1.0, retry_after=0)
    ids = [a.id for a in sandbox.store.listed()[:6]]
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.search_slots(ids, days_ahead=2, concurrency=6)
    notes = [note for note in getattr(caught.value, "__notes__", []) if "also failed" in note]
    # the siblings that failed before the first failure's cancel reached them are named: with
    # their own 503, or failing at once once the studio's circuit breaker opened
    assert all(
        "also failed: ServiceUnavailableError" in note or "also failed: CircuitOpenError" in note
        for note in notes[:5]
    )


async def test_a_malformed_window_names_the_operation_and_field(anyio_backend: str) -> None:
    start = dt.datetime.combine(NOW.date(), dt.time(10), ZONE)
    good = {
        "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.000+01:00[Europe/Berlin]"),
        "endDateTime": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+01:00[Europe/Berlin]"),
    }
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.params.get("slotWindowStartDate", ""))
        if len(requests) == 2:
            return httpx.Response(
                200, json=[{"startDateTime": "tomorrow", "endDateTime": good["endDateTime"]}]
            )
        return httpx.Response(200, json=[good])

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://studio.example") as http,
        AppointmentsClient(api_key="k", base_url="https://studio.example", http_client=http) as client,
    ):
        with pytest.raises(ResponseValidationError) as caught:
            await client.get_slots(1, days_ahead=14, start_date=NOW.date())
    assert type(caught.value) is ResponseValidationError
    assert "getBookableAppointmentSlots" in str(caught.value)
    assert "startDateTime" in str(caught.value)


async def test_a_window_past_the_last_date_is_a_value_error_before_any_request(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    before = sandbox.stats["requests"]
    with pytest.raises(ValueError, match="ends after"):
        await client.get_slots(sandbox.store.open_gym().id, days_ahead=14, start_date=dt.date(9999, 12, 25))
    with pytest.raises(ValueError, match="ends after"):
        await client.search_slots([1, 2], days_ahead=14, start_date=dt.date(9999, 12, 25))
    assert sandbox.stats["requests"] == before
