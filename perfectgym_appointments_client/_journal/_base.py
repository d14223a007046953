"""What a booking journal is: the entries it keeps, the store that keeps them, and the journal the
booking flows talk to, which never lets a failing store fail a booking.

An entry is one booking flow's intent (book, cancel, reschedule: who, what, which instants, which
process, when), written before its request is sent, and then its outcome (the booking id, how it
ended, whether it was reported to ``on_booking_outcome``). A store keeps entries (``_sqlite.py``,
``_redis.py``); its methods are synchronous and run in a worker thread, each bounded by the
journal's timeout. When a store fails, the journal logs one WARNING, the flows go on as without
a journal, and the store is asked again after ``retry_after`` seconds (as the rate limit's Redis).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs

__all__ = [
    "FINISHED_AFTER",
    "MAX_UNWRITTEN",
    "PENDING",
    "Entry",
    "Journal",
    "JournalStore",
    "process_alive",
    "this_process",
]

T = TypeVar("T")

PENDING = "pending"
"""An entry's state while its flow runs (or ran in a process that died before its outcome)."""
# A finished, reported entry is pruned once its slot has ended (a resubmit of a past slot is
# refused by the API anyway) or, for one without a slot (a cancel), this long after it finished:
# the file holds about the bookings of slots still to come, which the studio holds anyway.
FINISHED_AFTER = 30 * 24 * 3600.0
# Outcomes kept in memory while the store fails, to write once it answers again (a few hundred
# bytes each).
MAX_UNWRITTEN = 10_000


@attrs.frozen(kw_only=True)
class Entry:
    """One booking flow as the journal keeps it. ``start``/``end`` are the wire strings the
    request sent (zone included), ``start_ms``/``end_ms`` their instants; times are epoch seconds."""

    id: str
    kind: str  # book, cancel, reschedule
    studio: str  # the base URL: customer and booking ids are a studio's own (never the key)
    process: str
    created_at: float
    updated_at: float
    customer_id: int | None = None
    bookable_appointment_id: int | None = None
    start: str | None = None
    end: str | None = None
    start_ms: int | None = None  # the slot's instants, epoch milliseconds (compared exactly)
    end_ms: int | None = None
    booking_id: int | None = None  # the booking made (book, reschedule) or to cancel (cancel)
    old_booking_id: int | None = None  # reschedule: the booking being moved
    validated: str | None = None  # the ValidationStatus seen just before the request, if any
    state: str = PENDING  # PENDING, or the OutcomeKind value it ended with
    detail: str = ""
    reported: bool = False
    claimed_by: str | None = None
    claimed_until: float | None = None

    @property
    def finished(self) -> bool:
        return self.state != PENDING


class JournalStore(Protocol):
    """Where entries live. Synchronous: each method runs in a worker thread."""

    def add(self, entry: Entry) -> None: ...

    def update(self, entry_id: str, **fields: Any) -> None: ...

    def booked(self, studio: str, customer_id: int, start_ms: int, end_ms: int) -> list[Entry]:
        """The studio's entries that ended with a booking of this customer at these instants,
        newest first."""
        ...

    def about_booking(self, studio: str, booking_id: int) -> list[Entry]:
        """The studio's entries naming this booking (made, moved or canceled), newest first."""
        ...

    def unfinished(self, studio: str) -> list[Entry]:
        """The studio's entries still pending, or finished but not reported, oldest first."""
        ...

    def claim(self, entry_id: str, owner: str, until: float, now: float) -> bool:
        """Atomically take an unfinished or unreported entry for ``owner`` until ``until``,
        unless another owner holds it past ``now``."""
        ...

    def prune(self, now: float, before: float) -> int:
        """Delete finished, reported entries whose slot ended before ``now``, or, without a slot
        (a cancel), that last changed before ``before``; how many."""
        ...

    def close(self) -> None: ...


@functools.cache
def this_process() -> str:
    """``host:pid:started``: which process wrote an entry, told apart from a later process that
    reuses the pid by its start time (clock ticks since boot, from /proc; else the import time)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid()) or int(time.time() * 100)}"


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command may hold spaces and parentheses: the fields after its last ")" are plain.
            fields = stat.read().rpartition(")")[2].split()
        return int(fields[19])  # field 22 of the whole line: starttime
    except (OSError, ValueError, IndexError):
        return None


def process_alive(process: str) -> bool | None:
    """Whether the process that wrote an entry still runs: True/False on this host, None for
    another host's (only age then tells)."""
    host, _, rest = process.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return process == this_process()
    ticks = _start_ticks(pid)
    if ticks is None:
        return False  # no such process (or /proc is not there: then pids cannot be told apart)
    return str(ticks) == started


