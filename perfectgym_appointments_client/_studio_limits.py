"""What a studio has shown it accepts: its own ``daysAhead`` and ``sliceSize`` bounds.

The API documents ``daysAhead`` 1..6 and ``sliceSize`` 10..100, and notes that a studio's
configuration may allow less. Such a studio answers 400 ``errormessage.validation.max`` (or
``.min``) with ``reference`` naming the parameter and, usually, the bound in ``typedArgs``.
:meth:`StudioLimits.learn` reads that answer: the bound from ``typedArgs`` when it holds a usable
whole number, else one step past what was refused (a day fewer; half the page, not under 10;
or more, for a ``.min``). The caller then repeats its request within the new bound, and every
later call to that studio goes there at once.

Only these two parameters of the two reading calls (slot windows, bookable-appointment pages)
are learned: for any other field, and for booking writes, a 400 stays the caller's error.

Process-wide, keyed by base URL (a studio's configuration, whatever key asks), like the circuit
breakers: every client of the process talking to that studio benefits. Only studios that refused
something have an entry (two small numbers each: 10,000 such studios hold well under 2 MB).
Learning is logged once per studio and parameter at INFO.
"""

from __future__ import annotations

import logging
import threading

from ._constants import MAX_DAYS_PER_REQUEST, MAX_SLICE_SIZE, MIN_SLICE_SIZE
from ._exceptions import BadRequestError

__all__ = ["DAYS_AHEAD", "SLICE_SIZE", "StudioLimits", "bounds", "fit", "learn"]

DAYS_AHEAD, SLICE_SIZE = "daysAhead", "sliceSize"
# The documented bounds of each learnable parameter: a learned one never leaves them.
_DOCUMENTED = {DAYS_AHEAD: (1, MAX_DAYS_PER_REQUEST), SLICE_SIZE: (MIN_SLICE_SIZE, MAX_SLICE_SIZE)}


class StudioLimits:
    """One studio's bounds for ``daysAhead`` and ``sliceSize``, as far as it has shown them."""

    __slots__ = ("_bounds", "base_url", "logged")

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._bounds = dict(_DOCUMENTED)
        self.logged: set[str] = set()

    def bounds(self, parameter: str) -> tuple[int, int]:
        """``(lowest, highest)`` the studio accepts for ``parameter``."""
        return self._bounds[parameter]

    def learn(self, error: BadRequestError, parameter: str, asked: int, logger: logging.Logger) -> bool:
        """Whether ``error`` (the answer to a request that sent ``parameter=asked``) is the studio
        refusing that value by its own bound; if so the bound is kept and True returned."""
        kind = (error.error_code or "").rpartition(".")[2]
        if (
            error.reference != parameter
            or not (error.error_code or "").startswith("errormessage.validation.")
            or kind not in ("max", "min")
        ):
            return False
        low, high = self._bounds[parameter]
        floor, ceiling = _DOCUMENTED[parameter]
        stated = _stated_bound(error)
        # A bound the answer states that would not have refused what was asked (a max of 6 for
        # 2 days) says something else is wrong: nothing to learn. Without one, a step.
        if kind == "max":
            if stated is not None:
                bound = stated
            else:
                bound = asked - 1 if parameter == DAYS_AHEAD else max(floor, asked // 2)
            if not floor <= bound < asked:
                return False
            new = (low, min(high, bound))
        else:
            if stated is not None:
                bound = stated
            else:
                bound = asked + 1 if parameter == DAYS_AHEAD else min(ceiling, asked * 2)
            if not asked < bound <= ceiling:
                return False
            new = (max(low, bound), high)
        if new[0] > new[1]:
            return False
        with _lock:
            self._bounds[parameter] = new
            first = parameter not in self.logged
            self.logged.add(parameter)
        if first:
            logger.info(
                "the studio at %s refused %s=%d (%s); asking within %d..%d from now on",
                self.base_url, parameter, asked, error.error_code, new[0], new[1],
            )  # fmt: skip
        return True


def _stated_bound(error: BadRequestError) -> int | None:
    """The bound the answer states: the first whole number in ``typedArgs`` (else in ``args``'
    ``{"max": n}`` / ``{"min": n}`` objects)."""
    for _, value in error.typed_args:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 6:
            return int(value)
    for item in error.error_args:
        if isinstance(item, dict):
            for key in ("max", "min"):
                value = item.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
    return None


_studios: dict[str, StudioLimits] = {}
_lock = threading.Lock()


def bounds(base_url: str, parameter: str) -> tuple[int, int]:
    """``(lowest, highest)`` the studio at ``base_url`` accepts for ``parameter`` as far as known."""
    found = _studios.get(base_url)
    return _DOCUMENTED[parameter] if found is None else found.bounds(parameter)


def fit(base_url: str, parameter: str, wanted: int) -> int:
    """``wanted`` within the studio's bounds."""
    low, high = bounds(base_url, parameter)
    return min(max(wanted, low), high)


def learn(base_url: str, error: BadRequestError, parameter: str, asked: int, logger: logging.Logger) -> bool:
    """:meth:`StudioLimits.learn` for the studio at ``base_url`` (its entry made if need be)."""
    found = _studios.get(base_url)
    if found is None:
        with _lock:
            found = _studios.setdefault(base_url, StudioLimits(base_url))
    return found.learn(error, parameter, asked, logger)
