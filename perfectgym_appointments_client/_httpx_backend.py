"""The default backend: one ``httpx.AsyncClient`` (asyncio and trio)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import cast

import anyio
import httpx

from ._constants import DEFAULT_MAX_RESPONSE_BYTES, KEEPALIVE_EXPIRY
from ._exceptions import ConfigurationError
from ._http import (
    HTTPResponse,
    SendFailure,
    Timeouts,
    Turn,
    attempt_cut_off,
    certificate_rejected,
    describe,
    read_body,
    reads_whole,
    running_asyncio_loop,
    split_origin,
)

__all__ = ["HttpxBackend"]

# Failures that happen before a byte of the request is written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The Content-Encodings decoded here, as zlib's wbits. httpx's own decoders unpack a whole network
# read at once, and 64 KiB of a gzip bomb is 64 MiB; here it is at most _DECODE_STEP at a time.
_ZLIB_WBITS = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
_DECODE_STEP = 1 << 20


class _ZlibDecoder:
    """gzip or deflate, as httpx decodes them (a deflate body without zlib's header is read as
    raw deflate; what follows the end of the stream is ignored), in pieces of bounded size."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._first = encoding == "deflate"
        self._zlib = zlib.decompressobj(_ZLIB_WBITS[encoding])

    def decode(self, data: bytes) -> Iterator[bytes]:
        while not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, _DECODE_STEP)
            except zlib.error as exc:
                if not self._first:
                    raise httpx.DecodingError(f"{self._encoding}: {exc}") from exc
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                piece = b""
            else:
                data = self._zlib.unconsumed_tail
            self._first = False
            if piece:
                yield piece
            # A full step may leave output pending inside zlib even when no input is left.
            if not data and len(piece) < _DECODE_STEP:
                return

    def flush(self) -> bytes:
        try:
            return self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush raises only on a broken state
            raise httpx.DecodingError(f"{self._encoding}: {exc}") from exc


def _closing(chunks: AsyncIterator[bytes]) -> contextlib.aclosing[AsyncGenerator[bytes, None]]:
    # httpx's body iterators are async generators (typed as iterators): closed when left early.
    return contextlib.aclosing(cast("AsyncGenerator[bytes, None]", chunks))