class Journal:
    """The booking flows' journal over a store: every call in a worker thread, bounded by
    ``timeout``; a failing store logs one WARNING and is left alone for ``retry_after`` seconds,
    the call returning its ``fallback`` (the flow then goes on as without a journal)."""

    def __init__(
        self,
        store: JournalStore,
        *,
        url: str,
        logger: logging.Logger,
        scrub: Callable[[str], str] = str,
        timeout: float = 2.0,
        retry_after: float = 5.0,
        finished_after: float = FINISHED_AFTER,
    ) -> None:
        self.store = store
        self.url = url  # as it may be shown (no password)
        self._logger = logger
        self._scrub = scrub  # a store error's text without the URL's password
        self.timeout = timeout
        self.retry_after = retry_after
        self.finished_after = finished_after
        self._down_until: float | None = None
        self.clock: Callable[[], float] = time.time
        # Outcomes this process reported but could not write (the store was failing): written
        # by the next recover(), and meanwhile not taken for dead flows to resolve and report
        # again. At most MAX_UNWRITTEN, the oldest dropped first (then reported twice at worst).
        self.unwritten: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"Journal({self.url!r})"

    @property
    def available(self) -> bool:
        """Whether the store is being used (False while it is left alone after a failure)."""
        return self._down_until is None or time.monotonic() >= self._down_until

    async def call(self, fallback: T, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``method(*args, **kwargs)`` in a worker thread, or ``fallback`` when the store fails,
        is left alone, or takes longer than ``timeout``."""
        if not self.available:
            return fallback
        import anyio
        import anyio.to_thread

        try:
            with anyio.fail_after(self.timeout):
                # abandon_on_cancel: a store that hangs (a frozen Redis) cannot hold the flow;
                # its thread ends when the store's own socket timeout ends it.
                value: T = await anyio.to_thread.run_sync(
                    functools.partial(method, *args, **kwargs), abandon_on_cancel=True
                )
        except Exception as exc:  # noqa: BLE001 - any failure of the store: the flow goes on
            self._failed(exc)
            return fallback
        if self._down_until is not None:
            self._down_until = None
            self._logger.info("the booking journal (%s) answers again", self.url)
        return value

    def _failed(self, exc: Exception) -> None:
        first = self._down_until is None
        self._down_until = time.monotonic() + self.retry_after
        if first:
            what = (
                "did not answer in time"
                if isinstance(exc, TimeoutError)
                else f"failed ({type(exc).__name__}: {exc})"
            )
            self._logger.warning(
                "the booking journal (%s) %s; booking flows go on without it, and it is asked "
                "again every %.0f s",
                self.url, self._scrub(what), self.retry_after,
            )  # fmt: skip

    async def add(self, entry: Entry) -> bool:
        """Write a new entry; whether the store took it."""
        return await self.call(False, _done, self.store.add, entry)

    async def update(self, entry_id: str, **fields: Any) -> bool:
        """Change an entry's fields; whether the store took it."""
        return await self.call(False, _done, self.store.update, entry_id, **fields)

    async def entries(self, method: Callable[..., list[Entry]], *args: Any) -> list[Entry]:
        """A store query's entries (none while the store fails)."""
        return await self.call(list[Entry](), method, *args)

    def remember_unwritten(self, entry_id: str, fields: dict[str, Any]) -> None:
        self.unwritten[entry_id] = fields
        while len(self.unwritten) > MAX_UNWRITTEN:
            del self.unwritten[next(iter(self.unwritten))]

    async def write_unwritten(self) -> None:
        """Write the outcomes a failing store missed, those it takes now."""
        for entry_id, fields in list(self.unwritten.items()):
            if not await self.update(entry_id, **fields):
                return
            del self.unwritten[entry_id]

    async def close(self) -> None:
        """Close the store (its connection), in a worker thread."""
        await self.call(None, self.store.close)

    def new_entry(self, kind: str, studio: str, **fields: Any) -> Entry:
        now = self.clock()
        return Entry(
            id=uuid.uuid4().hex, kind=kind, studio=studio, process=this_process(), created_at=now,
            updated_at=now, **fields,
        )  # fmt: skip


def _done(method: Callable[..., None], *args: Any, **kwargs: Any) -> bool:
    """``method(...)``, then True: a write the store took (``Journal.call`` falls back to False)."""
    method(*args, **kwargs)
    return True
