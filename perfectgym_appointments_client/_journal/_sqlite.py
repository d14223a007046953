"""The journal in a SQLite file (``journal="sqlite:///path/to/bookings.db"``): the stdlib driver,
called from worker threads (``Journal.call``), in WAL mode, so that several worker processes on
one host share one file (readers never wait for a writer; writers wait for each other at most the
journal's timeout, ``busy_timeout``)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import attrs

from ._base import PENDING, Entry

__all__ = ["SQLiteStore"]

_FIELDS = [field.name for field in attrs.fields(Entry)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    studio TEXT NOT NULL,
    process TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    customer_id INTEGER,
    bookable_appointment_id INTEGER,
    start TEXT,
    "end" TEXT,
    start_ms INTEGER,
    end_ms INTEGER,
    booking_id INTEGER,
    old_booking_id INTEGER,
    validated TEXT,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    reported INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS entries_by_slot ON entries (studio, customer_id, start_ms, end_ms);
CREATE INDEX IF NOT EXISTS entries_by_booking ON entries (studio, booking_id);
CREATE INDEX IF NOT EXISTS entries_by_old_booking ON entries (studio, old_booking_id);
CREATE INDEX IF NOT EXISTS entries_unfinished ON entries (studio, reported, state);
"""
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)
# The states that leave the customer holding the entry's booking.
_HOLDING = ("booked", "already_booked", "rescheduled", "both_bookings")


class SQLiteStore:
    """Entries in one SQLite file; one connection, used by one worker thread at a time."""

    def __init__(self, path: str, *, timeout: float) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Opened here, so that a file that cannot be opened (a directory that is not there, not
        # a database, no permission) is refused when the client is made.
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "PRAGMA synchronous=NORMAL"
            )  # durable at each commit in WAL, fsync at checkpoints
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def _run(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, parameters)

    def _entries(self, sql: str, parameters: tuple[Any, ...]) -> list[Entry]:
        with self._lock:
            # The columns and conditions are this module's constants; values are parameters.
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM entries WHERE {sql}", parameters).fetchall()  # noqa: S608
        return [_entry(row) for row in rows]

    def add(self, entry: Entry) -> None:
        values = tuple(getattr(entry, name) for name in _FIELDS)
        self._run(f"INSERT INTO entries ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})", values)  # noqa: S608

    def update(self, entry_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"no such entry fields: {sorted(unknown)}")
        assignments = ", ".join(f'"{name}" = ?' for name in fields)
        # The names are Entry's fields (checked above); values are parameters.
        self._run(f"UPDATE entries SET {assignments} WHERE id = ?", (*fields.values(), entry_id))  # noqa: S608

    def booked(self, studio: str, customer_id: int, start_ms: int, end_ms: int) -> list[Entry]:
        holding = ", ".join("?" * len(_HOLDING))
        return self._entries(
            f"studio = ? AND customer_id = ? AND start_ms = ? AND end_ms = ? AND booking_id IS NOT NULL "
            f"AND state IN ({holding}) ORDER BY updated_at DESC",
            (studio, customer_id, start_ms, end_ms, *_HOLDING),
        )

    def about_booking(self, studio: str, booking_id: int) -> list[Entry]:
        return self._entries(
            "studio = ? AND (booking_id = ? OR old_booking_id = ?) ORDER BY updated_at DESC",
            (studio, booking_id, booking_id),
        )

    def unfinished(self, studio: str) -> list[Entry]:
        return self._entries(
            "studio = ? AND (reported = 0 OR state = ?) ORDER BY created_at", (studio, PENDING)
        )

    def claim(self, entry_id: str, owner: str, until: float, now: float) -> bool:
        # Only while unfinished or unreported: an entry another process has just reported (and
        # released) is not taken again by one that listed it before.
        cursor = self._run(
            "UPDATE entries SET claimed_by = ?, claimed_until = ? WHERE id = ? "
            "AND (reported = 0 OR state = ?) AND (claimed_by IS NULL OR claimed_by = ? OR claimed_until < ?)",
            (owner, until, entry_id, PENDING, owner, now),
        )
        return cursor.rowcount == 1

    def prune(self, now: float, before: float) -> int:
        cursor = self._run(
            "DELETE FROM entries WHERE state != ? AND reported = 1 "
            "AND ((end_ms IS NOT NULL AND end_ms < ?) OR (end_ms IS NULL AND updated_at < ?))",
            (PENDING, int(now * 1000), before),
        )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(row: tuple[Any, ...]) -> Entry:
    values = dict(zip(_FIELDS, row, strict=True))
    values["reported"] = bool(values["reported"])
    return Entry(**values)
