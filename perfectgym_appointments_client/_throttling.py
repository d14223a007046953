"""Never locked out: a per-endpoint rate limit kept on the client side, shared across processes on Redis.

The API counts requests per endpoint and, past its limit (1,000 a minute by default), refuses
every request to that endpoint for the next minute, with no Retry-After. So the client keeps
count itself: it never sends more than ``requests`` to one endpoint (an operation, whatever its
path ids) in any ``seconds``-long span, a moving window (``limits``' MovingWindowRateLimiter; a
token bucket would allow a burst at a window's edge, and we do not know how the server counts). A
call past the budget waits for its turn. After a 429 without Retry-After the endpoint counts as
locked for the span, for every process sharing the storage.

In-process the budget lives in one ``limits`` MemoryStorage for the whole process (clients of the
same key and tenant share it, as they share the server's counter). With
``storage="redis://..."`` it lives in Redis, keyed by a hash of key and base URL (never the key),
and every process using that Redis shares it. Redis is asked from a worker thread
(``anyio.to_thread``), so neither asyncio nor trio blocks on it.

Redis is a dependency that can fail, and the limiter must not take the client down with it: each
Redis call has a short timeout (``RateLimit.storage_timeout``, 0.25 s, connect and read; no
redis-py retries on top), and when one fails the throttle keeps the budget in-process (the same
moving window, the process's own count) for ``storage_retry_after`` seconds, then asks Redis
again. The switch is logged once at WARNING with the storage's error (never its password), the
return at INFO. While it lasts, processes no longer share their counts: each keeps within the
whole budget by itself, so N processes may send up to N times it; a lockout a 429 set is kept
in-process too, and honoured after Redis is back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._constants import (
    DEFAULT_RATE_LIMIT_REQUESTS,
    DEFAULT_RATE_LIMIT_SECONDS,
    DEFAULT_STORAGE_RETRY_AFTER,
    DEFAULT_STORAGE_TIMEOUT,
)

if TYPE_CHECKING:
    from ._telemetry import Instruments

__all__ = ["RateLimit", "Throttle", "without_password"]

# Added to the span the client keeps (``RateLimit.margin``'s default): requests reach the server a
# little later and unevenly, and without it two requests sent just over a span apart could arrive
# just inside one. It must cover the lag from a request's turn to the server counting it: a busy
# event loop, a queue at the server, a slow link (benchmarks/RESULTS.md, section 12).
SPAN_MARGIN = 1
EXPIRY_INTERVAL = 1.0


def _positive_int(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number >= 1, got {value!r}")


def _overrides(instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, tuple[int, int]]) -> None:
    for operation, limit in value.items():
        if (
            not isinstance(limit, tuple)
            or len(limit) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in limit)
        ):
            raise ValueError(f"per_endpoint[{operation!r}] must be (requests, seconds), got {limit!r}")


def _seconds(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        raise ValueError(f"{attribute.name} must be seconds, more than 0 and at most 60, got {value!r}")


def _margin(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60:
        raise ValueError(f"margin must be whole seconds, 0 to 60, got {value!r}")


def _storage(instance: Any, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not value.startswith(("redis://", "rediss://", "redis+unix://")):
        raise ValueError(f"storage must be None (in-process) or a redis:// URL, got {value!r}")


@attrs.frozen(kw_only=True)
class RateLimit:
    """The client-side limit: at most ``requests`` per endpoint in any ``seconds``.

    The API's documented default is 1,000 a minute; ``per_endpoint`` sets other numbers for some
    operations (by operationId, e.g. ``{"bookAppointmentBooking": (100, 60)}``) where a tenant's
    differ. ``storage="redis://host:6379/0"`` shares the budget with every process that uses the
    same Redis, API key and base URL (``pip install 'perfectgym-appointments-client[redis]'``).

    ``storage_timeout`` bounds each Redis call (connect and read); when Redis fails or does not
    answer in time, the client keeps the budget in-process and asks Redis again after
    ``storage_retry_after`` seconds.

    ``margin`` (whole seconds, 1 by default) is added to the span the client keeps the budget
    over: the longest a request may take from its turn to the API counting it. Processes whose
    event loops lag under load, or far from the API, need more (section 12 of the benchmarks: 3
    busy processes on 2 cores lagged up to 2 s). Processes sharing a budget on Redis must use the
    same margin: it is part of the window's key there.
    """

    requests: int = attrs.field(default=DEFAULT_RATE_LIMIT_REQUESTS, validator=_positive_int)
    seconds: int = attrs.field(default=DEFAULT_RATE_LIMIT_SECONDS, validator=_positive_int)
    storage: str | None = attrs.field(default=None, validator=_storage, repr=False)
    per_endpoint: Mapping[str, tuple[int, int]] = attrs.field(factory=dict, validator=_overrides)
    storage_timeout: float = attrs.field(default=DEFAULT_STORAGE_TIMEOUT, validator=_seconds)
    storage_retry_after: float = attrs.field(default=DEFAULT_STORAGE_RETRY_AFTER, validator=_seconds)
    margin: int = attrs.field(default=SPAN_MARGIN, validator=_margin)

    def for_endpoint(self, operation: str) -> tuple[int, int]:
        """``(requests, seconds)`` for an operationId: its override, or the general limit."""
        return self.per_endpoint.get(operation, (self.requests, self.seconds))


class _Clock:
    """Where the throttle reads the time and waits: the real ones.

    Tests set ``throttle._clock`` to a clock they drive: the lockouts, the waits and the in-memory
    window then all follow it. A window on Redis does not: limits reads ``time.time()`` for it.
    """

    def now(self) -> float:
        # Epoch seconds, not monotonic: a lockout kept on Redis is read by other processes.
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


_REAL_CLOCK = _Clock()

# What the in-memory window reads as now (limits' MemoryStorage reads time.time() itself). A
# context variable, not an attribute of the storage: one storage serves every client of the process.
_window_clock: ContextVar[Callable[[], float]] = ContextVar("_window_clock", default=time.time)


# Turns a multi-request call took up front (``Throttle.reserved``), by operation: its requests spend
# them instead of taking a turn each. One dict per call, shared by the tasks it starts.
_prepaid: ContextVar[dict[str, int] | None] = ContextVar("_prepaid", default=None)


class Throttle:
    """The rate limit of one :class:`AppointmentsClient`: ``await throttle.wait_turn(operation)``
    before each request, ``throttle.locked_out(operation)`` after a 429 without Retry-After."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        api_key: str,
        base_url: str,
        logger: Any,
        clock: _Clock = _REAL_CLOCK,
    ) -> None:
        from limits import RateLimitItemPerSecond
        from limits.strategies import MovingWindowRateLimiter

        self.limit = limit
        # A hash, so neither Redis nor a memory dump holds the key; the base URL keeps tenants apart.
        self.namespace = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]
        self._logger = logger
        self._clock = clock
        # The client's OpenTelemetry instruments, if it has any: told of each wait and lockout.
        self.telemetry: Instruments | None = None
        # Always there: the budget of a throttle without Redis, and of one whose Redis failed.
        self._storage = _memory_storage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._redis: Any = None
        self._redis_limiter: Any = None
        if limit.storage is not None:
            self._redis = _redis_storage(limit.storage, limit.storage_timeout)
            self._redis_limiter = MovingWindowRateLimiter(self._redis)
        # While Redis is failing: when to ask it again (the throttle's clock), else None.
        self._redis_down_until: float | None = None
        self._items = functools.cache(
            lambda operation: RateLimitItemPerSecond(
                *_with_margin(limit.for_endpoint(operation), limit.margin)
            )
        )

    @property
    def shared(self) -> bool:
        """Whether the budget is kept on Redis right now (False while Redis is failing)."""
        return self._redis is not None and self._redis_down_until is None

    async def wait_turn(
        self, operation: str, *, patience: float | None, method: str = "", path: str = ""
    ) -> float:
        """Return once a request to ``operation`` fits in the budget; wait (cancellable) until it
        does, at most ``patience`` seconds, then :class:`RateLimitError`. Returns the seconds waited."""
        prepaid = _prepaid.get()
        if prepaid and prepaid.get(operation, 0) > 0:
            prepaid[operation] -= 1
            return 0.0
        return await self._wait(operation, 1, patience=patience, method=method, path=path)

    @contextlib.asynccontextmanager
    async def reserved(
        self, operation: str, count: int, *, patience: float | None, method: str = "", path: str = ""
    ) -> AsyncIterator[None]:
        """Take ``count`` turns of ``operation`` at once, waiting (at most ``patience``) until the
        budget holds them all, before a call's first request: a call of many requests then either
        gets all it needs or sends none, and never spends turns it will not use on a half-done
        call. Inside, the call's requests (and retries past the count) take these turns first.
        A count larger than the whole budget is not reserved: each request then waits for its own."""
        requests, _ = self.limit.for_endpoint(operation)
        if count <= 1 or count > requests:
            yield
            return
        await self._wait(operation, count, patience=patience, method=method, path=path)
        token = _prepaid.set({operation: count})
        try:
            yield
        finally:
            _prepaid.reset(token)

    async def _wait(
        self, operation: str, cost: int, *, patience: float | None, method: str, path: str
    ) -> float:
        waited_since: float | None = None
        while True:
            reopens = await self._ask(self._take_turn, operation, cost)
            if reopens is None:
                return 0.0 if waited_since is None else self._waited(operation, waited_since, gave_up=False)
            now = self._clock.now()
            delay = max(reopens - now, 0.0) + 0.01
            if waited_since is None:
                waited_since = now
                requests, seconds = self.limit.for_endpoint(operation)
                self._logger.info(
                    "%s: waiting %.1f s for the rate limit (%d requests per %d s%s)",
                    operation, delay, requests, seconds, ", shared" if self.shared else "",
                )  # fmt: skip
            if patience is not None and now + delay - waited_since > patience:
                self._waited(operation, waited_since, gave_up=True)
                raise _rate_limit_error(operation, method, path, reopens, now)
            await self._clock.sleep(delay)

    def _waited(self, operation: str, since: float, *, gave_up: bool) -> float:
        seconds = max(self._clock.now() - since, 0.0)
        if self.telemetry is not None:
            self.telemetry.rate_limit_waited(operation, seconds, gave_up=gave_up)
        return seconds

    async def locked_out(self, operation: str) -> None:
        """The server answered 429 without Retry-After: it refuses this endpoint for the span."""
        _, seconds = self.limit.for_endpoint(operation)
        until = self._clock.now() + seconds
        # In-process always (it outlives a Redis outage), and on Redis for the other processes.
        _lockouts[self._lockout_key(operation)] = until
        await self._ask(self._set_lockout, operation, until, seconds)
        if self.telemetry is not None:
            self.telemetry.locked_out(operation)
        self._logger.warning(
            "%s: the API refused it for the rate limit; waiting %d s before the next", operation, seconds
        )

    # -- storage ------------------------------------------------------------------------------------
    def _take_turn(self, operation: str, cost: int, redis: bool) -> float | None:
        """One look at the storage (one thread hop for Redis): None if the request may go now,
        else when to look again (the lockout's end, or when the window frees a place)."""
        reopens = self._lockout_end(operation, redis)
        if reopens is not None:
            return reopens
        item = self._items(operation)
        limiter = self._redis_limiter if redis else self._limiter
        token = _window_clock.set(self._clock.now)
        try:
            if limiter.hit(item, self.namespace, operation, cost=cost):
                return None
            reset: float = limiter.get_window_stats(item, self.namespace, operation).reset_time
            return reset
        finally:
            _window_clock.reset(token)

    def _lockout_key(self, operation: str) -> str:
        return f"perfectgym-appointments/lockout/{self.namespace}/{operation}"

    def _lockout_end(self, operation: str, redis: bool) -> float | None:
        until = _lockouts.get(self._lockout_key(operation))
        if redis:
            value = self._redis.get_connection().get(self._lockout_key(operation))
            if value is not None:
                until = max(until or 0.0, float(value))
        return until if until is not None and until > self._clock.now() else None

    def _set_lockout(self, operation: str, until: float, seconds: int, redis: bool) -> None:
        if redis:
            self._redis.get_connection().set(self._lockout_key(operation), repr(until), ex=seconds + 1)

    async def _ask(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args, redis)``: on Redis while it answers, else in-process.

        Memory answers in microseconds: in the event loop. Redis is a network call: in a thread,
        bounded by the storage timeout; its failure is never the caller's.
        """
        if self._redis is not None:
            down_until = self._redis_down_until
            if down_until is None or self._clock.now() >= down_until:
                import anyio.to_thread  # only for Redis: not loaded at import

                try:
                    value = await anyio.to_thread.run_sync(functools.partial(function, *args, redis=True))
                except Exception as exc:  # noqa: BLE001 - any failure of the storage: fall back
                    self._redis_failed(exc)
                else:
                    if down_until is not None:
                        self._redis_down_until = None
                        self._logger.info("the rate-limit storage answers again; the budget is shared again")
                    return value
        return function(*args, redis=False)

    def _redis_failed(self, exc: Exception) -> None:
        first = self._redis_down_until is None
        self._redis_down_until = self._clock.now() + self.limit.storage_retry_after
        if first:
            self._logger.warning(
                "the rate-limit storage failed (%s); keeping the budget in this process and asking "
                "it again every %.0f s",
                without_password(f"{type(exc).__name__}: {exc}", self.limit.storage),
                self.limit.storage_retry_after,
            )


def without_password(text: str, url: str | None) -> str:
    """``text`` with the password ``url`` holds (a Redis URL's) masked: for messages of a storage's errors."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password if url else None
    return text.replace(password, "***") if password else text


def _with_margin(limit: tuple[int, int], margin: int) -> tuple[int, int]:
    requests, seconds = limit
    return requests, seconds + margin


_lockouts: dict[str, float] = {}
_memory_lock = threading.Lock()


@functools.cache
def _memory_storage() -> Any:
    # One for the whole process: each MemoryStorage runs its own expiry timer thread, and clients
    # of one key and tenant must share one budget anyway.
    import bisect

    from limits.storage import MemoryStorage
    from limits.storage.memory import Entry

    class ClockedEntry(Entry):
        def __init__(self, atime: float, expiry: float) -> None:  # the stock one reads time.time()
            self.atime = atime
            self.expiry = atime + expiry

    class QuietMemoryStorage(MemoryStorage):
        """limits' MemoryStorage, tidying up once a second instead of every 10 ms, and judging the
        moving window on the throttle's clock (``_window_clock``) instead of ``time.time()``.

        Its stock timer starts a new thread 10 ms after a request whenever none is running:
        a thread per call for calls 10 ms apart, about 0.3 ms of CPU each (benchmarks/RESULTS.md,
        rate limits). Expiry only frees memory; the window itself is decided from timestamps.
        The two window methods are limits' own (5.8) with only the time source changed.
        """

        def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
            if amount > limit:
                return False
            self._MemoryStorage__schedule_expiry()
            with self.locks[key]:
                events = self.events.setdefault(key, [])
                now = _window_clock.get()()
                if len(events) > limit - amount and events[limit - amount].atime >= now - expiry:
                    return False
                events[:0] = [ClockedEntry(now, expiry)] * amount
                return True

        def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
            now = _window_clock.get()()
            if events := self.events.get(key, []):
                oldest = bisect.bisect_left(events, -(now - expiry), key=lambda entry: -entry.atime)
                return events[oldest - 1].atime, oldest
            return now, 0

        def _MemoryStorage__schedule_expiry(self) -> None:  # the stock one, name-mangled
            if not self.timer.is_alive():
                expire = getattr(self, "_MemoryStorage__expire_events")  # noqa: B009 - name-mangled
                self.timer = threading.Timer(EXPIRY_INTERVAL, expire)
                self.timer.daemon = True  # never hold up the interpreter's exit
                self.timer.start()

    with _memory_lock:
        return QuietMemoryStorage()


@functools.cache
def _redis_storage(url: str, timeout: float) -> Any:
    try:
        from limits.storage import RedisStorage
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No retries inside redis-py (its default is three, with backoff): one bounded try, and
        # the throttle falls back.
        options: dict[str, Any] = {"retry": Retry(NoBackoff(), 0)}
        return RedisStorage(url, socket_timeout=timeout, socket_connect_timeout=timeout, **options)
    except ImportError as exc:  # pragma: no cover - only without the [redis] extra
        from ._exceptions import ConfigurationError

        raise ConfigurationError(
            f"a redis:// rate-limit storage needs the redis extra: pip install 'perfectgym-appointments-client[redis]' ({exc})"
        ) from exc


def _rate_limit_error(operation: str, method: str, path: str, reopens: float, now: float) -> Exception:
    from ._exceptions import RateLimitError

    when = time.strftime("%H:%M:%S", time.localtime(reopens))
    wait = max(reopens - now, 0.0)
    error = RateLimitError(
        status_code=429,
        operation=operation,
        method=method,
        path=path,
        error_message=(
            f"the rate limit keeps {operation} closed until {when} (in {math.ceil(wait)} s), longer "
            "than this call may wait (its timeout, max_rate_limit_wait or deadline); nothing was sent"
        ),
        retry_after=wait,
    )
    error.reopens_at = reopens
    return error
