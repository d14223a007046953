"""The connections a client shares with the studio clients derived from it (``for_studio``),
and the fair share of them each studio gets.

A parent client and its children send through one backend (one connection pool, one TLS
context), so a service serving thousands of studios holds one pool with one total cap instead of
a pool per studio. Closing a child closes nothing here; closing the parent closes the backend
(if the client made it), and every child then sends nothing more.

Under the total cap a slow studio must not take every connection: :class:`FairShare` gives each
studio at most a share of them while others are served (a quarter of the total once more than
one studio uses the pool, or ``max_connections_per_studio``) and hands freed connections to the
waiting studios in turn (round robin), so no studio starves the others. It never awaits unless a
request has to wait, and is the same on asyncio and trio (anyio events).
"""

from __future__ import annotations

from types import TracebackType

import anyio

from ._http import HTTPBackend, SendFailure

__all__ = ["Connections", "FairShare"]


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class FairShare:
    """At most ``total`` requests in flight over one pool, at most a share of them per studio."""

    def __init__(self, total: int, per_studio: int | None) -> None:
        self.total = total
        self.per_studio = per_studio
        self.studios = 1  # how many studio clients use the pool (Connections.join)
        self.in_flight = 0
        self._by_studio: dict[str, int] = {}
        # studio -> its waiters in arrival order; the dict's order is the round robin's.
        self._waiting: dict[str, list[_Waiter]] = {}

    def cap(self) -> int:
        """The most one studio may have in flight: all of them while it is alone on the pool."""
        if self.per_studio is not None:
            return min(self.per_studio, self.total)
        return self.total if self.studios <= 1 else max(1, self.total // 4)

    def slot(self, studio: str, patience: float | None) -> _Slot:
        """``async with share.slot(studio, patience):`` around one request; waiting longer than
        ``patience`` seconds is a :class:`SendFailure` (nothing sent), as a full pool's is."""
        return _Slot(self, studio, patience)

    def _take(self, studio: str) -> None:
        self.in_flight += 1
        self._by_studio[studio] = self._by_studio.get(studio, 0) + 1

    def _free(self, studio: str) -> None:
        self.in_flight -= 1
        left = self._by_studio[studio] - 1
        if left:
            self._by_studio[studio] = left
        else:
            del self._by_studio[studio]
        self._grant()

    def _grant(self) -> None:
        cap = self.cap()
        while self.in_flight < self.total and self._waiting:
            for studio in list(self._waiting):
                if self._by_studio.get(studio, 0) < cap:
                    break
            else:
                return  # every waiting studio has its share already
            queue = self._waiting.pop(studio)
            waiter = queue.pop(0)
            if queue:
                self._waiting[studio] = queue  # to the end of the round
            waiter.granted = True
            self._take(studio)
            waiter.event.set()


class _Slot:
    __slots__ = ("_patience", "_share", "_studio")

    def __init__(self, share: FairShare, studio: str, patience: float | None) -> None:
        self._share, self._studio, self._patience = share, studio, patience

    async def __aenter__(self) -> None:
        share, studio = self._share, self._studio
        if (
            share.in_flight < share.total
            and share._by_studio.get(studio, 0) < share.cap()
            and studio not in share._waiting
        ):
            share._take(studio)
            return
        waiter = _Waiter()
        share._waiting.setdefault(studio, []).append(waiter)
        try:
            with anyio.move_on_after(self._patience):
                await waiter.event.wait()
        except BaseException:
            # Cancelled: a connection granted meanwhile goes to the next in line.
            if waiter.granted:
                share._free(studio)
            else:
                self._withdraw(waiter)
            raise
        if not waiter.granted:
            self._withdraw(waiter)
            raise SendFailure(
                f"no free connection within {self._patience:g} s (the pool's cap is shared by "
                f"{share.studios} studios)",
                timed_out=True,
                reached_server=False,
                no_free_connection=True,
            )

    def _withdraw(self, waiter: _Waiter) -> None:
        queue = self._share._waiting.get(self._studio)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._share._waiting[self._studio]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._share._free(self._studio)


class Connections:
    """A backend and who may use it: the client that made it and the studio clients derived from it."""

    def __init__(self, backend: HTTPBackend, *, owned: bool, share: FairShare | None) -> None:
        self.backend = backend
        # Closed, the connections we made stay closed: a call that was waiting meanwhile sends
        # nothing (and reopens nothing). A caller's own http_client stays theirs, and usable.
        self.owned = owned
        self.closed = False
        self.share = share

    def join(self) -> None:
        """Another studio client sends through this pool."""
        if self.share is not None:
            self.share.studios += 1

    def leave(self) -> None:
        if self.share is not None and self.share.studios > 1:
            self.share.studios -= 1

    async def aclose(self) -> None:
        self.closed = self.owned
        await self.backend.aclose()
