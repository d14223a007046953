"""The aiohttp backend (``pip install 'perfectgym-appointments-client[aiohttp]'``, asyncio only).

It talks to ``aiohttp.ClientSession`` directly: a fifth of httpx's client CPU per request with
100 tasks, a third from one (benchmarks/RESULTS.md, section 5). The session is made on the first call,
inside the running loop.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.request
from collections.abc import Coroutine, Mapping
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import urlsplit

import sniffio

from ._constants import DEFAULT_MAX_RESPONSE_BYTES, KEEPALIVE_EXPIRY
from ._exceptions import ConfigurationError
from ._http import (
    HTTPResponse,
    ResponseTooLarge,
    SendFailure,
    Timeouts,
    Turn,
    attempt_cut_off,
    certificate_rejected,
    describe,
    read_body,
    reads_whole,
    split_origin,
)

try:
    import aiohttp
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ConnectionKey
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test without aiohttp
    raise ConfigurationError(
        "http_backend='aiohttp' needs aiohttp: pip install 'perfectgym-appointments-client[aiohttp]'"
    ) from exc

__all__ = ["AiohttpBackend"]

_ASYNCIO_ONLY = "http_backend='aiohttp' runs on asyncio only; under trio use the default backend (httpx)"
# Failures before a byte of the request is written: no connection (DNS, refused, TLS handshake)
# or none free in time.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
# How much of the body is taken from aiohttp's buffer at a time (its own read buffer's size).
_CHUNK = 2**16
# The sending request's turn on the shared pool (_http.Turn), for _BoundedConnector.connect:
# aiohttp calls it in the task that sends, with no way to hand it anything of ours.
_turn: ContextVar[Turn | None] = ContextVar("perfectgym_appointments_client_turn", default=None)


class _ReadTimer(ResponseHandler):
    """aiohttp's protocol, its read timeout (``sock_read``) kept by one timer per connection.

    aiohttp cancels and arms a timer at every chunk it reads and at every answer's start: a heap
    push on the loop's timer queue each time, which with 100 requests in flight (each with its
    attempt's deadline armed) took 5 µs of every small answer's CPU. Here a chunk only moves the
    deadline; the timer, armed when none is, checks it when it fires and arms again if it moved
    (or does nothing if the answer ended). The stall it reports is aiohttp's own
    (``_on_read_timeout``). The connector uses it only over an aiohttp whose protocol has the
    methods overridden here (_LAZY_READ_TIMER)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._read_deadline: float | None = None

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._read_deadline = None
            return
        self._read_deadline = deadline = self._loop.time() + timeout
        if self._read_timeout_handle is None:
            self._read_timeout_handle = self._loop.call_at(deadline, self._read_timer_fired)

    def _drop_timeout(self) -> None:
        # No cancel: the armed timer finds no deadline when it fires. A closed connection's
        # timer is cancelled (_stop_read_timer), so none outlives its socket.
        self._read_deadline = None

    def _read_timer_fired(self) -> None:
        self._read_timeout_handle = None
        deadline = self._read_deadline
        if deadline is None:
            return
        if self._loop.time() < deadline:  # data came meanwhile (or the loop ran it early)
            self._read_timeout_handle = self._loop.call_at(deadline, self._read_timer_fired)
            return
        self._read_deadline = None
        self._on_read_timeout()

    def _stop_read_timer(self) -> None:
        self._read_deadline = None
        handle, self._read_timeout_handle = self._read_timeout_handle, None
        if handle is not None:
            handle.cancel()

    def close(self) -> None:
        super().close()
        self._stop_read_timer()

    def abort(self) -> None:
        super().abort()
        self._stop_read_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._stop_read_timer()


# What _ReadTimer overrides or calls, as aiohttp 3.9 to 3.14 have it; another aiohttp keeps its own.
_LAZY_READ_TIMER = all(
    callable(getattr(ResponseHandler, name, None))
    for name in (
        "_reschedule_timeout",
        "_drop_timeout",
        "_on_read_timeout",
        "start_timeout",
        "close",
        "abort",
    )
)


