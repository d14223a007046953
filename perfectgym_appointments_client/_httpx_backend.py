"""The default backend: one ``httpx.AsyncClient`` (asyncio and trio)."""

from __future__ import annotations

import httpx

from ._constants import KEEPALIVE_EXPIRY
from ._exceptions import ConfigurationError
from ._http import HTTPResponse, SendFailure, Timeouts, describe

__all__ = ["HttpxBackend"]

# Failures that happen before a byte of the request is written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpxBackend:
    name = "httpx"

    def __init__(self, http_client: object | None, timeouts: Timeouts | None, max_connections: int) -> None:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient for the httpx backend, got {type(http_client).__name__}"
            )
        self._owns_client = http_client is None
        # A user's client keeps its own settings unless a timeout was asked for.
        self._timeout: httpx.Timeout | None = (
            None
            if timeouts is None
            else httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool
            )
        )
        self.client = http_client or httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        )

    @property
    def read_timeout(self) -> float | None:
        return (self._timeout or self.client.timeout).read

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> HTTPResponse:
        request = self.client.build_request(
            method,
            url,
            headers=headers,
            content=content,
            timeout=self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        try:
            response = await self.client.send(request)
        except httpx.RequestError as exc:
            # TransportError, and what httpx raises past it while reading the answer: a body that
            # its Content-Encoding cannot decode (DecodingError), a redirect loop of a client that
            # follows redirects. No usable answer either way.
            raise SendFailure(
                describe(exc),
                timed_out=isinstance(exc, httpx.TimeoutException),
                reached_server=not isinstance(exc, _NOT_SENT),
            ) from exc
        finally:
            # The exception keeps the request (exc.request); once sent, its copy of the key is
            # only a way to leak it.
            if "X-API-KEY" in request.headers:
                request.headers["X-API-KEY"] = "***"
        return HTTPResponse(response.status_code, response.reason_phrase, response.headers, response.content)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
