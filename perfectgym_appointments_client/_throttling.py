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
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import anyio
import attrs

from ._constants import DEFAULT_RATE_LIMIT_REQUESTS, DEFAULT_RATE_LIMIT_SECONDS

__all__ = ["RateLimit", "Throttle"]

# Added to the span the client keeps: requests reach the server a little later and unevenly, and
# without it two requests sent just over a span apart could arrive just inside one.
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
    """

    requests: int = attrs.field(default=DEFAULT_RATE_LIMIT_REQUESTS, validator=_positive_int)
    seconds: int = attrs.field(default=DEFAULT_RATE_LIMIT_SECONDS, validator=_positive_int)
    storage: str | None = attrs.field(default=None, validator=_storage, repr=False)
    per_endpoint: Mapping[str, tuple[int, int]] = attrs.field(factory=dict, validator=_overrides)

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
        self._shared = limit.storage is not None
        storage = _redis_storage(limit.storage) if limit.storage is not None else _memory_storage()
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._items = functools.cache(
            lambda operation: RateLimitItemPerSecond(*_with_margin(limit.for_endpoint(operation)))
        )

    async def wait_turn(
        self, operation: str, *, patience: float | None, method: str = "", path: str = ""
    ) -> None:
        """Return once a request to ``operation`` fits in the budget; wait (cancellable) until it
        does, at most ``patience`` seconds, then :class:`RateLimitError`."""
        waited_since: float | None = None
        while True:
            reopens = await self._run(self._take_turn, operation)
            if reopens is None:
                return
            now = self._clock.now()
            delay = max(reopens - now, 0.0) + 0.01
            if waited_since is None:
                waited_since = now
                requests, seconds = self.limit.for_endpoint(operation)
                self._logger.info(
                    "%s: waiting %.1f s for the rate limit (%d requests per %d s%s)",
                    operation, delay, requests, seconds, ", shared" if self._shared else "",
                )  # fmt: skip
            if patience is not None and now + delay - waited_since > patience:
                raise _rate_limit_error(operation, method, path, reopens, now)
            await self._clock.sleep(delay)

    async def locked_out(self, operation: str) -> None:
        """The server answered 429 without Retry-After: it refuses this endpoint for the span."""
        _, seconds = self.limit.for_endpoint(operation)
        until = self._clock.now() + seconds
        await self._run(self._set_lockout, operation, until, seconds)
        self._logger.warning(
            "%s: the API refused it for the rate limit; waiting %d s before the next", operation, seconds
        )

    # -- storage ------------------------------------------------------------------------------------
    def _take_turn(self, operation: str) -> float | None:
        """One look at the storage (one thread hop for Redis): None if the request may go now,
        else when to look again (the lockout's end, or when the window frees a place)."""
        reopens = self._lockout_end(operation)
        if reopens is not None:
            return reopens
        item = self._items(operation)
        token = _window_clock.set(self._clock.now)
        try:
            if self._limiter.hit(item, self.namespace, operation):
                return None
            reset: float = self._limiter.get_window_stats(item, self.namespace, operation).reset_time
            return reset
        finally:
            _window_clock.reset(token)

    def _lockout_key(self, operation: str) -> str:
        return f"perfectgym-appointments/lockout/{self.namespace}/{operation}"

    def _lockout_end(self, operation: str) -> float | None:
        until = (
            _lockouts.get(self._lockout_key(operation)) if not self._shared else self._redis_get(operation)
        )
        return until if until is not None and until > self._clock.now() else None

    def _set_lockout(self, operation: str, until: float, seconds: int) -> None:
        if self._shared:
            self._storage.get_connection().set(self._lockout_key(operation), repr(until), ex=seconds + 1)
        else:
            _lockouts[self._lockout_key(operation)] = until

    def _redis_get(self, operation: str) -> float | None:
        value = self._storage.get_connection().get(self._lockout_key(operation))
        return float(value) if value is not None else None

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        # Memory answers in microseconds: in the event loop. Redis is a network call: in a thread.
        if self._shared:
            import anyio.to_thread  # only for Redis: not loaded at import

            return await anyio.to_thread.run_sync(function, *args)
        return function(*args)


def _with_margin(limit: tuple[int, int]) -> tuple[int, int]:
    requests, seconds = limit
    return requests, seconds + SPAN_MARGIN


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
def _redis_storage(url: str) -> Any:
    try:
        from limits.storage import RedisStorage

        return RedisStorage(url)
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
            "than this call may wait (its timeout); nothing was sent"
        ),
        retry_after=wait,
    )
    error.reopens_at = reopens
    return error
