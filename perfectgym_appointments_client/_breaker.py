"""A studio that is down stays alone: a circuit breaker per studio (base URL), on by default.

One service serves many studios, each on its own host. When one of them is down, every call to
it would otherwise spend its whole retry schedule (attempts, backoff) before failing, while its
members wait. Here consecutive failures that say "the studio is down" open its breaker:
connection failures and timeouts (no answer) and 5xx answers. Any other answer (2xx, any 4xx, a
429 included, which the throttle handles) says the studio is up and resets the count. Open, its
calls fail at once with :class:`CircuitOpenError` (nothing sent, no retry spent). After
``cooldown`` seconds one call is let through as a probe ("half-open"); its answer closes the
breaker, its failure opens it for another cooldown. A call already retrying when the breaker
opens stops retrying.

The state is process-wide, keyed by base URL and settings, like the rate limit's in-process
budget: every client of the process talking to that studio (the obvious per-request clients,
``for_studio`` children) sees the same state. Only studios that failed recently have an entry
(a success in the closed state removes it), so the map holds at most the studios that are
failing now.

Our own small room rather than a library's: pybreaker's async support is Tornado's, circuitbreaker
lets every call through when half-open and counts whatever exception types it is given, and
purgatory's async breaker awaits its own message bus on every call and lets every call through when
half-open too. None gives one probe at a time, and none works with trio. This one never awaits: its
state changes between two awaits of the request loop, so it is the same on asyncio and trio.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs

from ._constants import DEFAULT_BREAKER_COOLDOWN, DEFAULT_BREAKER_FAILURES, MAX_BREAKER_COOLDOWN
from ._exceptions import APIConnectionError, APIError, APIStatusError, CircuitOpenError

if TYPE_CHECKING:
    from ._telemetry import Instruments

__all__ = ["Breaker", "CircuitBreaker", "evidence_reads"]


def _threshold(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"failure_threshold must be a whole number >= 1, got {value!r}")


def _cooldown(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_BREAKER_COOLDOWN
    ):
        raise ValueError(
            f"cooldown must be seconds, more than 0 and at most {MAX_BREAKER_COOLDOWN:g}, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class CircuitBreaker:
    """When a studio counts as down, and for how long its calls then fail at once.

    ``failure_threshold`` consecutive attempts that got no answer or a 5xx open the studio's
    breaker; its calls then raise :class:`CircuitOpenError` at once for ``cooldown`` seconds (at
    most 30), after which one call is let through as a probe. ``AppointmentsClient(circuit_breaker=None)``
    switches it off.
    """

    failure_threshold: int = attrs.field(default=DEFAULT_BREAKER_FAILURES, validator=_threshold)
    cooldown: float = attrs.field(default=DEFAULT_BREAKER_COOLDOWN, validator=_cooldown)


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class _State:
    __slots__ = ("failures", "last_failure", "open_until", "probing", "state")

    def __init__(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self.open_until = 0.0  # monotonic
        self.probing = False
        self.last_failure = ""


# Set while a booking flow gathers evidence (did a request whose answer was lost book?): those
# reads go out even when the breaker is open, since their answer decides whether a member is
# booked twice or told "unknown"; they are few and bounded by the check's own rounds.
_evidence: ContextVar[bool] = ContextVar("_evidence", default=False)


@contextlib.contextmanager
def evidence_reads() -> Iterator[None]:
    """Within: requests pass an open breaker (their outcomes still count)."""
    token = _evidence.set(True)
    try:
        yield
    finally:
        _evidence.reset(token)


# Process-wide: (base URL, threshold, cooldown) -> state, only for studios failing now. The
# settings' values, not the attrs object, in the key: looked up on every request, and a tuple of
# str, int and float hashes in C.
_states: dict[tuple[str, int, float], _State] = {}
# The same dict, for the request path: while it is empty (no studio failed lately) a request asks
# no breaker anything.
failing_studios = _states
_lock = threading.Lock()


def is_down(exc: BaseException) -> bool:
    """Whether a failed attempt says the studio is down: no answer (but not a certificate that
    failed verification, which is ours to fix, nor a full pool of our own), or a 5xx."""
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500
    return (
        isinstance(exc, APIConnectionError)
        and not exc.certificate_rejected
        and not exc.no_free_connection
        and not isinstance(exc, CircuitOpenError)
    )


class Breaker:
    """One client's view of its studio's breaker (``Requester.breaker``)."""

    def __init__(self, settings: CircuitBreaker, *, base_url: str, host: str, logger: logging.Logger) -> None:
        self.settings = settings
        self._key = (base_url, settings.failure_threshold, settings.cooldown)
        self.host = host
        self._logger = logger
        # Monotonic seconds; tests set a clock they drive.
        self.clock: Callable[[], float] = time.monotonic
        self.telemetry: Instruments | None = None

    @property
    def tracking(self) -> bool:
        """Whether the studio has a state (it failed lately): a plain answer of a studio without
        one changes nothing, so the request path records it only when this says so."""
        return self._key in _states

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (a probe may go, or is on its way)."""
        found = _states.get(self._key)
        if found is None:
            return CLOSED
        if found.state == OPEN and self.clock() >= found.open_until:
            return HALF_OPEN
        return found.state

    def admit(self, name: str, method: str, path: str) -> bool:
        """Before an attempt: True if it is the probe of a half-open breaker, False if it may go
        as usual; :class:`CircuitOpenError` if the studio's calls fail at once now."""
        found = _states.get(self._key)
        if found is None or found.state == CLOSED or _evidence.get():
            return False
        with _lock:
            now = self.clock()
            if found.state == OPEN and now >= found.open_until and not found.probing:
                found.state = HALF_OPEN
                found.probing = True
                self._changed(HALF_OPEN)
                return True
            if found.state == CLOSED:  # closed meanwhile by another thread's probe
                return False
            retry_in = max(found.open_until - now, 0.0)
        raise self._open_error(name, method, path, found, retry_in)

    def record(self, exc: BaseException | None, *, probe: bool) -> None:
        """After an attempt: ``exc`` None (an answer came) or the attempt's error."""
        if exc is not None and is_down(exc):
            self._failed(exc, probe=probe)
        elif exc is None or (isinstance(exc, APIError) and not isinstance(exc, APIConnectionError)):
            self._answered(probe=probe)  # an answer: a 4xx, or one we could not read
        else:
            # No answer, but nothing the studio did (a certificate we refuse, our own full pool):
            # neither failure nor answer.
            self.release(probe=probe)

    def release(self, *, probe: bool) -> None:
        """The probe ended without a verdict (cancelled, not sent): the next call probes instead."""
        if not probe:
            return
        found = _states.get(self._key)
        if found is not None:
            with _lock:
                found.probing = False
                if found.state == HALF_OPEN:
                    found.state = OPEN

    def blocks_retry(self) -> bool:
        """Whether a call that just failed should stop retrying: its studio's breaker is open."""
        found = _states.get(self._key)
        return found is not None and found.state != CLOSED and not _evidence.get()

    # -- transitions --------------------------------------------------------------------------
    def _answered(self, *, probe: bool) -> None:
        found = _states.get(self._key)
        if found is None:
            return
        with _lock:
            was = found.state
            # An answer to a request sent before the breaker opened proves little: only the
            # probe closes an open breaker.
            if was != CLOSED and not probe:
                return
            _states.pop(self._key, None)
        if was != CLOSED:
            self._logger.info("the studio at %s answers again; its calls go through again", self.host)
            self._changed(CLOSED)

    def _failed(self, exc: BaseException, *, probe: bool) -> None:
        with _lock:
            found = _states.setdefault(self._key, _State())
            found.failures += 1
            found.last_failure = _short(exc)
            opens = (found.state == CLOSED and found.failures >= self.settings.failure_threshold) or (
                probe and found.state == HALF_OPEN
            )
            if not opens:
                return
            was = found.state
            found.state = OPEN
            found.probing = False
            found.open_until = self.clock() + self.settings.cooldown
        if was == CLOSED:
            self._logger.warning(
                "the studio at %s failed %d times in a row (last: %s); its calls fail at once for "
                "%g s, then one is let through to see whether it is back",
                self.host, found.failures, found.last_failure, self.settings.cooldown,
            )  # fmt: skip
        else:
            self._logger.info(
                "the studio at %s is still failing (%s); trying again in %g s",
                self.host, found.last_failure, self.settings.cooldown,
            )  # fmt: skip
        self._changed(OPEN)

    def _changed(self, state: str) -> None:
        if self.telemetry is not None:
            self.telemetry.breaker_changed(state)

    def _open_error(
        self, name: str, method: str, path: str, found: _State, retry_in: float
    ) -> CircuitOpenError:
        retry_at = time.time() + retry_in
        why = "a probe is on its way" if found.state == HALF_OPEN else f"next try in {retry_in:.1f} s"
        error = CircuitOpenError(
            f"{name} ({method} {self.host}{path}) not sent: the studio at {self.host} is failing "
            f"({found.failures} failures in a row, last: {found.last_failure}); its circuit "
            f"breaker is open, {why}",
            operation=name,
            method=method,
            path=path,
        )
        error.host = self.host
        error.may_have_reached_server = False
        error.retry_in = retry_in
        error.retry_at = retry_at
        return error


def _short(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
