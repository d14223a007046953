"""What a backend is: what the request layer needs from an HTTP library.

A backend sends one request and returns the whole answer (:class:`HTTPResponse`), or raises
:class:`SendFailure` saying whether it timed out and whether the request may have reached the
server, or :class:`ResponseTooLarge`. It never follows a redirect (the key would go along to
wherever it points), bounds the answer's decoded size (:func:`read_body`) and one attempt's
whole duration (:attr:`Timeouts.total`). Everything else (the key, retries, typed errors,
parsing) is the request layer's (``_request.py``), so both backends behave the same. The
backends (``_httpx_backend.py``, ``_aiohttp_backend.py``) build on this module; ``_backends.py``
picks one by name.
"""

from __future__ import annotations

import json
import re
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ._constants import READ_TIMEOUTS_PER_ANSWER

if TYPE_CHECKING:
    import asyncio

    import httpx

__all__ = [
    "ClosedMeanwhile",
    "HTTPBackend",
    "HTTPResponse",
    "ResponseTooLarge",
    "SendFailure",
    "Timeouts",
    "Turn",
    "certificate_rejected",
    "describe",
    "read_body",
    "reads_whole",
    "running_asyncio_loop",
    "split_origin",
]


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
    error, no free connection in time): only then is repeating a booking safe.
    ``certificate_rejected``: the server's TLS certificate failed verification, which no retry
    heals. ``no_free_connection``: none of our pool's connections came free in time."""

    def __init__(
        self,
        description: str,
        *,
        timed_out: bool,
        reached_server: bool,
        certificate_rejected: bool = False,
        no_free_connection: bool = False,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.timed_out = timed_out
        self.reached_server = reached_server
        self.certificate_rejected = certificate_rejected
        # Our own pool was full for too long: says nothing of the studio (its circuit breaker
        # does not count it).
        self.no_free_connection = no_free_connection

    def __reduce__(self) -> tuple[Any, ...]:
        # It sits in an APIConnectionError's chain (__context__): a worker that pickles the whole
        # chain must get it back. Exception's own reduce calls cls(description), which the
        # keyword-only flags refuse.
        flags = (self.timed_out, self.reached_server, self.certificate_rejected, self.no_free_connection)
        return _send_failure, (self.description, *flags)


def attempt_cut_off(seconds: float | None) -> SendFailure:
    """The attempt's whole-exchange deadline (``Timeouts.total``) passed: sent, and no whole answer."""
    return SendFailure(
        f"the whole answer did not arrive within {seconds:g} s", timed_out=True, reached_server=True
    )


class ResponseTooLarge(Exception):
    """The answer's body, decoded, holds more than ``limit`` bytes; the rest was not read."""

    def __init__(self, status_code: int, limit: int) -> None:
        super().__init__(f"HTTP {status_code} answer larger than {limit} bytes")
        self.status_code = status_code
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.status_code, self.limit)


def _send_failure(
    description: str,
    timed_out: bool,
    reached_server: bool,
    certificate_rejected: bool,
    no_free_connection: bool,
) -> SendFailure:
    return SendFailure(
        description, timed_out=timed_out, reached_server=reached_server,
        certificate_rejected=certificate_rejected, no_free_connection=no_free_connection,
    )  # fmt: skip


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

    @property
    def total(self) -> float | None:
        """The longest one attempt may take, from waiting for a connection to the answer's last
        byte: each step's own timeout, the read's twice over (the answer's start, then the rest).
        The read timeout bounds each read, not the answer: without this, a server sending a byte
        a second holds a call for as long as it likes. None when a step has no bound."""
        if self.connect is None or self.read is None or self.write is None or self.pool is None:
            return None
        return self.pool + self.connect + self.write + READ_TIMEOUTS_PER_ANSWER * self.read


class _Requester(Protocol):
    @property
    def closed(self) -> bool: ...


class _Share(Protocol):
    """What a turn needs of _connections.FairShare (which is above this module)."""

    def take(self, studio: str) -> bool: ...

    async def wait(self, studio: str, patience: float | None) -> None: ...

    def free(self, studio: str) -> None: ...


class ClosedMeanwhile(Exception):
    """The client was closed while its request waited for a connection: nothing was sent."""


class Turn:
    """One request's claim on its studio's share of the pool, taken by the backend that sends it
    (:meth:`take_now`, :meth:`wait`) and given back by the request layer once the answer is read
    (:meth:`give_back`).

    The backend decides when to wait. aiohttp's connector waits once aiohttp has built its
    request (_aiohttp_backend.py), as aiohttp's own pool makes a request wait: a waiting request
    then holds the objects it will send with. Waiting before the backend built anything, the
    requests a burst of freed connections wakes all build theirs at once, after the finished ones
    freed theirs: that swing in young objects is what sets off CPython's garbage collector, and
    with 100 tasks on 16 connections it ran 20 times as often (4,000 calls: 227 young-generation
    and 2 full collections, 18 µs of each call's CPU; 10 and none with the wait in the connector).
    """

    __slots__ = ("held", "patience", "requester", "share", "studio")

    def __init__(self, share: _Share, studio: str, patience: float | None, requester: _Requester) -> None:
        self.share, self.studio, self.patience, self.requester = share, studio, patience, requester
        self.held = False

    def take_now(self) -> bool:
        """Whether this request holds its turn's connection now (taking it if it is free): no
        await, the common case. Taken once: aiohttp asks again for the same request only to
        replace a connection that failed. False: :meth:`wait` for it."""
        if self.held:
            return True
        if self.share.take(self.studio):
            self.held = True
            return True
        return False

    async def wait(self) -> None:
        """Wait for the connection (after :meth:`take_now` said no): ``FairShare.wait``, a
        :class:`SendFailure` past ``patience``. Raises :class:`ClosedMeanwhile` if the client was
        closed meanwhile."""
        await self.share.wait(self.studio, self.patience)
        self.held = True
        if self.requester.closed:
            raise ClosedMeanwhile

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.share.free(self.studio)


