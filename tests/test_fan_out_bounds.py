"""Calls that fan out are bounded: ``days_ahead`` at most MAX_DAYS_AHEAD (a ValueError before any
request), a multi-window call takes all its windows' rate-limit turns before its first request (or
sends none), and ``book_first_available`` validates at most MAX_CANDIDATES slots.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fakeapi import FakeAPI, make, slot_json

from perfectgym_appointments_client import (
    AppointmentsClient,
    NoSlotAvailableError,
    RateLimit,
    RateLimitError,
)
from perfectgym_appointments_client._booking._first_available import MAX_CANDIDATES
from perfectgym_appointments_client._constants import MAX_DAYS_AHEAD, MAX_DAYS_PER_REQUEST
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio

SLOTS = "GET /v1/appointments/bookable/{bookableAppointmentId}/slots"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=23, rate_limit=None) as sb:
        yield sb


async def test_days_ahead_past_the_maximum_is_refused_before_any_request(sandbox: Sandbox) -> None:
    gym = sandbox.store.open_gym().id
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        for call in (
            lambda: client.get_slots(gym, days_ahead=MAX_DAYS_AHEAD + 1),
            lambda: client.search_slots([gym], days_ahead=10_000),
            lambda: client.book_first_available(
                customer_id=sandbox.demo_customer_id,
                bookable_appointment_id=gym,
                days_ahead=MAX_DAYS_AHEAD + 1,
            ),
        ):
            with pytest.raises(ValueError, match=f"between 1 and {MAX_DAYS_AHEAD}"):
                await call()
        assert sandbox.stats["requests"] == 0
        slots = await client.get_slots(gym, days_ahead=MAX_DAYS_AHEAD)  # the maximum itself is fine
    windows = -(-MAX_DAYS_AHEAD // MAX_DAYS_PER_REQUEST)
    assert sandbox.stats["requests_by_endpoint"][SLOTS] == windows
    assert slots, "the studio's booking horizon is inside the year"


async def test_a_multi_window_call_that_cannot_get_all_its_turns_sends_nothing(sandbox: Sandbox) -> None:
    gym = sandbox.store.open_gym().id
    limit = RateLimit(per_endpoint={"getBookableAppointmentSlots": (5, 60)})
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, rate_limit=limit, max_rate_limit_wait=0
    ) as client:
        await client.get_slots(gym, days_ahead=14, start_date=sandbox.store.now().date())  # 3 windows
        assert sandbox.stats["requests_by_endpoint"][SLOTS] == 3
        with pytest.raises(RateLimitError):  # 3 more do not fit in the 2 left
            await client.get_slots(gym, days_ahead=14, start_date=sandbox.store.now().date())
        assert sandbox.stats["requests_by_endpoint"][SLOTS] == 3, "none of the three was sent"
        # ... and the 2 turns it could not use are still there for calls that fit.
        await client.get_slots(gym, days_ahead=12, start_date=sandbox.store.now().date())
        assert sandbox.stats["requests_by_endpoint"][SLOTS] == 5


async def test_book_first_available_validates_at_most_the_earliest_candidates() -> None:
    api = FakeAPI()
    day = dt.date.today() + dt.timedelta(days=2)
    api.slots[1] = [
        slot_json(hour, [7], day=day + dt.timedelta(days=n)) for n in range(30) for hour in range(6, 20)
    ]
    assert len(api.slots[1]) > MAX_CANDIDATES
    for slot in api.slots[1]:
        api.validation[slot["startDateTime"]] = "RESOURCE_NOT_AVAILABLE"
    async with make(api) as client:
        with pytest.raises(NoSlotAvailableError) as caught:
            await client.book_first_available(customer_id=5, bookable_appointment_id=1, days_ahead=6)
    assert caught.value.checked == MAX_CANDIDATES
    assert api.count("POST", "/v1/appointments/bookable/validate") == MAX_CANDIDATES
