"""Many studios at once: one uvicorn server (one thread, one event loop) on one port per studio.

The real API gives every studio (tenant) its own host and key; an integrator serves many of them
from one service. ``Studios(n)`` serves ``n`` studios, each a :class:`Studio` with its own base
URL (its own port on 127.0.0.1), key, data, limits, rate limit and faults. A connection goes to
the studio whose port it came in on (the ASGI scope's ``server``); each studio answers only its
own key (another studio's key gets 401).

Each studio costs one listening socket (a file descriptor) and about 60 kB with the default 12
appointments and 20 customers; ``Studios(500)`` starts in about a second. The bound is the
process's open-file limit (``ulimit -n``): the studios' sockets plus one per open connection
must fit under it; past it binding fails with ``EMFILE``, reported as such.
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Final, Literal, Self

import attrs
from starlette.types import ASGIApp, Receive, Scope, Send

from ._app import DAYS_AHEAD, SLICE_SIZE, checked_limit
from ._faults import Faults
from ._limits import DEFAULT_RATE_LIMIT, checked_rate_limit
from ._serving import Served, bind, url
from ._tenant import Tenant

__all__ = ["Studio", "StudioSettings", "Studios"]


class _Inherit(enum.Enum):
    """The type of :data:`INHERIT`: a setting not given, so the ``Studios``' own applies."""

    INHERIT = "the Studios' own"

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT: Final = _Inherit.INHERIT


