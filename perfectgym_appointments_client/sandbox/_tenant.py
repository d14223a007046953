"""One studio (tenant) as the sandbox serves it: its data, keys, limits, rate limit and faults.

``Tenant`` is the state behind one base URL, shared by :class:`~._server.Sandbox` (one studio on
its own server) and :class:`~._studios.Studio` (one of many on a shared server): the ``Store``,
the API app over it (``create_app``), the rate limiter and the fault injector around the app,
with the controls a test changes while it runs. It does not listen: ``asgi`` is what a server
serves for it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp

from ._app import DAYS_AHEAD, SLICE_SIZE, RequestHook, checked_limit, create_app
from ._faults import FaultInjector, Faults
from ._limits import RateLimiter
from ._store import Store

__all__ = ["Tenant"]


class Tenant:
    """One studio's state and its API: ``store``, keys, limits, ``rate_limiter`` and faults.

    The options are :class:`~perfectgym_appointments_client.sandbox.Sandbox`'s that are not
    about listening.
    """

    def __init__(
        self,
        seed: int,
        *,
        api_key: str,
        read_only_api_key: str | None,
        faults: Faults | None,
        appointments: int,
        customers: int,
        clock: Callable[[], dt.datetime] | None,
        rate_limit: tuple[int, float] | None,
        write_latency: float,
        on_request: RequestHook | None,
        max_days_ahead: int,
        max_slice_size: int,
        limits_in_typed_args: bool,
    ) -> None:
        if not api_key or read_only_api_key == "":
            raise ValueError("the sandbox's API keys must not be empty")
        if read_only_api_key == api_key:
            raise ValueError("read_only_api_key must differ from api_key")
        self.store = Store(seed, appointments=appointments, customers=customers, clock=clock)
        self.write_latency = write_latency
        self.api_key = api_key
        self.read_only_api_key = read_only_api_key
        self.rate_limiter = RateLimiter(rate_limit)
        self._app = app = create_app(
            self.store, api_key, read_only_api_key=read_only_api_key, rate_limiter=self.rate_limiter,
            max_days_ahead=max_days_ahead, max_slice_size=max_slice_size,
            limits_in_typed_args=limits_in_typed_args,
        )  # fmt: skip
        self.on_request = on_request
        self._injector = FaultInjector(app, faults or Faults(), extra_stats=self.rate_limiter.stats)

    @property
    def asgi(self) -> ASGIApp:
        """What a server serves for this studio: the API inside its fault injection."""
        return self._injector

    @property
    def faults(self) -> Faults:
        """The fault injection (a :class:`Faults`); settable while serving."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector.faults = faults

    @property
    def on_request(self) -> RequestHook | None:
        """``hook(phase, method, path)`` awaited in the server's loop (``None``: none); settable."""
        hook: RequestHook | None = self._app.state.on_request
        return hook

    @on_request.setter
    def on_request(self, hook: RequestHook | None) -> None:
        if hook is not None and not callable(hook):
            raise TypeError(f"on_request must be a callable or None, got {type(hook).__name__}")
        self._app.state.on_request = hook

    @property
    def fault_counts(self) -> Counter[str]:
        """How many faults were injected, by kind."""
        return self._injector.counts

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(requests, seconds)`` per endpoint and key, or ``None``; settable (counting starts afresh)."""
        return self.rate_limiter.limit

    @rate_limit.setter
    def rate_limit(self, limit: tuple[int, float] | None) -> None:
        self.rate_limiter.limit = limit

    @property
    def write_latency(self) -> float:
        """Seconds a cancel holds its booking (a second change meanwhile gets 409); settable."""
        return self.store.write_latency

    @write_latency.setter
    def write_latency(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"write_latency must be >= 0 seconds, got {seconds}")
        self.store.write_latency = seconds

    @property
    def max_days_ahead(self) -> int:
        """The studio's highest ``daysAhead`` (1 to 6; the API's 6 by default); settable."""
        value: int = self._app.state.max_days_ahead
        return value

    @max_days_ahead.setter
    def max_days_ahead(self, value: int) -> None:
        self._app.state.max_days_ahead = checked_limit("max_days_ahead", value, DAYS_AHEAD)

    @property
    def max_slice_size(self) -> int:
        """The studio's highest ``sliceSize`` (10 to 100; the API's 100 by default); settable."""
        value: int = self._app.state.max_slice_size
        return value

    @max_slice_size.setter
    def max_slice_size(self, value: int) -> None:
        self._app.state.max_slice_size = checked_limit("max_slice_size", value, SLICE_SIZE)

    @property
    def limits_in_typed_args(self) -> bool:
        """Whether a ``daysAhead``/``sliceSize`` refusal names its bound in ``args`` and
        ``typedArgs`` (``False``: both empty, as some tenants answer); settable."""
        value: bool = self._app.state.limits_in_typed_args
        return value

    @limits_in_typed_args.setter
    def limits_in_typed_args(self, value: bool) -> None:
        self._app.state.limits_in_typed_args = bool(value)

    @property
    def stats(self) -> dict[str, Any]:
        """What was served so far (also at ``GET /_sandbox/stats``): ``requests``, ``connections``,
        ``faults`` (injected, by kind), ``requests_by_endpoint``, ``rate_limited`` (429s sent by
        the rate limit) and ``rate_limited_by_endpoint``. Endpoints are named like
        ``"GET /v1/appointments/bookable/{bookableAppointmentId}"``."""
        return self._injector.stats()

    @property
    def demo_customer_id(self) -> int:
        """A customer who may book anything: plenty of credits, premium, never idle.

        Always 1210005199, the id the API's docs use."""
        return self.store.customer_with("demo").id
