"""Per-call bounds for servers: the longest rate-limit wait a call accepts before it fails fast,
and a deadline for the whole call, retries and waits included.

A web handler that must answer within 2 s cannot wait 30 s for the rate limit, then a lockout,
then retries. ``AppointmentsClient(max_rate_limit_wait=..., deadline=...)`` sets them for every
call, ``client.with_options(...)`` for the calls of one copy (openai-python's pattern). The facade
sets the bound of the call it runs in a context variable; every request of that call (windows
and tasks it starts included, which copy the context) reads it in ``Requester.request``.

A booking or cancel request, once it may be sent, is not bounded by them: the flow runs to its
own end (``_booking/_shield.py`` clears the bound for it), because cutting it off could leave a
member booked and the caller told nothing. What the call does before (validating, waiting for
the validation's turn) is bounded.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar

import anyio
import attrs

__all__ = ["CallBound", "CallOptions", "bounded", "current_bound", "unbounded"]


def _seconds_or_none(instance: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < math.inf):
        raise ValueError(f"{attribute.name} must be seconds >= 0 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class CallOptions:
    """``max_rate_limit_wait``: seconds a call may wait for its rate-limit turn (the client's limiter,
    a lockout after a 429, a server's Retry-After) before it raises :class:`RateLimitError`
    (``reopens_at`` says when the endpoint opens again); None: up to the client's timeout.
    ``deadline``: seconds for the whole call, retries and waits included, past which it raises
    :class:`APITimeoutError`; None: no bound beyond each request's timeout."""

    max_rate_limit_wait: float | None = attrs.field(default=None, validator=_seconds_or_none)
    deadline: float | None = attrs.field(default=None, validator=_seconds_or_none)


@attrs.frozen
class CallBound:
    """The bound of the call running now: ``deadline_at`` on anyio's clock (``anyio.current_time``)."""

    max_rate_limit_wait: float | None
    deadline_at: float | None

    def remaining(self) -> float | None:
        return None if self.deadline_at is None else self.deadline_at - anyio.current_time()


current_bound: ContextVar[CallBound | None] = ContextVar("perfectgym_call_bound", default=None)


# What ``bounded`` returns when there is nothing to bound: most calls, so no generator for them.
_UNBOUNDED_CALL: contextlib.nullcontext[None] = contextlib.nullcontext()


def bounded(options: CallOptions) -> contextlib.AbstractContextManager[None]:
    """Bound the call running inside (unless a call around it is bounded already: one call, one bound)."""
    if (options.max_rate_limit_wait is None and options.deadline is None) or current_bound.get() is not None:
        return _UNBOUNDED_CALL
    return _bound(options)


@contextlib.contextmanager
def _bound(options: CallOptions) -> Iterator[None]:
    deadline_at = None if options.deadline is None else anyio.current_time() + options.deadline
    token = current_bound.set(CallBound(options.max_rate_limit_wait, deadline_at))
    try:
        yield
    finally:
        current_bound.reset(token)


@contextlib.contextmanager
def unbounded() -> Iterator[None]:
    """No call bound inside: a booking flow that may have sent its request runs to its own end."""
    token = current_bound.set(None)
    try:
        yield
    finally:
        current_bound.reset(token)
