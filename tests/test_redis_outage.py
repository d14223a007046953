"""The shared rate limit's Redis is a dependency that can fail, and the client degrades, never dies.

A real redis-server (with a password) that each test stops (SIGTERM), freezes (SIGSTOP) and
starts again, under a real sandbox: calls go on with the budget kept in-process, one WARNING
names the storage's error (never its password), the budget goes back to Redis once it answers,
and a booking check after a lost answer proves its booking whatever Redis does meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from sandbox_studio import BOOK, INSIDE, LOGGER, ServerHook, audit

from benchmarks.redis_process import PASSWORD, RedisProcess
from perfectgym_appointments_client import (
    AppointmentsClient,
    BookingOutcome,
    OutcomeKind,
    RateLimit,
    RateLimitError,
    RetryPolicy,
)
from perfectgym_appointments_client.sandbox import Faults, Sandbox

pytestmark = pytest.mark.anyio

RETRY_AFTER = 0.2  # seconds before a failed Redis is asked again (the default is 5)
FAILED = "the rate-limit storage failed"


@pytest.fixture
def redis(own_redis: RedisProcess) -> RedisProcess:
    """This test's own redis-server (tests/conftest.py)."""
    return own_redis


@asynccontextmanager
async def client_of(
    sb: Sandbox, redis: RedisProcess, outcomes: list[BookingOutcome] | None = None
) -> AsyncIterator[AppointmentsClient]:
    async with AppointmentsClient(
        api_key=sb.api_key,
        base_url=sb.base_url,
        rate_limit=RateLimit(storage=redis.url, storage_retry_after=RETRY_AFTER),
        retry_policy=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.05),
        booking_check_settle=0.05,
        on_booking_outcome=None if outcomes is None else outcomes.append,
    ) as client:
        yield client


def shared(client: AppointmentsClient) -> bool:
    throttle = client._api.throttle
    assert throttle is not None
    return throttle.shared


def storage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and FAILED in r.getMessage()]


async def back_on_redis(client: AppointmentsClient, appointment: int) -> None:
    """Calls until the budget is on Redis again (each call after the retry delay asks it)."""
    with anyio.fail_after(10):
        while not shared(client):
            await client.get_bookable_appointment(appointment)
            await anyio.sleep(RETRY_AFTER / 4)


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_calls_go_on_while_redis_fails_and_share_again_once_it_answers(
    redis: RedisProcess, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Sandbox() as sb:
        appointment = sb.store.listed()[0].id
        async with client_of(sb, redis) as client:
            await client.get_bookable_appointment(appointment)
            assert shared(client)
            assert redis.keys(), "the budget is on Redis"

            redis.stop() if fault == "stopped" else redis.freeze()
            with caplog.at_level(logging.INFO, logger=LOGGER):
                got = [await client.get_bookable_appointment(appointment) for _ in range(20)]
                assert [a.id for a in got] == [appointment] * 20
                assert not shared(client)
                [warning] = storage_warnings(caplog)
                assert ("ConnectionError" if fault == "stopped" else "Timeout") in warning
                assert PASSWORD not in caplog.text

                redis.start() if fault == "stopped" else redis.thaw()
                await back_on_redis(client, appointment)
            assert "answers again" in caplog.text
            assert redis.keys(), "the budget is kept on Redis again"
            assert len(storage_warnings(caplog)) == 1, "one WARNING per outage"


async def test_a_redis_that_is_not_there_from_the_start_does_not_stop_a_call(
    redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    redis.stop()
    with Sandbox() as sb:
        appointment = sb.store.listed()[0].id
        async with client_of(sb, redis) as client:
            with caplog.at_level(logging.WARNING, logger=LOGGER):
                assert (await client.get_bookable_appointment(appointment)).id == appointment
                assert (await client.list_bookings(sb.demo_customer_id)) is not None
            assert len(storage_warnings(caplog)) == 1
            assert PASSWORD not in caplog.text


async def test_a_lockout_kept_in_process_during_an_outage_still_holds_after_it(redis: RedisProcess) -> None:
    with Sandbox(rate_limit=(1, 30.0)) as sb:
        appointment = sb.store.listed()[0].id
        async with AppointmentsClient(
            api_key=sb.api_key,
            base_url=sb.base_url,
            timeout=1,
            rate_limit=RateLimit(
                requests=100, seconds=30, storage=redis.url, storage_retry_after=RETRY_AFTER
            ),
        ) as client:
            await client.get_bookable_appointment(appointment)
            redis.stop()
            with pytest.raises(RateLimitError):
                await client.get_bookable_appointment(appointment)  # the server's 429: a lockout
            redis.start()
            before = sb.stats["requests"]
            with pytest.raises(RateLimitError) as caught:
                await client.get_bookable_appointment(appointment)
            assert sb.stats["requests"] == before, "the lockout holds: nothing was sent"
            assert getattr(caught.value, "reopens_at", None) is not None


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_a_booking_check_after_a_lost_answer_proves_its_booking_while_redis_fails(
    redis: RedisProcess, fault: str
) -> None:
    server = ServerHook()
    with Sandbox(seed=3, rate_limit=None, on_request=server) as sb:
        customer = sb.store.add_customer().id
        appointment = next(a for a in sb.store.listed() if not a.premium_only and not a.all_hours)
        outcomes: list[BookingOutcome] = []
        async with client_of(sb, redis, outcomes) as client:
            first = sb.store.now().date()
            slots = await client.get_slots(
                appointment.id,
                customer_id=customer,
                days_ahead=3,
                start_date=first + dt.timedelta(days=INSIDE),
            )
            sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
            # The booking commits, its answer is lost, and Redis fails before the check reads.
            server.on("committed", "POST", BOOK, redis.stop if fault == "stopped" else redis.freeze)
            booking = await client.book(
                customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0]
            )
            assert not shared(client), "the check's reads went on without Redis"
            if fault == "frozen":
                redis.thaw()
        assert sb.fault_counts["commit_then_drop"] == 1
        assert server.count("received", "POST", BOOK) == 1, "not booked again"
        [made] = audit(sb.store.snapshot(), customer, outcomes, booking)
        assert made.id == booking.booking_id
        assert [(o.kind, o.booking_id) for o in outcomes] == [(OutcomeKind.BOOKED, booking.booking_id)]


@pytest.mark.parametrize(
    "options",
    [{"storage_timeout": 0}, {"storage_timeout": 61}, {"storage_retry_after": -1}, {"storage_timeout": True}],
)
def test_the_storage_timeouts_are_checked_when_made(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="seconds"):
        RateLimit(storage="redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]
