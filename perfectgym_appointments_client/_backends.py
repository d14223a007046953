"""Choosing an HTTP backend by name: httpx (the default, asyncio and trio) or aiohttp (the
``[aiohttp]`` extra, asyncio only), each imported only when asked for."""

from __future__ import annotations

import ssl

from ._constants import DEFAULT_MAX_RESPONSE_BYTES, HTTP_BACKENDS
from ._exceptions import ConfigurationError
from ._http import HTTPBackend, Timeouts

__all__ = ["open_backend"]


def open_backend(
    name: str,
    *,
    http_client: object | None,
    timeouts: Timeouts | None,
    max_connections: int,
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ssl_context: ssl.SSLContext | None = None,
) -> HTTPBackend:
    """The backend called ``name``, sending through ``http_client`` if given (never closing it),
    refusing answers of more than ``max_response_bytes`` decoded bytes (None: any size)."""
    if name not in HTTP_BACKENDS:
        raise ConfigurationError(f"http_backend must be one of {', '.join(HTTP_BACKENDS)}, got {name!r}")
    if name == "aiohttp":
        from ._aiohttp_backend import AiohttpBackend

        return AiohttpBackend(http_client, timeouts, max_connections, max_response_bytes, ssl_context)
    from ._httpx_backend import HttpxBackend

    return HttpxBackend(http_client, timeouts, max_connections, max_response_bytes, ssl_context)