class HTTPBackend(Protocol):
    name: str
    max_response_bytes: int | None
    """The most an answer's body may hold, decoded (None: any size)."""
    attempt_timeout: float | None
    """The longest one attempt may take, answer included (None: only the steps' own timeouts)."""

    default_headers: Mapping[str, str]
    """Headers the backend sends on every request itself: the request layer leaves them out."""

    @property
    def read_timeout(self) -> float | None:
        """How long a call may wait for an answer (None: no bound); also its rate-limit patience."""

    def send_by_default(self, headers: Mapping[str, str]) -> None:
        """Send ``headers`` on every request from now on where the backend can do so itself (then
        they are in :attr:`default_headers`); a backend that cannot leaves them to the caller."""

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, turn: Turn | None
    ) -> HTTPResponse:
        """One attempt. With a ``turn`` (the pool is shared fairly: _connections.py), the backend
        takes it (``turn.take_now() or await turn.wait()``) before the request uses a connection;
        the caller gives it back."""

    async def aclose(self) -> None: ...


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running this task, or None (under trio). Found through ``sys.modules``:
    no asyncio loop runs before asyncio is imported, and importing the client imports no asyncio.
    Where it is asyncio's, asyncio's own timeouts and futures serve the request path: a fraction
    of what anyio's cancel scopes and events cost on every request."""
    module = sys.modules.get("asyncio")
    if module is None:
        return None
    try:
        loop: asyncio.AbstractEventLoop = module.get_running_loop()
    except RuntimeError:
        return None
    return loop


def split_origin(url: str) -> tuple[str, str]:
    """An absolute URL's ``scheme://host[:port]`` and the rest (its path and query; ``/`` at least)."""
    cut = url.find("/", url.find("//") + 2)
    return (url, "/") if cut < 0 else (url[:cut], url[cut:])


def declared_length(method: str, headers: Mapping[str, str]) -> int | None:
    """The body's length as an unencoded answer declares it in its Content-Length (None: not
    declared, or encoded, so that only reading it tells; 0 for an answer to HEAD, which has none)."""
    if method == "HEAD":
        return 0
    encoding = headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() != "identity":
        return None
    declared = headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def reads_whole(method: str, headers: Mapping[str, str], status_code: int, limit: int | None) -> bool:
    """How a backend reads an answer's body within the cap ``limit`` (None: any size).

    Declared over the cap (unencoded, by its Content-Length): :class:`ResponseTooLarge` before a
    byte of it is read. Unencoded and of a declared length within it: True, the backend reads it
    whole (the library reads that many bytes and no more), without a chunk loop. Otherwise
    (encoded, or of no declared length): False, the backend reads it with :func:`read_body`, the
    body decoded a bounded piece at a time, stopped at the cap (a compression bomb, an endless
    stream). On :class:`ResponseTooLarge` the caller closes the connection: the rest is left
    unread. (A decision, not the read itself: no coroutine or callbacks on every request.)
    """
    declared = declared_length(method, headers)
    if declared is None:
        return False
    if limit is not None and declared > limit:
        raise ResponseTooLarge(status_code, limit)
    return True


async def read_body(chunks: AsyncIterator[bytes], *, limit: int | None, status_code: int) -> bytes:
    """The body from its decoded chunks, or :class:`ResponseTooLarge` as soon as they pass
    ``limit`` (so a compression bomb or an endless stream stops there). The caller closes the
    connection: the rest of the answer is left unread."""
    body = bytearray()
    # Closed when left early, as an async generator must be (trio warns of one left to the GC).
    aclose = getattr(chunks, "aclose", None)
    try:
        async for chunk in chunks:
            body += chunk
            if limit is not None and len(body) > limit:
                # Freed now, not when the error is: its traceback keeps this frame, buffer included.
                body.clear()
                raise ResponseTooLarge(status_code, limit)
    finally:
        if aclose is not None:
            await aclose()
    return bytes(body)


def certificate_rejected(exc: BaseException) -> bool:
    """Whether the chain holds a failed certificate verification (an unknown issuer, an expired
    certificate, another host's name): wherever it sits (under trio httpx's ``ConnectError()``
    comes from ``BrokenResourceError()`` from the ``SSLCertVerificationError``)."""
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return False


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
