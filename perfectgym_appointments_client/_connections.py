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

from collections import deque
from typing import TYPE_CHECKING

import anyio

from ._http import HTTPBackend, SendFailure, running_asyncio_loop

if TYPE_CHECKING:
    import asyncio

__all__ = ["Connections", "FairShare"]


class _Waiter:
    """One request waiting for a connection: an asyncio future where the loop is asyncio's (a
    plain future costs a fraction of anyio's event, and with many tasks on few connections most
    requests wait here), an anyio event otherwise."""

    __slots__ = ("deadline", "event", "future", "granted")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.future = loop.create_future() if loop is not None else None
        self.event = anyio.Event() if loop is None else None
        self.granted = False
        self.deadline: float | None = None  # on asyncio: when it stops waiting (loop.time())

    def wake(self) -> None:
        """Granted, or its patience is over (``granted`` says which)."""
        if self.future is not None:
            if not self.future.done():
                self.future.set_result(None)
        else:
            assert self.event is not None
            self.event.set()


class FairShare:
    """At most ``total`` requests in flight over one pool, at most a share of them per studio."""

    def __init__(self, total: int, per_studio: int | None) -> None:
        self.total = total
        self.per_studio = per_studio
        self.studios = 1  # how many studio clients use the pool (Connections.join)
        self.in_flight = 0
        self._by_studio: dict[str, int] = {}
        # studio -> its waiters in arrival order; the dict's order is the round robin's.
        self._waiting: dict[str, deque[_Waiter]] = {}
        # On asyncio, one timer wakes the waiters whose patience is over (_expire).
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_when = 0.0  # when it fires (loop.time())
        self._expiry_loop: asyncio.AbstractEventLoop | None = None

    def cap(self) -> int:
        """The most one studio may have in flight: all of them while it is alone on the pool."""
        if self.per_studio is not None:
            return min(self.per_studio, self.total)
        return self.total if self.studios <= 1 else max(1, self.total // 4)

    def take(self, studio: str) -> bool:
        """Take a connection for ``studio`` now if its share and the total allow it (no await:
        the request path's common case); False: it must :meth:`wait` for one."""
        if self.in_flight < self.total and studio not in self._waiting:
            count = self._by_studio.get(studio, 0)
            if count < self.cap():
                self.in_flight += 1
                self._by_studio[studio] = count + 1
                return True
        return False

    async def wait(self, studio: str, patience: float | None) -> None:
        """Wait for a connection for ``studio`` (after :meth:`take` said no); it is the caller's
        once this returns, to give back with :meth:`free`. Longer than ``patience`` seconds: a
        :class:`SendFailure` (nothing sent)."""
        loop = running_asyncio_loop()
        waiter = _Waiter(loop)
        queue = self._waiting.get(studio)
        if queue is None:  # (not setdefault: that would make a deque on every wait)
            queue = self._waiting[studio] = deque()
        queue.append(waiter)
        try:
            if waiter.future is None:
                assert waiter.event is not None
                with anyio.move_on_after(patience):
                    await waiter.event.wait()
            else:
                assert loop is not None
                if patience is not None:
                    # No timer per waiter: one for the whole share, at the earliest deadline.
                    waiter.deadline = deadline = loop.time() + patience
                    if self._expiry is None or deadline < self._expiry_when or self._expiry_loop is not loop:
                        self._expire_at(loop, deadline)
                await waiter.future
        except BaseException:
            # Cancelled: a connection granted meanwhile goes to the next in line.
            if waiter.granted:
                self.free(studio)
            else:
                self._withdraw(studio, waiter)
            raise
        if not waiter.granted:
            self._withdraw(studio, waiter)
            raise SendFailure(
                f"no free connection within {patience:g} s (the pool's cap is shared by "
                f"{self.studios} studios)",
                timed_out=True,
                reached_server=False,
                no_free_connection=True,
            )

    def _expire_at(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Have the share's one expiry timer fire by ``deadline`` (waiters come in deadline order
        when they share a patience, so it is armed once for the first and fires rarely)."""
        timer = self._expiry
        if timer is not None and self._expiry_loop is loop:
            if self._expiry_when <= deadline:
                return
            timer.cancel()
        self._expiry, self._expiry_loop = loop.call_at(deadline, self._expire, loop), loop
        self._expiry_when = deadline

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the waiters whose patience is over (they raise), and arm for the next deadline."""
        self._expiry = None
        now, earliest = loop.time(), None
        for studio, queue in list(self._waiting.items()):
            for waiter in list(queue):
                if waiter.deadline is None:
                    continue
                if waiter.deadline <= now:
                    queue.remove(waiter)
                    waiter.wake()
                elif earliest is None or waiter.deadline < earliest:
                    earliest = waiter.deadline
            if not queue:
                del self._waiting[studio]
        if earliest is not None:
            self._expire_at(loop, earliest)

    def free(self, studio: str) -> None:
        """Give back a connection taken or waited for; the next waiting studio in turn gets it."""
        self.in_flight -= 1
        left = self._by_studio[studio] - 1
        if left:
            self._by_studio[studio] = left
        else:
            del self._by_studio[studio]
        if self._waiting:
            self._grant()

    def _take(self, studio: str) -> None:
        self.in_flight += 1
        self._by_studio[studio] = self._by_studio.get(studio, 0) + 1

    def _grant(self) -> None:
        cap = self.cap()
        while self.in_flight < self.total and self._waiting:
            for studio in self._waiting:
                if self._by_studio.get(studio, 0) < cap:
                    break
            else:
                return  # every waiting studio has its share already
            queue = self._waiting.pop(studio)
            waiter = queue.popleft()
            if queue:
                self._waiting[studio] = queue  # to the end of the round
            self._take(studio)
            waiter.granted = True
            waiter.wake()

    def _withdraw(self, studio: str, waiter: _Waiter) -> None:
        queue = self._waiting.get(studio)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[studio]


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
