"""The API's rate limit: a counter per endpoint and API key, and a lockout once it is exceeded.

The real numbers by default: 1,000 requests per 60 seconds to one endpoint (method and route
template, whatever the ids in the path); the request that would exceed it and every request to
that endpoint in the 60 seconds after it get 429, while the other endpoints keep answering.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_RATE_LIMIT", "RateLimiter", "checked_rate_limit"]

DEFAULT_RATE_LIMIT = (1_000, 60.0)


def checked_rate_limit(limit: tuple[int, float] | None) -> tuple[int, float] | None:
    """``(requests >= 1, seconds > 0)`` with the seconds as a float, or ``None``; else ValueError."""
    if limit is None:
        return None
    requests, seconds = limit
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1 or not seconds > 0:
        raise ValueError(f"rate_limit must be (requests >= 1, seconds > 0) or None, got {limit!r}")
    return requests, float(seconds)


class RateLimiter:
    """Counts requests per endpoint and refuses them past ``limit`` (``(requests, seconds)``).

    The window slides: a request is refused when ``requests`` others to the same endpoint with
    the same key came in the ``seconds`` before it; the endpoint then stays locked for
    ``seconds`` (the span), and counting starts afresh after. ``limit=None`` counts without
    refusing. ``clock`` is monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self.requests: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.limit = limit

    @property
    def limit(self) -> tuple[int, float] | None:
        return self._limit

    @limit.setter
    def limit(self, limit: tuple[int, float] | None) -> None:
        checked = checked_rate_limit(limit)
        with self._lock:
            self._limit = checked
            # A new limit starts from a clean slate rather than judging old traffic by it.
            self._recent.clear()
            self._locked_until.clear()

    def count(self, endpoint: str) -> None:
        """One request to ``endpoint`` arrived (every request counts, refused or not)."""
        with self._lock:
            self.requests[endpoint] += 1

    def admit(self, api_key: str, endpoint: str) -> bool:
        """Whether this request may go on; ``False`` means answer 429 (and it is counted so)."""
        with self._lock:
            if self._limit is None:
                return True
            allowed, span = self._limit
            now = self._clock()
            slot = (api_key, endpoint)
            if now < self._locked_until.get(slot, now):
                self.rate_limited[endpoint] += 1
                return False
            self._locked_until.pop(slot, None)
            recent = self._recent.setdefault(slot, deque())
            while recent and recent[0] <= now - span:
                recent.popleft()
            if len(recent) >= allowed:
                recent.clear()
                self._locked_until[slot] = now + span
                self.rate_limited[endpoint] += 1
                return False
            recent.append(now)
            return True

    def lockout_remaining(self, api_key: str, endpoint: str) -> float:
        """Seconds until ``endpoint`` answers this key again (0 when it is not locked)."""
        with self._lock:
            return max(0.0, self._locked_until.get((api_key, endpoint), 0.0) - self._clock())

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rate_limited": sum(self.rate_limited.values()),
                "rate_limited_by_endpoint": dict(self.rate_limited),
                "requests_by_endpoint": dict(self.requests),
            }