async def _decoded(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body decoded, in pieces of bounded size where the encoding is gzip or deflate."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if response.is_stream_consumed or (encoding != "identity" and encoding not in _ZLIB_WBITS):
        # Read already (a transport that hands over a whole answer, httpx.MockTransport), or an
        # encoding not asked for (_request.py asks for gzip or deflate) that httpx can decode.
        async with _closing(response.aiter_bytes()) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    decoder = None if encoding == "identity" else _ZlibDecoder(encoding)
    async with _closing(response.aiter_raw()) as raw_chunks:
        async for raw in raw_chunks:
            if decoder is None:
                yield raw
            else:
                for piece in decoder.decode(raw):
                    yield piece
    if decoder is not None and (tail := decoder.flush()):
        yield tail


class HttpxBackend:
    name = "httpx"
    # httpx merges a client's headers into each request anyway: every header goes per request.
    default_headers: Mapping[str, str] = {}

    def send_by_default(self, headers: Mapping[str, str]) -> None:
        pass

    def __init__(
        self,
        http_client: object | None,
        timeouts: Timeouts | None,
        max_connections: int,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient for the httpx backend, got {type(http_client).__name__}"
            )
        self._owns_client = http_client is None
        self.max_response_bytes = max_response_bytes
        # A user's client keeps its own settings unless a timeout was asked for.
        self._timeout: httpx.Timeout | None = (
            None
            if timeouts is None
            else httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool
            )
        )
        # Our own httpx client is made on the first request, not here: a service opening a client
        # per studio pays nothing for the ones it does not use, and the TLS context is the
        # process's (_tls.py) unless the caller gave one.
        self._client: httpx.AsyncClient | None = http_client
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        given = http_client.timeout if http_client is not None else httpx.Timeout(None)
        self.attempt_timeout = Timeouts.from_httpx(self._timeout or given).total
        self._read_timeout = (self._timeout or given).read
        self._origins: dict[str, httpx.URL] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client requests go through (made on first use)."""
        if self._client is None:
            from ._tls import shared_ssl_context

            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                verify=self._ssl_context or shared_ssl_context(),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                    keepalive_expiry=KEEPALIVE_EXPIRY,
                ),
            )
        return self._client

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    def _url(self, url: str) -> httpx.URL:
        """``url`` as httpx's URL, its origin parsed once per origin (as a client's ``base_url`` is):
        httpx validates a URL string character by character, and the path and query are all that
        change from request to request. One entry per origin this backend sends to (the studios of
        one pool: ``for_studio``), as aiohttp's proxies are looked up."""
        origin, rest = split_origin(url)
        if not rest.isascii():  # a base URL's own path in other letters: httpx quotes it
            return httpx.URL(url)
        base = self._origins.get(origin)
        if base is None:
            base = self._origins[origin] = httpx.URL(origin)
        return base.copy_with(raw_path=rest.encode("ascii"))

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, turn: Turn | None
    ) -> HTTPResponse:
        if turn is not None and not turn.take_now():
            # Before anything is built: httpcore's pool would queue the request otherwise, and
            # outside the attempt's deadline, as that wait has its own (pool).
            await turn.wait()
        request = self.client.build_request(
            method,
            self._url(url),
            headers=headers,
            content=content,
            timeout=self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            loop = running_asyncio_loop()
            if loop is not None:
                # asyncio's own timeout on asyncio: one timer, a fraction of an anyio cancel scope.
                deadline = asyncio.timeout(self.attempt_timeout)
                try:
                    async with deadline:
                        return await self._exchange(request)
                except TimeoutError:
                    if not deadline.expired():
                        raise
            else:
                with anyio.move_on_after(self.attempt_timeout):
                    return await self._exchange(request)
        except BaseException:
            # The exception keeps the request (exc.request); once sent, its copy of the key is
            # only a way to leak it. (An answered request is dropped with its response.)
            if "X-API-KEY" in request.headers:
                request.headers["X-API-KEY"] = "***"
            raise
        # Only this attempt's own deadline lands here (the block returns or raises otherwise, and
        # any other cancellation goes on up).
        raise attempt_cut_off(self.attempt_timeout)

    async def _exchange(self, request: httpx.Request) -> HTTPResponse:
        try:
            # Never following a redirect, whatever the caller's client says: httpx strips only
            # Authorization when one leaves the origin, and X-API-KEY would go along.
            response = await self.client.send(request, stream=True, follow_redirects=False)
            try:
                # Decoded bytes in pieces: a Content-Encoding bomb is stopped at the limit, not unpacked.
                limit = self.max_response_bytes
                if reads_whole(request.method, response.headers, response.status_code, limit):
                    body = await response.aread()
                else:
                    body = await read_body(_decoded(response), limit=limit, status_code=response.status_code)
            finally:
                # Closing an unfinished answer drops its connection rather than pooling it. Quick
                # (no network wait), and it must happen also when the attempt's deadline cut in.
                # (An answer read whole has closed itself.)
                if not response.is_closed:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
        except httpx.RequestError as exc:
            # TransportError, and what httpx raises past it while reading the answer: a body that
            # its Content-Encoding cannot decode (DecodingError). No usable answer either way.
            raise SendFailure(
                describe(exc),
                timed_out=isinstance(exc, httpx.TimeoutException),
                reached_server=not isinstance(exc, _NOT_SENT),
                certificate_rejected=certificate_rejected(exc),
                no_free_connection=isinstance(exc, httpx.PoolTimeout),
            ) from exc
        return HTTPResponse(response.status_code, response.reason_phrase, response.headers, body)

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
