"""Readiness without spending the API's budget: at most one real API call per ``ttl`` seconds,
however many probes ask (a load balancer, Kubernetes, a monitor each probe every few seconds,
and every probe would otherwise be a request counted against the tenant's rate limit)."""

from __future__ import annotations

import time

import anyio
import attrs

from perfectgym_appointments_client import AppointmentsClient, PerfectGymError, RateLimitError

__all__ = ["Readiness", "Verdict"]


@attrs.frozen
class Verdict:
    ready: bool
    reason: str
    checked_at: float
    """``time.time()`` of the API call this verdict comes from."""


class Readiness:
    """``await readiness.verdict()``: the last verdict while it is younger than ``ttl`` seconds,
    else a fresh one from one ``HEAD`` (``check_api_key``). Probes that arrive while it runs wait
    for it instead of sending their own."""

    def __init__(self, client: AppointmentsClient, ttl: float) -> None:
        self._client = client
        self._ttl = ttl
        self._lock = anyio.Lock()
        self._last: Verdict | None = None
        self._fresh_until = -float("inf")  # on the monotonic clock: a wall-clock jump must not matter
        self.api_calls = 0

    async def verdict(self) -> Verdict:
        if time.monotonic() < self._fresh_until and self._last is not None:
            return self._last
        async with self._lock:
            if time.monotonic() < self._fresh_until and self._last is not None:
                return self._last  # another probe asked while this one waited
            self.api_calls += 1
            self._last = await self._ask()
            self._fresh_until = time.monotonic() + self._ttl
            return self._last

    async def _ask(self) -> Verdict:
        now = time.time()
        try:
            accepted = await self._client.check_api_key()
        except RateLimitError:
            # The API answers, our budget is spent: restarting or unrouting this instance would not help.
            return Verdict(True, "API reachable; rate limit spent for now", now)
        except PerfectGymError as exc:
            return Verdict(False, f"API not usable: {type(exc).__name__}", now)
        if not accepted:
            return Verdict(False, "the API refuses the API key", now)
        return Verdict(True, "API reachable, key accepted", now)
