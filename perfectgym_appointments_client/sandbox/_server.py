"""Running the sandbox: uvicorn on 127.0.0.1, in a background thread or in the foreground."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import uvicorn

from ._app import RequestHook, create_app
from ._faults import FaultInjector, Faults
from ._limits import DEFAULT_RATE_LIMIT, RateLimiter
from ._store import Store

__all__ = ["Sandbox", "serve"]


class _Server(uvicorn.Server):
    """uvicorn's server, telling a waiting thread once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class Sandbox:
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
    ) -> None:
        if not api_key or read_only_api_key == "":
            raise ValueError("the sandbox's API keys must not be empty")
        if read_only_api_key == api_key:
            raise ValueError("read_only_api_key must differ from api_key")
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("TLS needs both ssl_certfile and ssl_keyfile")
        self.store = Store(seed, appointments=appointments, customers=customers, clock=clock)
        self.write_latency = write_latency
        self.api_key = api_key
        self.read_only_api_key = read_only_api_key
        self.rate_limiter = RateLimiter(rate_limit)
        self.host = host
        self._port = port
        self._ssl = (ssl_certfile, ssl_keyfile)
        self._app = app = create_app(
            self.store, api_key, read_only_api_key=read_only_api_key, rate_limiter=self.rate_limiter
        )
        self.on_request = on_request
        self._injector = FaultInjector(app, faults or Faults(), extra_stats=self.rate_limiter.stats)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Sandbox(base_url={self.base_url!r}, seed={self.store.seed}, api_key='***')"

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1] if self._socket is not None else self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._ssl[0] else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def faults(self) -> Faults:
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector.faults = faults

    @property
    def on_request(self) -> RequestHook | None:
        hook: RequestHook | None = self._app.state.on_request
        return hook

    @on_request.setter
    def on_request(self, hook: RequestHook | None) -> None:
        if hook is not None and not callable(hook):
            raise TypeError(f"on_request must be a callable or None, got {type(hook).__name__}")
        self._app.state.on_request = hook

    @property
    def fault_counts(self) -> Counter[str]:
        return self._injector.counts

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        return self.rate_limiter.limit

    @rate_limit.setter
    def rate_limit(self, limit: tuple[int, float] | None) -> None:
        self.rate_limiter.limit = limit

    @property
    def write_latency(self) -> float:
        return self.store.write_latency

    @write_latency.setter
    def write_latency(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError(f"write_latency must be >= 0 seconds, got {seconds}")
        self.store.write_latency = seconds

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

    def _config(self, *, quiet: bool) -> uvicorn.Config:
        return uvicorn.Config(
            self._injector,
            http="h11",  # fault injection cuts connections through h11's transport
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            access_log=not quiet,
            log_level="warning" if quiet else "info",
            # Leave the host program's logging alone when embedded (tests, notebooks).
            log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
            timeout_graceful_shutdown=2,
            ssl_certfile=self._ssl[0],
            ssl_keyfile=self._ssl[1],
        )

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # Name the protocol: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP,
        # and with Nagle on, every answer waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock

    # -- background thread -------------------------------------------------------------------
    def start(self) -> Self:
        """Serve from a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("this sandbox is running already")
        self._socket = self._bind()
        self._server = server = _Server(self._config(quiet=True))
        sock = self._socket
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name=f"sandbox:{self.port}", daemon=True
        )
        self._thread.start()
        while not server.ready.wait(0.05):
            if not self._thread.is_alive():
                self._thread = self._server = None
                sock.close()  # the port is free again for whoever tries next
                self._socket = None
                raise RuntimeError("the sandbox server failed to start (see the log above)")
        return self

    def stop(self) -> None:
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join()
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Binding and waiting for the thread block; keep them off the caller's event loop.
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    # -- foreground --------------------------------------------------------------------------
    def run_forever(self, *, quiet: bool = False) -> None:
        """Serve in this thread until Ctrl-C (the ``perfectgym-appointments sandbox`` command)."""
        self._socket = self._bind()
        try:
            uvicorn.Server(self._config(quiet=quiet)).run(sockets=[self._socket])
        finally:
            self._socket.close()


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
