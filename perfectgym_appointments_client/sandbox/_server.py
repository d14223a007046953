"""The sandbox of one studio: uvicorn on 127.0.0.1, in a background thread or in the foreground."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable

from starlette.types import ASGIApp

from ._app import DAYS_AHEAD, SLICE_SIZE, RequestHook
from ._faults import Faults
from ._limits import DEFAULT_RATE_LIMIT
from ._serving import Served, bind, url
from ._tenant import Tenant

__all__ = ["Sandbox", "serve"]


class Sandbox(Tenant, Served):
    """A local, stateful stand-in for the API, served over real sockets.

    ``async with Sandbox() as sb:`` (or ``with``) binds a free port on 127.0.0.1, serves from a
    background thread (its own event loop, so the caller's loop stays free), and gives
    ``sb.base_url`` and ``sb.api_key`` for a client (``https://`` with ``ssl_certfile`` and
    ``ssl_keyfile``: PEM files, e.g. made by trustme, whose CA the client must trust).
    ``sb.store`` is the live state, ``sb.faults`` the fault injection (settable while running),
    ``sb.fault_counts`` what was injected, ``sb.stats`` what was served.

    Options, as strict as a real tenant:

    * ``api_key`` may do everything (scopes BOOKABLE_APPOINTMENTS_READ, APPOINTMENTS_WRITE,
      APPOINTMENTS_READ); ``read_only_api_key`` (``None``: no such key) lacks APPOINTMENTS_WRITE,
      so booking and cancelling with it get 403 ``errormessage.no.privilege``.
    * ``rate_limit=(requests, seconds)``: per endpoint and key, the API's 1,000 per 60 s by
      default; past it that endpoint answers 429 for ``seconds``. ``None`` switches it off;
      ``sb.rate_limit`` may be changed while running, ``sb.rate_limiter`` tells the lockouts.
    * ``write_latency`` seconds a cancel holds its booking (``sb.write_latency``, settable): a
      second cancel of it meanwhile gets 409 ``errormessage.concurrent.modification``.
    * Error messages follow ``Accept-Language``: German for ``de``, ``de-CH``, ``de-LI`` (and
      ``de-*``), English for the API's other languages and for anything else; ``errorCode`` is
      the same in every language.
    * ``max_days_ahead`` (1 to 6) and ``max_slice_size`` (10 to 100): a studio stricter than the
      API's documented bounds (settable): past them 400 ``errormessage.validation.max`` with the
      studio's bound in ``args`` and ``typedArgs``, or with both empty when
      ``limits_in_typed_args=False`` (as some tenants answer).
    * ``on_request`` (``sb.on_request``, settable): ``hook(phase, method, path)``, awaited in the
      server's own event loop (another thread than the caller's): phase ``"received"`` once a
      request passed the key, rate limit and scope checks, before it is handled; ``"committed"``
      once a booking was made or canceled in the store, before the answer is sent. A test holds a
      request there with a ``threading.Event``
      (``await anyio.to_thread.run_sync(release.wait, 10)``), whichever loop the test runs on.
      Requests a fault stops before the API (reset, 429, 503, 409) never reach it.
    """

    def __init__(
        self,
        seed: int = 42,
        *,
        api_key: str = "sandbox-key",
        read_only_api_key: str | None = "sandbox-read-only-key",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        appointments: int = 132,
        customers: int = 60,
        clock: Callable[[], dt.datetime] | None = None,
        rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
        write_latency: float = 0.0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        on_request: RequestHook | None = None,
        max_days_ahead: int = DAYS_AHEAD[1],
        max_slice_size: int = SLICE_SIZE[1],
        limits_in_typed_args: bool = True,
    ) -> None:
        super().__init__(
            seed, api_key=api_key, read_only_api_key=read_only_api_key, faults=faults,
            appointments=appointments, customers=customers, clock=clock, rate_limit=rate_limit,
            write_latency=write_latency, on_request=on_request, max_days_ahead=max_days_ahead,
            max_slice_size=max_slice_size, limits_in_typed_args=limits_in_typed_args,
        )  # fmt: skip
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("TLS needs both ssl_certfile and ssl_keyfile")
        self.host = host
        self._port = port
        self._bound: int | None = None  # the port it last listened on
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Sandbox(base_url={self.base_url!r}, seed={self.store.seed}, api_key='***')"

    @property
    def port(self) -> int:
        """The port it listens on (for ``port=0``, the one chosen once started)."""
        return self._port if self._bound is None else self._bound

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with TLS): the client's ``base_url``."""
        return url("https" if self._ssl[0] else "http", self.host, self.port)

    def _open(self) -> list[socket.socket]:
        self._socket = sock = bind(self.host, self._port)
        self._bound = sock.getsockname()[1]
        return [sock]

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _served_app(self) -> ASGIApp:
        return self.asgi

    # -- foreground --------------------------------------------------------------------------
    def run_forever(self, *, quiet: bool = False) -> None:
        """Serve in this thread until Ctrl-C (the ``perfectgym-appointments sandbox`` command)."""
        self._serve_here(quiet=quiet)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    seed: int = 42,
    api_key: str = "sandbox-key",
    faults: Faults | None = None,
    *,
    appointments: int = 132,
    quiet: bool = False,
    read_only_api_key: str | None = "sandbox-read-only-key",
    rate_limit: tuple[int, float] | None = DEFAULT_RATE_LIMIT,
    write_latency: float = 0.0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """Run a sandbox in the foreground until interrupted (the options are :class:`Sandbox`'s)."""
    sandbox = Sandbox(
        seed, api_key=api_key, read_only_api_key=read_only_api_key, host=host, port=port, faults=faults,
        appointments=appointments, rate_limit=rate_limit, write_latency=write_latency,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
    )  # fmt: skip
    sandbox.run_forever(quiet=quiet)
