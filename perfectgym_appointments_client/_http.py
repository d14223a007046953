"""What a backend is: what the request layer needs from an HTTP library.

A backend sends one request and returns the whole answer (:class:`HTTPResponse`), or raises
:class:`SendFailure` saying whether it timed out and whether the request may have reached the
server. Everything else (the key, retries, typed errors, parsing) is the request layer's
(``_request.py``), so both backends behave the same. The backends (``_httpx_backend.py``,
``_aiohttp_backend.py``) build on this module; ``_backends.py`` picks one by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPBackend", "HTTPResponse", "SendFailure", "Timeouts", "describe"]


class HTTPResponse(NamedTuple):
    """An answer as received: status, headers (case-insensitive), the whole body.

    Kept on :class:`APIStatusError` as ``response``; it holds nothing of the request (so no key).
    """

    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<HTTPResponse [{self.status_code} {self.reason_phrase}]>"


class SendFailure(Exception):
    """No answer. ``reached_server`` is False only when the request surely was not sent (a connect
    error, no free connection in time): only then is repeating a booking safe."""

    def __init__(self, description: str, *, timed_out: bool, reached_server: bool) -> None:
        super().__init__(description)
        self.description = description
        self.timed_out = timed_out
        self.reached_server = reached_server


class Timeouts:
    """Seconds (None: no limit) for connecting, waiting for a pooled connection, writing, reading."""

    __slots__ = ("connect", "pool", "read", "write")

    def __init__(
        self, *, connect: float | None, read: float | None, write: float | None, pool: float | None
    ) -> None:
        self.connect, self.read, self.write, self.pool = connect, read, write, pool

    @classmethod
    def from_httpx(cls, timeout: httpx.Timeout) -> Timeouts:
        return cls(connect=timeout.connect, read=timeout.read, write=timeout.write, pool=timeout.pool)


class HTTPBackend(Protocol):
    name: str

    @property
    def read_timeout(self) -> float | None:
        """How long a call may wait for an answer (None: no bound); also its rate-limit patience."""

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> HTTPResponse: ...

    async def aclose(self) -> None: ...


_AIOHTTP_CODE = re.compile(r"^\d{3}, message: ")


def describe(exc: BaseException) -> str:
    """``ConnectError: <why>``, the why taken from the first exception in the chain that gives one.

    Some transports raise with an empty message and keep the reason in the cause (under trio a
    failed TLS handshake is httpx's ``ConnectError()`` from ``BrokenResourceError()`` from the
    ``SSLCertVerificationError``).
    """
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            break
        # aiohttp's protocol errors (and the payload errors quoting them) print
        # "400, message:\n  <why>": aiohttp's own code, not the answer's status. The why alone.
        text = _AIOHTTP_CODE.sub("", " ".join(str(current).split()))
        if text:
            inner = "" if current is exc else f"{type(current).__name__}: "
            return f"{type(exc).__name__}: {inner}{text}"
        current = current.__cause__ or current.__context__
    return type(exc).__name__
