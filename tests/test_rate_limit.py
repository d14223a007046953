"""Never locked out: the client's per-endpoint rate limit, the lockout after a 429, Redis sharing.

The sandbox enforces the real API's rule (a counter per endpoint; past it, 429 for the rest of
the span, no Retry-After) with its numbers scaled down, so a lockout takes seconds, not a minute.
Each test starts its own sandbox: its base URL keeps the budget apart from other tests' clients.
The in-process tests run the client's throttle and the sandbox's limit on a DrivenClock, so a
wait for the limit takes no real time; Redis and other processes keep the real one.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from perfectgym_appointments_client import AppointmentsClient, RateLimit, RateLimitError, RetryPolicy
from perfectgym_appointments_client._throttling import Throttle, _Clock
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio

GET_ONE = "GET /v1/appointments/bookable/{bookableAppointmentId}"
SLOTS = "GET /v1/appointments/bookable/{bookableAppointmentId}/slots"


def served(sb: Sandbox, endpoint: str) -> int:
    return int(sb.stats["requests_by_endpoint"].get(endpoint, 0))


class DrivenClock(_Clock):
    """Time for the client's throttle and the sandbox's limit that passes only when the test lets it.

    A ``sleep`` waits for its deadline. Inside ``clock.running()`` the time jumps to the nearest
    deadline once every task waits (``anyio.wait_all_tasks_blocked``): a task that could still run
    never sees the time move under it, and a wait for the limit takes no real time. It starts at
    the real time and only goes forward: limits' expiry thread drops window entries by
    ``time.time()``, so the driven time must not fall a span behind it.
    """

    def __init__(self) -> None:
        self._now = time.time()
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()  # equal deadlines wake in the order they were asked for
        self._slept = anyio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        sleeper = (self._now + seconds, next(self._order), anyio.Event())
        heapq.heappush(self._sleepers, sleeper)
        self._slept.set()
        self._slept = anyio.Event()
        try:
            await sleeper[2].wait()
        finally:
            if sleeper in self._sleepers:  # cancelled: its deadline must not move the time
                self._sleepers.remove(sleeper)
                heapq.heapify(self._sleepers)

    async def sleeping(self) -> None:
        """Return once some task waits on the clock."""
        while not self._sleepers:
            await self._slept.wait()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._drive)
            yield
            tg.cancel_scope.cancel()

    async def _drive(self) -> None:
        while True:
            await self.sleeping()
            await anyio.wait_all_tasks_blocked()
            if self._sleepers:  # still: one may have been cancelled meanwhile
                self._now = max(self._now, self._sleepers[0][0])
                self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()


def drive(client: AppointmentsClient, clock: DrivenClock, sb: Sandbox | None = None) -> None:
    """Put the client's throttle (and the sandbox's limit) on ``clock``: private hooks, as neither
    AppointmentsClient nor Sandbox takes a clock for its rate limit."""
    throttle = client._api.throttle
    assert throttle is not None
    throttle._clock = clock
    if sb is not None:
        sb.rate_limiter._clock = clock.now


def test_rate_limit_values_are_checked() -> None:
    assert RateLimit() == RateLimit(requests=1000, seconds=60)
    with pytest.raises(ValueError, match="requests"):
        RateLimit(requests=0)
    with pytest.raises(ValueError, match="seconds"):
        RateLimit(seconds=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="storage"):
        RateLimit(storage="memcached://x")
    with pytest.raises(ValueError, match="per_endpoint"):
        RateLimit(per_endpoint={"bookAppointmentBooking": (0, 60)})
    assert RateLimit(per_endpoint={"x": (5, 10)}).for_endpoint("x") == (5, 10)
    with pytest.raises(TypeError, match="rate_limit"):
        AppointmentsClient(api_key="k", base_url="https://t.example", rate_limit=(10, 60))  # type: ignore[arg-type]


async def test_never_more_than_the_budget_in_any_span(caplog: pytest.LogCaptureFixture) -> None:
    clock = DrivenClock()
    sent: list[float] = []

    async def record(request: httpx.Request) -> None:
        sent.append(clock.now())

    with Sandbox(rate_limit=(100, 60.0)) as sb:
        appointment = sb.store.listed()[0].id
        http = httpx.AsyncClient(event_hooks={"request": [record]}, timeout=10)
        async with (
            http,
            AppointmentsClient(
                api_key=sb.api_key,
                base_url=sb.base_url,
                http_client=http,
                rate_limit=RateLimit(requests=3, seconds=1),
            ) as client,
        ):
            drive(client, clock)
            with caplog.at_level(logging.INFO, logger="perfectgym_appointments_client"):
                async with clock.running(), anyio.create_task_group() as tg:
                    for _ in range(7):
                        tg.start_soon(client.get_bookable_appointment, appointment)
    assert len(sent) == 7
    # A moving window: at most 3 requests in any span of the 1 s asked for. The client keeps 2 s
    # (its one-second margin); 1.5 s leaves room for a request that left a little late.
    for i, first in enumerate(sent):
        assert sum(1 for t in sent[i:] if t - first < 1.5) <= 3
    waits = [r for r in caplog.records if "waiting" in r.getMessage() and "rate limit" in r.getMessage()]
    assert waits
    assert all(r.levelno == logging.INFO for r in waits)
    assert len(waits) == 4  # once per call that had to wait, not once per wake-up


async def test_after_a_lockout_nothing_is_sent_to_that_endpoint_until_it_reopens() -> None:
    # The tenant allows 5 per 3 s; the client was told 100: the 6th request meets a lockout.
    clock = DrivenClock()
    with Sandbox(rate_limit=(5, 3.0)) as sb:
        appointment = sb.store.listed()[0].id
        async with AppointmentsClient(
            api_key=sb.api_key,
            base_url=sb.base_url,
            timeout=10,
            rate_limit=RateLimit(requests=100, seconds=3),
            retry_policy=RetryPolicy(sleep=clock.sleep),
        ) as client:
            drive(client, clock, sb)
            for _ in range(5):
                await client.get_bookable_appointment(appointment)
            done: list[str] = []
            answered = {"locked endpoint": anyio.Event(), "other endpoint": anyio.Event()}

            async def the_locked_endpoint() -> None:
                await client.get_bookable_appointment(appointment)  # 429, then waits for the reopening
                done.append("locked endpoint")
                answered["locked endpoint"].set()

            async def another_endpoint() -> None:
                await client.get_slots(appointment, days_ahead=1)
                done.append("other endpoint")
                assert served(sb, GET_ONE) == 6  # the first call is still waiting: nothing more sent
                answered["other endpoint"].set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(the_locked_endpoint)
                # until the 429 is there: the sandbox counts in its own thread
                while served(sb, GET_ONE) < 6:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                tg.start_soon(another_endpoint)
                # The time stands still while the other endpoint's request is out (in real time
                # its round trip is a sliver of the 3 s); only then does the lockout's span pass.
                with anyio.fail_after(10):
                    await answered["other endpoint"].wait()
                async with clock.running():
                    await answered["locked endpoint"].wait()
        stats = sb.stats
    assert done == ["other endpoint", "locked endpoint"]
    assert stats["rate_limited"] == 1
    assert served(sb, GET_ONE) == 7  # 5, the refused one, and one after the reopening
    assert served(sb, SLOTS) == 1


async def test_a_lockout_longer_than_the_calls_timeout_is_a_rate_limit_error_saying_when() -> None:
    clock = DrivenClock()
    with Sandbox(rate_limit=(2, 30.0)) as sb:
        appointment = sb.store.listed()[0].id
        async with (
            AppointmentsClient(
                api_key=sb.api_key,
                base_url=sb.base_url,
                timeout=2,
                rate_limit=RateLimit(requests=100, seconds=30),
                retry_policy=RetryPolicy(sleep=clock.sleep),  # the backoff after the 429
            ) as client,
            clock.running(),
        ):
            drive(client, clock, sb)
            await client.get_bookable_appointment(appointment)
            await client.get_bookable_appointment(appointment)
            with pytest.raises(RateLimitError):
                await client.get_bookable_appointment(appointment)  # the server's 429
            before = served(sb, GET_ONE)
            with pytest.raises(RateLimitError, match="closed until") as info:
                await client.get_bookable_appointment(appointment)
            assert served(sb, GET_ONE) == before  # nothing sent into the lockout
            assert info.value.reopens_at is not None
            assert 25 < info.value.reopens_at - clock.now() <= 31
            # other endpoints carry on
            assert await client.get_slots(appointment, days_ahead=1) is not None


async def test_a_wait_for_the_budget_can_be_cancelled() -> None:
    clock = DrivenClock()
    with Sandbox() as sb:
        appointment = sb.store.listed()[0].id
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, rate_limit=RateLimit(requests=1, seconds=10)
        ) as client:
            drive(client, clock)
            await client.get_bookable_appointment(appointment)

            async def cancel_once_it_waits(scope: anyio.CancelScope) -> None:
                await clock.sleeping()
                scope.cancel()

            # The clock runs, outside the cancelled scope: a wait that ignored the cancellation
            # would end at once instead of hanging the test.
            async with clock.running():
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(cancel_once_it_waits, scope)
                        await client.get_bookable_appointment(appointment)
        assert scope.cancelled_caught
        assert served(sb, GET_ONE) == 1


# -- Redis: one budget for every process ---------------------------------------------------------


async def test_redis_shares_the_budget_and_never_stores_the_key(redis_url: str) -> None:
    import redis

    with Sandbox(api_key="a-secret-api-key-123") as sb:
        appointment = sb.store.listed()[0].id
        limit = RateLimit(requests=2, seconds=2, storage=redis_url)
        sent: list[float] = []

        async def record(request: httpx.Request) -> None:
            sent.append(time.monotonic())

        https = [httpx.AsyncClient(event_hooks={"request": [record]}) for _ in range(2)]
        clients = [
            AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, http_client=h, rate_limit=limit)
            for h in https
        ]
        async with anyio.create_task_group() as tg:
            for client in clients * 2:  # two calls from each: the four share one budget of 2 per 2 s
                tg.start_soon(client.get_bookable_appointment, appointment)
        for h in https:
            await h.aclose()
    assert len(sent) == 4
    assert max(sent) - min(sent) >= 2.0  # the last two waited for the first two to leave the window
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert keys
    assert not any("a-secret-api-key-123" in k for k in keys)


async def test_a_lockout_seen_by_one_process_is_seen_by_all(redis_url: str) -> None:
    with Sandbox(rate_limit=(1, 30.0)) as sb:
        appointment = sb.store.listed()[0].id
        limit = RateLimit(requests=100, seconds=30, storage=redis_url)
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, timeout=2, rate_limit=limit
        ) as one:
            await one.get_bookable_appointment(appointment)
            with pytest.raises(RateLimitError):
                await one.get_bookable_appointment(appointment)  # 429: locked
        before = served(sb, GET_ONE)
        _, output = await _in_another_process(
            sb,
            redis_url,
            limit="RateLimit(requests=100, seconds=30, storage=REDIS)",
            calls=1,
            client_timeout=2,
        )
        assert "RateLimitError" in output, output
        assert "closed until" in output
        assert served(sb, GET_ONE) == before


async def _in_another_process(
    sb: Sandbox, redis_url: str, *, limit: str, calls: int, client_timeout: float
) -> tuple[int, str]:
    """Run a client in a new Python process; its exit status and what it printed."""
    script = textwrap.dedent(
        f"""
        import anyio, os
        from perfectgym_appointments_client import AppointmentsClient, RateLimit, RateLimitError
        REDIS = os.environ["REDIS_URL"]

        async def main():
            async with AppointmentsClient(timeout={client_timeout}, rate_limit={limit}) as client:
                done = 0
                for _ in range({calls}):
                    try:
                        await client.get_bookable_appointment(int(os.environ["APPOINTMENT"]))
                        done += 1
                    except RateLimitError as exc:
                        print("RateLimitError", exc)
                print("done", done)

        anyio.run(main)
        """
    )
    env = {
        **os.environ,
        "PERFECTGYM_BASE_URL": sb.base_url,
        "PERFECTGYM_API_KEY": sb.api_key,
        "REDIS_URL": redis_url,
        "APPOINTMENT": str(sb.store.listed()[0].id),
    }
    result = await anyio.run_process([sys.executable, "-c", script], env=env, check=False)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
async def test_four_processes_one_key(redis_url: str, shared: bool, anyio_backend: str) -> None:
    # 4 workers of one app, one key: each fires 15 calls at a tenant that allows 20 per 2 s.
    with Sandbox(rate_limit=(20, 2.0)) as sb:
        storage = "REDIS" if shared else "None"
        limit = f"RateLimit(requests=20, seconds=2, storage={storage})"
        results: list[tuple[int, str]] = []

        async def worker() -> None:
            results.append(await _in_another_process(sb, redis_url, limit=limit, calls=15, client_timeout=30))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
        refused = sb.stats["rate_limited"]
    outputs = [output for _, output in results]
    if shared:
        assert refused == 0, outputs
        assert all(code == 0 for code, _ in results), outputs
        assert all("done 15" in out for out in outputs), outputs
    else:
        assert refused > 0, outputs  # each process kept its own budget: together they went over


def test_the_in_memory_window_tidies_up_once_a_second_in_one_quiet_thread() -> None:
    # limits' stock MemoryStorage starts a thread 10 ms after each burst; ours replaces that
    # (a name-mangled method: a new limits version that renames it must fail here, not go unseen).
    from perfectgym_appointments_client._throttling import EXPIRY_INTERVAL, Throttle, _memory_storage

    throttle = Throttle(RateLimit(), api_key="k", base_url="https://t.example", logger=logging.getLogger("t"))
    assert throttle._limiter.hit(throttle._items("op"), throttle.namespace, "op")
    storage = _memory_storage()
    assert storage is throttle._storage
    assert storage.timer.interval == EXPIRY_INTERVAL == 1.0
    assert storage.timer.daemon


@pytest.mark.parametrize(
    ("margin", "given"),
    [(1, {}), (3, {"margin": 3})],
    ids=["the default 1 s margin", "a 3 s margin"],
)
async def test_the_in_memory_window_is_judged_on_the_throttles_clock_over_the_span_and_margin(
    margin: int, given: dict[str, int]
) -> None:
    # limits' MemoryStorage reads time.time() itself; ours reads the throttle's clock instead.
    # A process whose requests reach the API late (a busy event loop, a queue at the server)
    # keeps its budget over the span plus a margin of its own, not the default second.
    clock = DrivenClock()
    throttle = Throttle(
        RateLimit(requests=1, seconds=5, **given),
        api_key="k",
        base_url=f"https://{uuid.uuid4().hex}.example",  # a window of its own in the shared storage
        logger=logging.getLogger("t"),
        clock=clock,
    )
    assert throttle._take_turn("op", 1, redis=False) is None
    assert throttle._take_turn("op", 1, redis=False) == clock.now() + 5 + margin  # the span and the margin
    clock.advance(5 + margin - 0.5)
    assert throttle._take_turn("op", 1, redis=False) is not None
    clock.advance(1)
    assert throttle._take_turn("op", 1, redis=False) is None


@pytest.mark.parametrize("margin", [-1, 61, 1.5, True])
def test_the_margin_is_whole_seconds_up_to_a_minute(margin: object) -> None:
    with pytest.raises(ValueError, match="margin must be whole seconds"):
        RateLimit(margin=margin)  # type: ignore[arg-type]