def _days_ahead(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    checked_limit(attribute.name, value, DAYS_AHEAD)


def _slice_size(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    checked_limit(attribute.name, value, SLICE_SIZE)


def _rate_limit(
    instance: Any, attribute: attrs.Attribute[Any], value: tuple[int, float] | _Inherit | None
) -> None:
    if value is not INHERIT:
        checked_rate_limit(value)


@attrs.frozen
class StudioSettings:
    """How one studio of :class:`Studios` differs from the others (``Studios(settings={i: ...})``).

    * ``max_days_ahead`` (1 to 6) and ``max_slice_size`` (10 to 100): its highest ``daysAhead``
      and ``sliceSize``; past them 400 ``errormessage.validation.max`` naming the parameter in
      ``reference``, with its bound in ``args`` and ``typedArgs`` unless
      ``limits_in_typed_args=False`` (then both are empty, as some tenants answer);
    * ``rate_limit``: its own ``(requests, seconds)`` or ``None`` (not given: the ``Studios``'
      ``rate_limit``);
    * ``faults``: its own :class:`Faults` (``None``: the ``Studios``' ``faults``).
    """

    max_days_ahead: int = attrs.field(default=DAYS_AHEAD[1], validator=_days_ahead)
    max_slice_size: int = attrs.field(default=SLICE_SIZE[1], validator=_slice_size)
    limits_in_typed_args: bool = True
    rate_limit: tuple[int, float] | Literal[_Inherit.INHERIT] | None = attrs.field(
        default=INHERIT, validator=_rate_limit
    )
    faults: Faults | None = None

    @property
    def role(self) -> str:
        """What sets the studio apart, in a few words ("ordinary" when nothing does)."""
        parts = []
        if self.max_days_ahead < DAYS_AHEAD[1]:
            parts.append(f"days-ahead max {self.max_days_ahead}")
        if self.max_slice_size < SLICE_SIZE[1]:
            parts.append(f"slice-size max {self.max_slice_size}")
        if not self.limits_in_typed_args:
            parts.append("no limits in typedArgs")
        faults = self.faults
        if faults is not None and faults.rate_503 == 1.0:
            parts.append("down")
        if faults is not None and faults.latency > 0:
            parts.append("slow")
        if faults is not None and faults.active and faults.rate_503 < 1.0 and faults.latency == 0:
            parts.append("faulty")
        if self.rate_limit is not INHERIT:
            parts.append("rate-limited" if self.rate_limit is not None else "no rate limit")
        return ", ".join(parts) or "ordinary"


class Studio(Tenant):
    """One studio of :class:`Studios`: what a :class:`Sandbox` has, on a port of a shared server.

    ``base_url`` (``http://127.0.0.1:<port>``), ``api_key`` (``"studio-<index>-key"``, refused by
    every other studio), ``read_only_api_key`` (``None``), ``store`` (its own, from ``seed +
    index``), ``faults``, ``fault_counts``, ``rate_limit``, ``rate_limiter``, ``stats`` (also at
    ``GET /_sandbox/stats`` on its port), ``demo_customer_id``, ``max_days_ahead``,
    ``max_slice_size``, ``limits_in_typed_args``, ``write_latency`` and ``on_request``, settable
    where a ``Sandbox``'s are; ``index``, ``name`` ("studio-007"), ``role`` (what sets it apart)
    and ``settings`` (its :class:`StudioSettings`).
    """

    def __init__(
        self,
        index: int,
        *,
        name: str,
        host: str,
        port: int,
        seed: int,
        appointments: int,
        customers: int,
        clock: Callable[[], dt.datetime] | None,
        rate_limit: tuple[int, float] | None,
        faults: Faults | None,
        settings: StudioSettings,
    ) -> None:
        super().__init__(
            seed, api_key=f"studio-{index}-key", read_only_api_key=None,
            faults=settings.faults if settings.faults is not None else faults,
            appointments=appointments, customers=customers, clock=clock,
            rate_limit=rate_limit if settings.rate_limit is INHERIT else settings.rate_limit,
            write_latency=0.0, on_request=None, max_days_ahead=settings.max_days_ahead,
            max_slice_size=settings.max_slice_size, limits_in_typed_args=settings.limits_in_typed_args,
        )  # fmt: skip
        self.index = index
        self.name = name
        self.settings = settings
        self.role = settings.role
        self.host = host
        self._port = port  # asked for (0: a free one), then the one it listens on

    def __repr__(self) -> str:
        return f"Studio({self.name!r}, base_url={self.base_url!r}, role={self.role!r}, api_key='***')"

    @property
    def port(self) -> int:
        """Its port (for ``port=0``, the one chosen once the studios started)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the client's ``base_url`` for this studio."""
        return url("http", self.host, self._port)


class _ByPort:
    """The ASGI app of the shared server: each request to the studio of the port it came in on."""

    def __init__(self, apps: Mapping[int, ASGIApp]) -> None:
        self._apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._apps[scope["server"][1]](scope, receive, send)


class Studios(Served):
    """Many studios served at once, each on its own port of 127.0.0.1 (one server, one thread).

    ``with Studios(3) as studios:`` (or ``async with``) binds a port per studio and serves them from
    a background thread; ``studios[i]`` is a :class:`Studio` (``base_url``, ``api_key``,
    ``store``, ...), ``len(studios)``, iteration and ``studios.base_urls`` as expected.

    * ``seed``: studio ``i`` is seeded ``seed + i``; ``appointments`` and ``customers`` per
      studio (12 and 20: small, so that hundreds of studios start in a second);
    * ``host``, ``port``: where they listen; ``port=0`` a free port each, else ``port`` to
      ``port + count - 1``;
    * ``rate_limit``, ``faults`` and ``clock``: every studio's, as :class:`Sandbox`'s;
    * ``settings``: ``{index: StudioSettings(...)}`` for the studios that differ (their own
      limits, rate limit, faults).

    ``Studios.varied(count)`` (``count`` >= 6) is the showcase mix of :attr:`VARIED_ROLES`.
    """

    VARIED_ROLES: ClassVar[tuple[str, ...]] = (
        "ordinary", "days-ahead max 3", "slice-size max 50", "down", "slow", "rate-limited",
    )  # fmt: skip
    """The roles of the first six studios of :meth:`varied` (the rest are "ordinary")."""
    VARIED_SETTINGS: ClassVar[Mapping[int, StudioSettings]] = {
        1: StudioSettings(max_days_ahead=3),
        2: StudioSettings(max_slice_size=50),
        3: StudioSettings(faults=Faults(rate_503=1.0)),
        4: StudioSettings(faults=Faults(latency=1.0)),
        5: StudioSettings(rate_limit=(60, 60.0)),
    }
    """The settings of :meth:`varied`: studio 0 ordinary; 1 ``daysAhead`` at most 3; 2 ``sliceSize``
    at most 50; 3 down (every request 503); 4 slow (1 s per request); 5 60 requests a minute."""

    _kind = "set of studios"

    def __init__(
        self,
        count: int,
        *,
        seed: int = 42,
        appointments: int = 12,
        customers: int = 20,
        host: str = "127.0.0.1",
        rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        settings: Mapping[int, StudioSettings] | None = None,
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a whole number of studios, at least 1, got {count!r}")
        if not (port == 0 or 1 <= port <= 65536 - count):
            raise ValueError(f"{count} studios from port {port} run past 65535 (port=0: free ports)")
        settings = dict(settings or {})
        stray = sorted(index for index in settings if index not in range(count))
        if stray:
            raise ValueError(f"settings for studios {stray}, but there are only 0 to {count - 1}")
        checked_rate_limit(rate_limit)
        self.host = host
        self.seed = seed
        self._port = port
        width = max(3, len(str(count - 1)))
        self._studios = []
        for index in range(count):
            studio = Studio(
                index, name=f"studio-{index:0{width}d}", host=host, port=port and port + index,
                seed=seed + index, appointments=appointments, customers=customers, clock=clock,
                rate_limit=rate_limit, faults=faults, settings=settings.get(index, StudioSettings()),
            )  # fmt: skip
            self._studios.append(studio)
        self._sockets: list[socket.socket] = []

    @classmethod
    def varied(cls, count: int = 6, **options: Any) -> Self:
        """``count`` (at least 6) studios, the first six in the roles of :attr:`VARIED_ROLES`
        (``settings=`` in ``options`` adds to or replaces theirs); the options are ``Studios``'."""
        if isinstance(count, bool) or not isinstance(count, int) or count < len(cls.VARIED_ROLES):
            raise ValueError(f"the varied mix needs at least {len(cls.VARIED_ROLES)} studios, got {count!r}")
        settings = {**cls.VARIED_SETTINGS, **(options.pop("settings", None) or {})}
        return cls(count, settings=settings, **options)

    def __repr__(self) -> str:
        ports = f"ports {self._port}-{self._port + len(self) - 1}" if self._port else "free ports"
        return f"Studios({len(self)} studios on {self.host}, {ports}, seed={self.seed})"

    def __len__(self) -> int:
        return len(self._studios)

    def __getitem__(self, index: int) -> Studio:
        return self._studios[index]

    def __iter__(self) -> Iterator[Studio]:
        return iter(self._studios)

    @property
    def base_urls(self) -> list[str]:
        """Every studio's base URL, in order."""
        return [studio.base_url for studio in self._studios]

    def _open(self) -> list[socket.socket]:
        try:
            for studio in self._studios:
                port = self._port and self._port + studio.index
                sock = bind(self.host, port)
                self._sockets.append(sock)
                studio._port = sock.getsockname()[1]
        except OSError as exc:
            self._close()
            if exc.errno == errno.EMFILE:
                raise OSError(
                    errno.EMFILE,
                    f"{exc.strerror}: {len(self)} studios need a file descriptor each, besides one per "
                    "connection; raise the limit (ulimit -n) or serve fewer studios",
                ) from exc
            raise
        return list(self._sockets)

    def _close(self) -> None:
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def _served_app(self) -> ASGIApp:
        return _ByPort({studio.port: studio.asgi for studio in self._studios})

    def run_forever(self, *, quiet: bool = False, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in this thread until Ctrl-C (``perfectgym-appointments sandbox --studios N``);
        ``on_ready()`` once every studio accepts connections (``studios[i].port`` is known then)."""
        self._serve_here(quiet=quiet, on_ready=on_ready)
