"""The aiohttp backend (``pip install 'perfectgym-appointments-client[aiohttp]'``, asyncio only).

It talks to ``aiohttp.ClientSession`` directly: a fifth of httpx's client CPU per request with
100 tasks, a third from one (benchmarks/RESULTS.md, section 5). The session is made on the first call,
inside the running loop.
"""

from __future__ import annotations

import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import sniffio

from ._constants import DEFAULT_MAX_RESPONSE_BYTES, KEEPALIVE_EXPIRY
from ._exceptions import ConfigurationError
from ._http import (
    HTTPResponse,
    ResponseTooLarge,
    SendFailure,
    Timeouts,
    attempt_cut_off,
    certificate_rejected,
    describe,
    read_answer,
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


class _BoundedConnector(aiohttp.TCPConnector):
    """aiohttp's connector, holding at most ``limit`` sockets, idle (kept-alive) ones included.

    aiohttp counts only connections in use against ``limit``: a client talking to thousands of
    studios (``for_studio``) would keep an idle socket per studio until each expires
    (``keepalive_timeout``). Here, once a released connection makes the ones in use and the idle
    ones more than ``limit``, the oldest idle ones are closed, as httpcore's pool does. This reads
    aiohttp's private pool structures (``_conns``: key -> deque of (protocol, released at),
    oldest first; ``_acquired``: the set in use) and leaves them alone if they are not that shape.
    """

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

    def _proxy(self, origin: str) -> str | None:
        """The proxy for ``scheme://host:port`` as aiohttp's trust_env finds it (HTTP_PROXY,
        HTTPS_PROXY, NO_PROXY, or the system's settings), looked up once per origin: redirects
        are not followed, so the origins are few."""
        if origin in self._proxies:
            return self._proxies[origin]
        parts = urlsplit(origin)
        proxy = urllib.request.getproxies().get(parts.scheme) or None
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
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> HTTPResponse:
        session = self._session or self._open()
        kwargs: dict[str, Any] = {"headers": headers, "data": content, "allow_redirects": False}
        if self._owns_session:
            proxy = self._proxy(split_origin(url)[0])
            if proxy is not None:
                kwargs["proxy"] = proxy
        if self._timeout is not None and not self._owns_session:
            kwargs["timeout"] = self._timeout
        # Raised outside the except clauses, so that nothing of aiohttp's is chained to it: its
        # exceptions (request_info) and its frames' locals (a traceback that shows locals, as
        # Sentry records it) hold the request's headers, key included, in aiohttp's own CIMultiDict.
        failure: SendFailure | None = None
        try:
            async with session.request(method, url, **kwargs) as response:
                try:
                    body = await read_answer(
                        method, response.headers, response.status, self.max_response_bytes,
                        whole=response.read, pieces=lambda: response.content.iter_chunked(_CHUNK),
                    )  # fmt: skip
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
        raise failure

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()
