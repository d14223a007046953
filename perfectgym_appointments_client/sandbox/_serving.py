"""Serving the sandbox: uvicorn on sockets bound beforehand, in a background thread or in the
foreground. Shared by ``Sandbox`` (one socket) and ``Studios`` (one socket per studio, one server).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

import anyio.to_thread
import uvicorn
from starlette.types import ASGIApp

__all__ = ["Served", "bind", "url"]


# uvicorn's server logger: the shutdown below logs what uvicorn's own does.
_log = logging.getLogger("uvicorn.error")
# How often the shutdown looks whether the connections have closed (uvicorn looks every 0.1 s).
_POLL = 0.005


class _Server(uvicorn.Server):
    """uvicorn's server, telling a waiting thread (and ``on_ready``) once it accepts connections,
    and stopping at once when asked (``exit``) and nothing is in flight.

    uvicorn looks at ``should_exit`` every 0.1 s and its shutdown sleeps 0.1 s before it looks
    for connections still open, so each stop took 0.2 s even with nothing to wait for; a program
    (or test suite) that starts and stops many sandboxes paid that each time."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_asked: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop, self._exit_asked = asyncio.get_running_loop(), asyncio.Event()
        await super().startup(sockets)
        self.ready.set()
        if self._on_ready is not None:
            self._on_ready()

    def exit(self) -> None:
        """Stop serving, from any thread: as setting ``should_exit``, without waiting for
        uvicorn's next look at it."""
        self.should_exit = True
        loop, asked = self._loop, self._exit_asked
        if loop is not None and asked is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(asked.set)

    async def main_loop(self) -> None:
        # uvicorn's loop (its ticks, and should_exit set by a signal), ended early by exit().
        assert self._exit_asked is not None  # set by startup
        ticks = asyncio.ensure_future(super().main_loop())
        asked = asyncio.ensure_future(self._exit_asked.wait())
        try:
            done, _ = await asyncio.wait({ticks, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ticks, asked):
                task.cancel()
            await asyncio.gather(ticks, asked, return_exceptions=True)
        if ticks in done:
            ticks.result()  # its exception, if it failed

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown (``uvicorn.Server.shutdown``: stop accepting, close the idle
        connections, wait up to ``timeout_graceful_shutdown`` for the others, then cancel what
        still runs), looking every few milliseconds where uvicorn sleeps 0.1 s."""
        _log.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        # uvicorn gives the connections 0.1 s to close before the graceful timeout starts.
        graceful = self.config.timeout_graceful_shutdown
        try:
            await asyncio.wait_for(self._drained(), timeout=None if graceful is None else 0.1 + graceful)
        except TimeoutError:
            _log.error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded", len(self.server_state.tasks)
            )
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        """Until the connections have closed and their tasks ended (or a second Ctrl-C)."""
        state, loop = self.server_state, asyncio.get_running_loop()
        # Where uvicorn sleeps 0.1 s for the idle connections just shut to close: at most that.
        settle = loop.time() + 0.1
        # uvicorn signals no event when a connection closes or a task ends: look, as it does.
        while (state.connections or state.tasks) and loop.time() < settle:  # noqa: ASYNC110
            await asyncio.sleep(_POLL)
        for pending, what in (
            (state.connections, "connections to close"),
            (state.tasks, "background tasks to complete"),
        ):
            if pending and not self.force_exit:
                _log.info("Waiting for %s. (CTRL+C to force quit)", what)
            while pending and not self.force_exit:  # noqa: ASYNC110
                await asyncio.sleep(_POLL)
        for server in self.servers:
            await server.wait_closed()


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port), not yet listening (uvicorn listens)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name the protocol: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP,
    # and with Nagle on, every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url(scheme: str, host: str, port: int) -> str:
    """The base URL of a server on ``host:port`` (an IPv6 address in brackets)."""
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


class Served(abc.ABC):
    """Serving from a background thread (``start``/``stop``, ``with``, ``async with``) or in the
    foreground (``_serve_here``). A subclass binds its sockets (``_open``), closes them
    (``_close``) and says what to serve (``_served_app``)."""

    _kind = "sandbox"  # what the error messages call it
    _ssl: tuple[str | None, str | None] = (None, None)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @abc.abstractmethod
    def _open(self) -> list[socket.socket]:
        """Bind the sockets to serve on (closing any bound already, if one cannot be)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Close the sockets ``_open`` bound."""

    @abc.abstractmethod
    def _served_app(self) -> ASGIApp:
        """The ASGI app to serve (asked once the sockets are bound)."""

    def _config(self, *, quiet: bool) -> uvicorn.Config:
        return uvicorn.Config(
            self._served_app(),
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

    # -- background thread -------------------------------------------------------------------
    def start(self) -> Self:
        """Serve from a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError(f"this {self._kind} is running already")
        sockets = self._open()
        self._server = server = _Server(self._config(quiet=True))
        self._thread = thread = threading.Thread(
            target=lambda: server.run(sockets=sockets),
            name=f"{type(self).__name__.lower()}:{sockets[0].getsockname()[1]}",
            daemon=True,
        )
        thread.start()
        while not server.ready.wait(0.05):
            if not thread.is_alive():
                self._thread = self._server = None
                self._close()  # the ports are free again for whoever tries next
                raise RuntimeError(f"the {self._kind} server failed to start (see the log above)")
        return self

    def stop(self) -> None:
        """Stop serving and free the port(s); a stopped server may be started again."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.exit()
        if thread is not None:
            thread.join()
        self._close()

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
    def _serve_here(self, *, quiet: bool, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in this thread until Ctrl-C; ``on_ready()`` once connections are accepted."""
        sockets = self._open()
        try:
            _Server(self._config(quiet=quiet), on_ready).run(sockets=sockets)
        finally:
            self._close()
