"""The app's record of every booking outcome: the client's ``on_booking_outcome`` hook writes each
one to SQLite (stdlib ``sqlite3``).

The hook is the source of truth for what the API did, not the handler's answer: a handler whose
browser went away (or that a shutdown cancelled) never sees how its booking ended, but the
client runs the booking to its end and reports it here (``caller_cancelled``). Outcomes of kind
``unknown`` are the ones to reconcile (list the customer's bookings, then settle the row).

After a crash (a SIGKILL, the OOM killer) the client's booking journal knows what a dead process
sent; ``client.recover()`` at the next start reports those outcomes here too (``recovered``). A
process killed after this hook returned but before the journal wrote the outcome is reported
again then: so a booking id is stored once (a unique index; the second INSERT does nothing).

The write is synchronous, on purpose:

* The hook runs inside the booking flow, on the event loop. A sync hook cannot be interrupted:
  under asyncio a native cancellation (uvicorn cancelling handlers at shutdown) goes through
  anyio's shields, so an ``await anyio.to_thread.run_sync(...)`` inside the hook could be cut
  off and the row lost, exactly for the bookings whose caller is gone.
* One INSERT on a WAL database with ``synchronous=NORMAL`` does not wait for the disk (only
  checkpoints sync): tens of microseconds, less than the JSON parse of the API's answer. A
  store that can block for long (a network database) belongs on a queue drained by a task.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from perfectgym_appointments_client import BookingOutcome, PerfectGymError, format_zoned_datetime

__all__ = ["OutcomeStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS booking_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at REAL NOT NULL,
    pid INTEGER NOT NULL,
    operation TEXT NOT NULL,
    kind TEXT NOT NULL,
    booking_id INTEGER,
    customer_id INTEGER,
    bookable_appointment_id INTEGER,
    start_date_time TEXT,
    end_date_time TEXT,
    canceled_booking_ids TEXT NOT NULL,
    old_booking_id INTEGER,
    caller_cancelled INTEGER NOT NULL,
    error TEXT,
    recovered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS booking_outcomes_customer ON booking_outcomes (customer_id);
"""
# A booking made (or held, or moved to) is one row whatever kind it was reported with (booked, then
# booked again by recover(), or already_booked); a cancel is one row per booking and kind (a
# not_canceled, then canceled by a later call). Outcomes without a booking id are not matched.
_ONCE = """
CREATE UNIQUE INDEX IF NOT EXISTS booking_outcomes_once ON booking_outcomes
    (operation, booking_id, CASE WHEN operation = 'cancel' THEN kind ELSE '' END)
    WHERE booking_id IS NOT NULL;
"""

_COLUMNS = (
    "id, recorded_at, pid, operation, kind, booking_id, customer_id, bookable_appointment_id, "
    "start_date_time, end_date_time, canceled_booking_ids, old_booking_id, caller_cancelled, error, "
    "recovered"
)


class OutcomeStore:
    """``with OutcomeStore(path) as store:``; ``store.record`` is the client's hook.

    One connection, used from the event loop's thread only. Several worker processes may share
    the file: WAL lets readers and one writer work at once, and a writer waits for another at
    most ``busy_timeout``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=2.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(booking_outcomes)")}
            if "recovered" not in columns:  # a store written before the journal
                db.execute("ALTER TABLE booking_outcomes ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0")
            db.executescript(_ONCE)
        except BaseException:
            db.close()
            raise
        self._db = db
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the outcome store is closed")
        return self._db

    def record(self, outcome: BookingOutcome) -> None:
        """The ``on_booking_outcome`` hook (see the module's docstring for why it is sync).

        Idempotent: an outcome of a booking id already stored (``booking_outcomes_once``) is not
        stored again."""
        self._conn().execute(
            "INSERT OR IGNORE INTO booking_outcomes (recorded_at, pid, operation, kind, booking_id, "
            "customer_id, bookable_appointment_id, start_date_time, end_date_time, canceled_booking_ids, "
            "old_booking_id, caller_cancelled, error, recovered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                os.getpid(),
                outcome.operation,
                str(outcome.kind),
                outcome.booking_id,
                outcome.customer_id,
                outcome.bookable_appointment_id,
                _wire(outcome.start_date_time),
                _wire(outcome.end_date_time),
                json.dumps(list(outcome.canceled_booking_ids)),
                outcome.old_booking_id,
                int(outcome.caller_cancelled),
                _error_text(outcome.error),
                int(outcome.recovered),
            ),
        )

    def outcomes(
        self, *, customer_id: int | None = None, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The latest outcomes first, at most ``limit``."""
        where: list[str] = []
        params: list[object] = []
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        cursor = self._conn().execute(
            f"SELECT {_COLUMNS} FROM booking_outcomes {clause}ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments
            (*params, limit),
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["canceled_booking_ids"] = json.loads(row["canceled_booking_ids"])
            row["caller_cancelled"] = bool(row["caller_cancelled"])
            row["recovered"] = bool(row["recovered"])
        return rows


def _wire(value: Any) -> str | None:
    # The API's own string when the value came from it: the row then matches the API's data exactly.
    return None if value is None else format_zoned_datetime(value)


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    # Our exceptions never carry the API key; another library's might hold the request, so only its type.
    return f"{type(error).__name__}: {error}" if isinstance(error, PerfectGymError) else type(error).__name__