class _BoundedConnector(aiohttp.TCPConnector):
    """aiohttp's connector, holding at most ``limit`` sockets, idle (kept-alive) ones included.

    aiohttp counts only connections in use against ``limit``: a client talking to thousands of
    studios (``for_studio``) would keep an idle socket per studio until each expires
    (``keepalive_timeout``). Here, once a released connection makes the ones in use and the idle
    ones more than ``limit``, the oldest idle ones are closed, as httpcore's pool does. This reads
    aiohttp's private pool structures (``_conns``: key -> deque of (protocol, released at),
    oldest first; ``_acquired``: the set in use) and leaves them alone if they are not that shape.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if _LAZY_READ_TIMER and isinstance(getattr(self, "_factory", None), functools.partial):
            self._factory = cast(
                "functools.partial[ResponseHandler]", functools.partial(_ReadTimer, loop=self._loop)
            )

    def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Coroutine[Any, Any, Any]:
        # The request's turn on the shared pool, once aiohttp has built the request (Turn says
        # why here). aiohttp's own limit then never makes it wait: the share's total is that limit.
        # Not a coroutine of its own unless the turn must be waited for (aiohttp awaits what this
        # returns): the common case adds no step to the request's way.
        turn = _turn.get()
        if turn is None or turn.take_now():
            return super().connect(req, traces, timeout)
        return self._connect_in_turn(turn, req, traces, timeout)

    async def _connect_in_turn(self, turn: Turn, req: Any, traces: Any, limits: aiohttp.ClientTimeout) -> Any:
        await turn.wait()
        return await super().connect(req, traces, limits)

    def _release(self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        # On every request's release, so the common case (within the limit) is one sum.
        try:
            idle, in_use, limit = self._conns, self._acquired, self.limit
            count = sum(map(len, idle.values()))
            if not limit or len(in_use) + count <= limit or not isinstance(idle, dict):
                return
        except (AttributeError, TypeError):  # aiohttp's private structures changed shape
            return
        while idle and count > max(limit - len(in_use), 0):
            oldest = min(idle, key=lambda host: idle[host][0][1])
            queue = idle[oldest]
            stale, _ = queue.popleft()
            if not queue:
                del idle[oldest]
            stale.close()
            count -= 1


def _require_asyncio() -> None:
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return  # made outside any loop (a notebook, module level): checked again on the first call
    if library != "asyncio":
        raise ConfigurationError(_ASYNCIO_ONLY)


def _no_silent_repeats(session: aiohttp.ClientSession) -> None:
    """aiohttp sends an idempotent request (GET, DELETE) once more, unasked, when a kept-alive
    connection drops. Repeats are the request layer's to decide: a cancel whose answer was lost is
    read back, not sent again. This is a private switch (the one aiohttp's own test client uses)
    and it is set on a session the user passes too."""
    session._retry_connection = False


class AiohttpBackend:
    name = "aiohttp"

    def __init__(
        self,
        http_client: object | None,
        timeouts: Timeouts | None,
        max_connections: int,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        _require_asyncio()
        if http_client is not None and not isinstance(http_client, aiohttp.ClientSession):
            raise ConfigurationError(
                "http_client must be an aiohttp.ClientSession for the aiohttp backend, "
                f"got {type(http_client).__name__}"
            )
        self._session: aiohttp.ClientSession | None = http_client
        if http_client is not None:
            _no_silent_repeats(http_client)
        self._owns_session = http_client is None
        self._max_connections = max_connections
        # aiohttp makes its default TLS context once per process already; a caller's own replaces it.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self.max_response_bytes = max_response_bytes
        # A session of the user's own, without timeouts asked for, keeps its ClientTimeout, whose
        # total (aiohttp's default: 300 s) bounds an attempt.
        self.attempt_timeout = None if timeouts is None else timeouts.total
        self._proxies: dict[str, str | None] = {}
        self.default_headers: Mapping[str, str] = {}
        self._proxy_settings: dict[str, str] | None = None  # urllib's getproxies(), at the first request
        self._timeout = (
            None
            if timeouts is None
            else aiohttp.ClientTimeout(
                # The attempt's whole exchange, body included: aiohttp's own deadline, kept until
                # the answer is read (one timer, which aiohttp arms anyway; our own would be a
                # second one on every request).
                total=self.attempt_timeout,
                # aiohttp's connect covers waiting for a pooled connection and connecting.
                connect=timeouts.pool,
                sock_connect=timeouts.connect,
                sock_read=timeouts.read,
            )
        )

    def send_by_default(self, headers: Mapping[str, str]) -> None:
        # Only a session this backend makes (not yet made): a caller's own keeps its own defaults.
        if self._owns_session and self._session is None:
            self.default_headers = dict(headers)

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url`` as aiohttp's trust_env finds it (HTTP_PROXY, HTTPS_PROXY,
        NO_PROXY, or the system's settings). The settings are read at the first request, as httpx
        reads them when its client is made; with none (the usual case) that is all. Otherwise the
        proxy is looked up once per origin: redirects are not followed, so the origins are few."""
        settings = self._proxy_settings
        if settings is None:
            settings = self._proxy_settings = urllib.request.getproxies()
        if not settings:
            return None
        origin = split_origin(url)[0]
        if origin in self._proxies:
            return self._proxies[origin]
        parts = urlsplit(origin)
        proxy = settings.get(parts.scheme) or None
        if proxy is not None and parts.hostname and urllib.request.proxy_bypass(parts.hostname):
            proxy = None
        self._proxies[origin] = proxy
        return proxy

    @property
    def read_timeout(self) -> float | None:
        timeout = self._timeout or (self._session.timeout if self._session is not None else None)
        return None if timeout is None else timeout.sock_read

    def _open(self) -> aiohttp.ClientSession:
        _require_asyncio()
        self._session = aiohttp.ClientSession(
            connector=_BoundedConnector(
                limit=self._max_connections, keepalive_timeout=KEEPALIVE_EXPIRY, ssl=self._ssl
            ),
            timeout=self._timeout or aiohttp.ClientTimeout(),
            headers=self.default_headers,
            # Not trust_env: aiohttp then looks for proxies and ~/.netrc in two worker-thread hops
            # on every request (about 400 µs of CPU, benchmarks/RESULTS.md). The proxy settings
            # are read once instead (_proxy), as httpx does.
            trust_env=False,
            raise_for_status=False,
            # aiohttp's own defaults, stated: an answer's head is at most 128 lines of 8 KiB each
            # (httpx's h11 allows 16 KiB for the whole head).
            max_line_size=8190,
            max_field_size=8190,
            max_headers=128,
        )
        _no_silent_repeats(self._session)
        return self._session

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, turn: Turn | None
    ) -> HTTPResponse:
        session = self._session or self._open()
        if turn is not None and not self._owns_session:  # a session of the user's: its own pool
            if not turn.take_now():
                await turn.wait()
            turn = None
        kwargs: dict[str, Any] = {"headers": headers, "data": content, "allow_redirects": False}
        if self._owns_session:
            proxy = self._proxy(url)
            if proxy is not None:
                kwargs["proxy"] = proxy
        if self._timeout is not None and not self._owns_session:
            kwargs["timeout"] = self._timeout
        # Raised outside the except clauses, so that nothing of aiohttp's is chained to it: its
        # exceptions (request_info) and its frames' locals (a traceback that shows locals, as
        # Sentry records it) hold the request's headers, key included, in aiohttp's own CIMultiDict.
        failure: SendFailure | None = None
        entered = _turn.set(turn)
        try:
            async with session.request(method, url, **kwargs) as response:
                try:
                    limit = self.max_response_bytes
                    if reads_whole(method, response.headers, response.status, limit):
                        body = await response.read()
                    else:
                        chunks = response.content.iter_chunked(_CHUNK)
                        body = await read_body(chunks, limit=limit, status_code=response.status)
                except ResponseTooLarge:
                    response.close()  # the rest is unread: the connection goes, not back to the pool
                    raise
                return HTTPResponse(response.status, response.reason or "", response.headers, body)
        except aiohttp.ClientResponseError as exc:
            # A protocol error (bad status line, headers).
            failure = SendFailure(describe(exc), timed_out=False, reached_server=True)
        except aiohttp.ClientError as exc:
            failure = SendFailure(
                describe(exc),
                timed_out=isinstance(exc, TimeoutError),
                reached_server=not isinstance(exc, _NOT_SENT),
                certificate_rejected=isinstance(exc, aiohttp.ClientConnectorCertificateError)
                or certificate_rejected(exc),
            )
        except TimeoutError as exc:
            # Not one of aiohttp's step timeouts (a ClientError each): the attempt's total ran out.
            failure = (
                attempt_cut_off(self.attempt_timeout)
                if self.attempt_timeout is not None
                else SendFailure(describe(exc), timed_out=True, reached_server=True)
            )
        finally:
            _turn.reset(entered)
        raise failure

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()
