"""Per-call bounds for servers: ``max_rate_limit_wait`` fails a call fast with RateLimitError (and
``reopens_at``) instead of waiting, ``deadline`` bounds the whole call, retries and waits included;
set on the client or on a copy from ``with_options``. A booking request, once sent, runs to its end.

Against the sandbox over real sockets, asyncio and trio.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from perfectgym_appointments_client import (
    APITimeoutError,
    AppointmentsClient,
    BookingOutcome,
    CallOptions,
    OutcomeKind,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from perfectgym_appointments_client.sandbox import Faults, Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=21, rate_limit=None) as sb:
        yield sb


def client_of(sb: Sandbox, **options: object) -> AppointmentsClient:
    return AppointmentsClient(
        api_key=sb.api_key,
        base_url=sb.base_url,
        timeout=10,
        retry_policy=RetryPolicy(max_retries=5, backoff_base=0.0),
        booking_check_settle=0,
        **options,  # type: ignore[arg-type]
    )


async def test_a_call_past_its_rate_limit_wait_fails_fast_and_says_when_it_reopens(sandbox: Sandbox) -> None:
    appointment = sandbox.store.listed()[0].id
    async with client_of(sandbox, rate_limit=RateLimit(requests=1, seconds=60)) as client:
        await client.get_bookable_appointment(appointment)  # the minute's one request
        sent = sandbox.stats["requests"]
        with pytest.raises(RateLimitError) as caught:
            await client.with_options(max_rate_limit_wait=0.5).get_bookable_appointment(appointment)
    assert sandbox.stats["requests"] == sent, "nothing was sent"
    reopens_at = getattr(caught.value, "reopens_at", None)
    assert reopens_at is not None
    assert reopens_at > time.time() + 30, "the budget frees its place a minute after the first request"
    assert "max_rate_limit_wait" in str(caught.value)


async def test_a_servers_retry_after_longer_than_the_wait_is_raised_not_slept(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_429=1.0, retry_after=30)
    async with client_of(sandbox, max_rate_limit_wait=1) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.list_bookings(sandbox.demo_customer_id)
    assert caught.value.retry_after == 30
    assert sandbox.fault_counts["429"] == 1, "not retried: the server's wait is longer than the call accepts"
    assert any("max_rate_limit_wait" in note for note in caught.value.__notes__)


async def test_a_deadline_ends_a_slow_call_with_a_timeout(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(latency=0.8)
    async with client_of(sandbox, deadline=0.2) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.get_bookable_appointment(sandbox.store.listed()[0].id)
    assert "deadline" in str(caught.value)
    assert caught.value.may_have_reached_server


async def test_a_deadline_stops_retries_whose_wait_would_pass_it(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_503=1.0, retry_after=5)
    async with client_of(sandbox) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            await client.with_options(deadline=2).list_bookings(sandbox.demo_customer_id)
    assert sandbox.fault_counts["503"] == 1
    assert any("deadline" in note for note in caught.value.__notes__)


async def test_a_deadline_already_past_sends_nothing(sandbox: Sandbox) -> None:
    async with client_of(sandbox, deadline=0) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.list_bookings(sandbox.demo_customer_id)
    assert not caught.value.may_have_reached_server
    assert "nothing was sent" in str(caught.value)
    assert sandbox.stats["requests"] == 0


async def test_a_deadline_bounds_every_window_of_a_long_slot_listing(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(latency=0.8)
    async with client_of(sandbox) as client:
        with pytest.raises(APITimeoutError):
            await client.with_options(deadline=0.2).get_slots(sandbox.store.open_gym().id, days_ahead=14)


async def test_a_booking_once_sent_runs_to_its_end_past_the_deadline(sandbox: Sandbox) -> None:
    customer = sandbox.store.add_customer().id
    gym = sandbox.store.open_gym()
    start = (sandbox.store.now() + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    [slot] = [s for s in await _slots(sandbox, gym.id, customer) if s.start_date_time == start]
    outcomes: list[BookingOutcome] = []
    sandbox.faults = Faults(rate_slow_commit=1.0, slow_commit_seconds=0.5)
    async with client_of(sandbox, on_booking_outcome=outcomes.append) as client:
        booking = await client.with_options(deadline=0.2).book(
            customer_id=customer, bookable_appointment_id=gym.id, slot=slot
        )
    [made] = [b for b in sandbox.store.snapshot() if b.customer_id == customer and b.active]
    assert booking.booking_id == made.id
    assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.BOOKED, made.id)]


async def _slots(sandbox: Sandbox, appointment: int, customer: int) -> list:  # type: ignore[type-arg]
    async with client_of(sandbox) as client:
        first = sandbox.store.now().date() + dt.timedelta(days=1)
        return await client.get_slots(appointment, customer_id=customer, days_ahead=1, start_date=first)


async def test_with_options_makes_a_copy_that_shares_the_connections_and_the_flows(sandbox: Sandbox) -> None:
    async with client_of(sandbox, deadline=10) as client:
        quick = client.with_options(max_rate_limit_wait=2)
        assert quick.options == CallOptions(max_rate_limit_wait=2, deadline=10)
        assert client.options == CallOptions(deadline=10), "the original keeps its own"
        assert quick._api is client._api
        assert quick._flows is client._flows
        assert (await quick.list_bookings(sandbox.demo_customer_id)) is not None


@pytest.mark.parametrize(
    "options", [{"deadline": -1}, {"max_rate_limit_wait": "2"}, {"deadline": float("inf")}]
)
def test_bad_bounds_are_refused_when_made(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="seconds"):
        AppointmentsClient(api_key="k", base_url="https://studio.example", **options)  # type: ignore[arg-type]
