"""When to retry, and how long to wait: exponential backoff with full jitter, honouring Retry-After.

The loop itself is ``Requester.request`` (``_request.py``) (one loop for every call). It asks a decision after each
failure: calls that are safe to repeat (reads, validate) use :meth:`RetryPolicy.is_retryable`;
book and cancel pass a decision that checks what the failed request did first (``_booking/``),
because a blind repeat can double-book. The loop is ours rather than tenacity's because that
decision is asynchronous (it asks the API) and may end the call with a value it found.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import anyio
import attrs

from ._constants import DEFAULT_MAX_RETRIES, MAX_RETRIES
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    ConfigurationError,
    RateLimitError,
    ServiceUnavailableError,
)

__all__ = ["RETRY_STATUSES", "Decide", "Resolved", "RetryPolicy", "parse_retry_after"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@attrs.frozen
class Resolved:
    """A decision's verdict that ends the call with ``value`` (no retry, no error)."""

    value: Any


Decide = Callable[[APIError, bool], Awaitable["bool | Resolved"]]
"""After a failure: ``(error, a retry is left) -> retry? | Resolved(value)``."""


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            import email.utils  # only for an HTTP-date, which few servers send

            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


async def _sleep(seconds: float) -> None:
    # anyio.sleep, looked up when a retry first waits: anyio loads its event-loop module lazily.
    await anyio.sleep(seconds)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How :class:`AppointmentsClient` retries calls that are safe to repeat.

    ``max_retries`` extra attempts after the first (0 to 10: each retry of a call to a studio
    that is down costs its caller a wait); the n-th wait (n = 0, 1, ...) is a random
    duration in ``[0, min(backoff_cap, backoff_base * 2**n)]`` ("full jitter"), unless the server
    sent ``Retry-After``: then exactly that, if it is at most ``max_retry_after`` seconds (a longer
    wait is the caller's decision: the error is raised, with its ``retry_after``).
    ``sleep`` and ``random`` exist so tests can use a fake clock.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = attrs.field(default=_sleep, repr=False)
    random: Callable[[], float] = attrs.field(default=random.random, repr=False)

    def __attrs_post_init__(self) -> None:
        # ConfigurationError (a ValueError): a setting, refused when the client is made.
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or not 0 <= self.max_retries <= MAX_RETRIES
        ):
            raise ConfigurationError(
                f"max_retries must be a whole number from 0 to {MAX_RETRIES}, got {self.max_retries!r}"
            )
        for name in ("backoff_base", "backoff_cap", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
                raise ConfigurationError(f"{name} must be seconds from 0 to 3600, got {value!r}")

    def backoff(self, retry_number: int) -> float:
        """Full-jitter wait before retry ``retry_number`` (0 for the first retry)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2.0**retry_number))
        return self.random() * ceiling

    def delay(self, exc: BaseException, retry_number: int) -> float:
        """The wait before retry ``retry_number``: the server's ``Retry-After`` if it sent one, else backoff."""
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, (RateLimitError, ServiceUnavailableError)) and retry_after is not None:
            return float(retry_after)
        return self.backoff(retry_number)

    def is_retryable(self, exc: BaseException) -> bool:
        """For calls that are safe to repeat: 429/502/503/504 and failures to get an answer, but
        not a TLS certificate that failed verification (``certificate_rejected``): no retry heals
        it. The booking flows ask this too for requests that never arrived."""
        if isinstance(exc, APIStatusError):
            if exc.status_code not in RETRY_STATUSES:
                return False
            retry_after = getattr(exc, "retry_after", None)
            return retry_after is None or retry_after <= self.max_retry_after
        return isinstance(exc, APIConnectionError) and not getattr(exc, "certificate_rejected", False)
