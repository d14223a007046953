"""A loopback HTTP/1.1 server for tests and benchmarks: it reads each request over a real socket on
127.0.0.1 and writes back exactly the bytes its handler gives (no Date, no Server header of its own),
or nothing at all. On anyio, so it serves under asyncio and trio alike.

``async with LoopbackServer(handler) as server``: ``server.url`` to connect to, ``server.requests``
as they arrived. An answer may go on after its first bytes (``Answer.more``: an endless stream,
a trickle) and the server may speak TLS (``ssl_context``). Its users: ``tests/test_backends.py``
(failure shapes scripted byte for byte), ``tests/test_hostile_server.py`` and
``benchmarks/hostile.py`` (answers that never end, or end too big), ``tests/fakeapi.py`` (the
fake API for aiohttp, which has no mock transport) and ``benchmarks/bad_input.py`` (the sweep's
malformed answers on aiohttp).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import httpx
from anyio.streams.tls import TLSListener


@dataclasses.dataclass
class Request:
    """One request as it arrived at the server."""

    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclasses.dataclass(frozen=True)
class Answer:
    """Bytes to write back (none: no answer), then those ``more`` makes (called afresh for each
    answer; it may sleep between pieces, or never end: the server writes until the client goes),
    and whether to close the connection after them."""

    data: bytes = b""
    close: bool = False
    more: Callable[[], AsyncGenerator[bytes, None]] | None = None


CUT = Answer(close=True)  # read the request, then close without a word

Handler = Callable[[Request], Awaitable[Answer]]


def response_bytes(
    status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *, reason: str | None = None
) -> bytes:
    """An HTTP/1.1 response as it goes on the wire: the status line (the status's own reason
    phrase unless ``reason``), ``headers`` in their order and as given (framing included), the body."""
    lines = [f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status) if reason is None else reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def reply(
    status: int = 200, body: Any = None, *, reason: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """A whole answer: ``body`` as bytes, or as JSON (with its Content-Type), with its Content-Length."""
    content = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    framed = [("Content-Length", str(len(content)))]
    if body is not None and not isinstance(body, bytes):
        framed.append(("Content-Type", "application/json"))
    framed += list((headers or {}).items())
    return Answer(response_bytes(status, framed, content, reason=reason))


def always(answer: Answer) -> Handler:
    async def handler(request: Request) -> Answer:
        return answer

    return handler


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (a free port, or the bound and listening ``sock``) while
    ``async with`` lasts; each connection is kept alive for as many requests as the client sends.

    A request the server cannot read (a chunked body, a header sent twice) or one whose handler
    raises gets its connection cut, and the exception goes to ``on_error``; without one, leaving
    ``async with`` raises it (so a test whose handler asserted fails, whatever the client made of
    the cut).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        sock: socket.socket | None = None,
        on_error: Callable[[Exception], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.errors: list[Exception] = []
        self.port = 0
        self._sock = sock
        self._ssl_context = ssl_context
        self._on_error = on_error if on_error is not None else self.errors.append
        self._stack: AsyncExitStack | None = None

    @property
    def url(self) -> str:
        return f"{'http' if self._ssl_context is None else 'https'}://127.0.0.1:{self.port}"

    def count(self, method: str, path: str | None = None) -> int:
        return sum(1 for r in self.requests if r.method == method and (path is None or r.path == path))

    async def __aenter__(self) -> Self:
        self.arrived = anyio.Event()  # set when the first request has been read
        listener: anyio.abc.Listener[Any]
        if self._sock is None:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        else:
            listener = await anyio.abc.SocketListener.from_socket(self._sock)
        self.port = listener.extra_attributes[anyio.abc.SocketAttribute.local_port]()
        if self._ssl_context is not None:
            # A handshake the client gives up on ends that connection, not the server.
            listener = TLSListener(listener, self._ssl_context, standard_compatible=False)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(listener)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)  # runs first: ends every connection still open
            tg.start_soon(listener.serve, self._connection)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        await stack.aclose()
        if self.errors and exc is None:
            if len(self.errors) == 1:
                raise self.errors[0]
            raise ExceptionGroup("the loopback server's handler failed", self.errors)

    async def _connection(self, stream: anyio.abc.ByteStream) -> None:
        async with stream:
            buffer = b""
            try:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    try:
                        request, length = self._read_head(head)
                    except ValueError as exc:
                        self._on_error(exc)
                        return  # cut: the client gets no answer
                    while len(buffer) < length:
                        buffer += await stream.receive()
                    request.body, buffer = buffer[:length], buffer[length:]
                    self.requests.append(request)
                    self.arrived.set()
                    try:
                        answer = await self.handler(request)
                    except Exception as exc:  # noqa: BLE001 - what it means is on_error's to say
                        self._on_error(exc)
                        return
                    if answer.data:
                        await stream.send(answer.data)
                    if answer.more is not None:
                        async with contextlib.aclosing(answer.more()) as pieces:  # also when the client goes
                            async for piece in pieces:
                                await stream.send(piece)
                    if answer.close:
                        return
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return  # the client went away

    @staticmethod
    def _read_head(head: bytes) -> tuple[Request, int]:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() in headers:
                raise ValueError(f"{request_line}: header {name} sent twice")
            headers[name.lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise ValueError(f"{request_line}: a body the client did not size (the server reads no chunks)")
        return Request(method, target, headers, b""), int(headers.get("content-length", "0"))
