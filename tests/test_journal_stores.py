"""The booking journal's stores, SQLite and Redis, hold the same semantics (``JournalStore``'s
docstrings): each test runs on both, against a real SQLite file and a real redis-server. Then how a
journal is opened (what is refused, as a ConfigurationError) and how ``Journal`` degrades when its
store fails (a locked SQLite file, a Redis stopped or frozen mid-use): the fallback, one WARNING,
never a raw sqlite3/redis error, and the store used again once it answers.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from benchmarks.redis_process import PASSWORD, RedisProcess
from perfectgym_appointments_client._exceptions import ConfigurationError
from perfectgym_appointments_client._journal import (
    FINISHED_AFTER,
    PENDING,
    Entry,
    JournalStore,
    open_journal,
)
from perfectgym_appointments_client._journal._sqlite import SQLiteStore

STUDIO = "https://studio-a.perfectgym.example/api"
OTHER_STUDIO = "https://studio-b.perfectgym.example/api"
LOGGER = "tests.journal"
NOW = time.time()
HOUR_MS = 3600 * 1000
NOW_MS = int(NOW * 1000)

# Makes another store object on the same journal, as a second process would open it.
StoreFactory = Callable[[], JournalStore]


@pytest.fixture(params=["sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[JournalStore] = []

    if request.param == "sqlite":
        path = str(tmp_path / "journal.db")

        def make() -> JournalStore:
            opened.append(SQLiteStore(path, timeout=2.0))
            return opened[-1]

    else:
        from perfectgym_appointments_client._journal._redis import RedisStore

        url = request.getfixturevalue("redis_url")
        prefix = f"tests/journal/{uuid.uuid4().hex}/"  # the session's server: this test's own keys

        def make() -> JournalStore:
            opened.append(RedisStore(url, timeout=2.0, prefix=prefix))
            return opened[-1]

    try:
        yield make
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(stores: StoreFactory) -> JournalStore:
    return stores()


def entry(**fields: Any) -> Entry:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex, "kind": "book", "studio": STUDIO, "process": "host:1:2",
        "created_at": NOW, "updated_at": NOW, "customer_id": 11, "bookable_appointment_id": 22,
        "start": "2030-01-01T10:00:00+01:00", "end": "2030-01-01T11:00:00+01:00",
        "start_ms": NOW_MS + HOUR_MS, "end_ms": NOW_MS + 2 * HOUR_MS,
    }  # fmt: skip
    values.update(fields)
    return Entry(**values)


def ids(entries: list[Entry]) -> list[str]:
    return [e.id for e in entries]


def slot(e: Entry) -> tuple[int, int, int]:
    assert e.customer_id is not None
    assert e.start_ms is not None
    assert e.end_ms is not None
    return e.customer_id, e.start_ms, e.end_ms


# -- the stores' semantics, on both


def test_values_round_trip_exactly(store: JournalStore) -> None:
    full = entry(
        kind="reschedule", process="wörker-01:4242:987654321", created_at=NOW + 0.1 + 0.2,
        updated_at=1.0000000000000002e9, customer_id=2**62, bookable_appointment_id=-7,
        start="2030-01-01T10:00:00.123+05:45", end="2030-01-01T10:00:00.124+05:45",
        start_ms=2**53 + 1, end_ms=2**53 + 3, booking_id=0, old_booking_id=9_007_199_254_740_993,
        validated="AVAILABLE", state="booked", detail='a "detail"\nwith ünïcode, \\ and ;--',
        reported=False, claimed_by="owner:1", claimed_until=NOW + 1 / 3,
    )  # fmt: skip
    bare = Entry(
        id=uuid.uuid4().hex, kind="cancel", studio=STUDIO, process="p", created_at=NOW + 1, updated_at=NOW + 1
    )
    store.add(full)
    store.add(bare)
    assert store.unfinished(STUDIO) == [full, bare]  # equal field by field: types and values
    read = store.unfinished(STUDIO)[0]
    assert read.created_at.hex() == full.created_at.hex()
    assert type(read.reported) is bool
    assert type(read.customer_id) is int
    assert type(read.updated_at) is float


def test_add_refuses_an_id_it_holds(store: JournalStore) -> None:
    first = entry()
    store.add(first)
    with pytest.raises((sqlite3.IntegrityError, ValueError)):
        store.add(entry(id=first.id, customer_id=99))
    assert store.unfinished(STUDIO) == [first]


def test_update(store: JournalStore) -> None:
    e = entry(claimed_by="me", claimed_until=NOW + 5)
    store.add(e)
    store.update(e.id, state="booked", booking_id=501, detail="made", claimed_by=None, claimed_until=None)
    expected = attrs.evolve(
        e, state="booked", booking_id=501, detail="made", claimed_by=None, claimed_until=None
    )
    assert store.unfinished(STUDIO) == [expected]
    store.update(e.id, booking_id=None)
    assert store.unfinished(STUDIO) == [attrs.evolve(expected, booking_id=None)]
    with pytest.raises(ValueError, match="no such entry fields"):
        store.update(e.id, colour="red")
    store.update("no-such-entry", state="booked")  # nothing to update: no error, nothing made
    assert ids(store.unfinished(STUDIO)) == [e.id]


def test_booked(store: JournalStore) -> None:
    made = entry(state="booked", booking_id=1, updated_at=NOW + 1)
    again = entry(state="already_booked", booking_id=1, updated_at=NOW + 3, reported=True)
    moved_here = entry(
        kind="reschedule", state="rescheduled", booking_id=2, old_booking_id=1, updated_at=NOW + 2
    )
    for e in [
        made, again, moved_here,
        entry(),  # pending
        entry(state="booked"),  # no booking id
        entry(state="canceled", booking_id=3),
        entry(state="booked", booking_id=4, customer_id=12),
        entry(state="booked", booking_id=5, end_ms=NOW_MS + 3 * HOUR_MS),
        entry(state="booked", booking_id=6, studio=OTHER_STUDIO),
    ]:  # fmt: skip
        store.add(e)
    assert ids(store.booked(STUDIO, *slot(made))) == [again.id, moved_here.id, made.id]
    assert store.booked(STUDIO, 11, 0, 1) == []
    # An entry that comes to hold the booking (its flow's outcome) is found from then on.
    pending = entry(updated_at=NOW)
    store.add(pending)
    store.update(pending.id, state="both_bookings", booking_id=7, updated_at=NOW + 4)
    assert ids(store.booked(STUDIO, *slot(made)))[0] == pending.id
    # ...and one that moves to another slot leaves this one's answer.
    store.update(pending.id, start_ms=1, end_ms=2)
    assert pending.id not in ids(store.booked(STUDIO, *slot(made)))
    assert ids(store.booked(STUDIO, 11, 1, 2)) == [pending.id]


def test_about_booking(store: JournalStore) -> None:
    made = entry(state="booked", booking_id=7, updated_at=NOW)
    cancel = entry(
        kind="cancel", booking_id=7, updated_at=NOW + 2, start=None, end=None, start_ms=None, end_ms=None
    )
    moved = entry(kind="reschedule", old_booking_id=7, updated_at=NOW + 1)
    for e in [made, cancel, moved, entry(booking_id=8), entry(booking_id=7, studio=OTHER_STUDIO)]:
        store.add(e)
    assert ids(store.about_booking(STUDIO, 7)) == [cancel.id, moved.id, made.id]
    # The booking the reschedule made, once known, names the entry too.
    store.update(moved.id, state="rescheduled", booking_id=9, updated_at=NOW + 3)
    assert ids(store.about_booking(STUDIO, 9)) == [moved.id]
    assert ids(store.about_booking(STUDIO, 7))[0] == moved.id
    store.update(moved.id, booking_id=10)
    assert store.about_booking(STUDIO, 9) == []
    assert ids(store.about_booking(STUDIO, 10)) == [moved.id]
    assert store.about_booking(STUDIO, 404) == []


def test_unfinished(store: JournalStore) -> None:
    pending = entry(created_at=NOW + 2)
    unreported = entry(created_at=NOW + 1, state="booked", booking_id=1)
    reported = entry(created_at=NOW, state="booked", booking_id=2, reported=True)
    pending_reported = entry(created_at=NOW + 3, reported=True)  # a pending entry is unfinished
    for e in [pending, unreported, reported, pending_reported, entry(studio=OTHER_STUDIO)]:
        store.add(e)
    assert ids(store.unfinished(STUDIO)) == [unreported.id, pending.id, pending_reported.id]
    store.update(pending.id, state="canceled", reported=True)
    store.update(reported.id, reported=False)
    assert ids(store.unfinished(STUDIO)) == [reported.id, unreported.id, pending_reported.id]


def test_claim(stores: StoreFactory) -> None:
    one, two = stores(), stores()  # two processes on one journal
    e = entry()
    one.add(e)
    assert one.claim(e.id, "one", until=NOW + 10, now=NOW)
    assert not two.claim(e.id, "two", until=NOW + 10, now=NOW + 5)  # held by one until NOW + 10
    assert not two.claim(e.id, "two", until=NOW + 20, now=NOW + 10)  # not past it yet
    assert one.claim(e.id, "one", until=NOW + 15, now=NOW + 5)  # its owner extends it
    held = two.unfinished(STUDIO)[0]
    assert (held.claimed_by, held.claimed_until) == ("one", NOW + 15)
    assert two.claim(e.id, "two", until=NOW + 30, now=NOW + 15.5)  # expired: taken over
    assert not one.claim(e.id, "one", until=NOW + 40, now=NOW + 20)
    # A released claim is free again.
    two.update(e.id, claimed_by=None, claimed_until=None)
    assert one.claim(e.id, "one", until=NOW + 40, now=NOW + 20)
    # Finished but not reported: still claimable (recovery reports it). Reported: never again.
    one.update(e.id, state="booked", booking_id=3)
    assert two.claim(e.id, "two", until=NOW + 60, now=NOW + 41)
    two.update(e.id, reported=True, claimed_by=None, claimed_until=None)
    assert not one.claim(e.id, "one", until=NOW + 90, now=NOW + 80)
    assert not two.claim(e.id, "two", until=NOW + 90, now=NOW + 80)
    assert not one.claim("no-such-entry", "one", until=NOW + 90, now=NOW + 80)


def test_claim_is_taken_once_by_racing_owners(stores: StoreFactory) -> None:
    import concurrent.futures

    e = entry()
    racers = [stores() for _ in range(4)]
    racers[0].add(e)
    with concurrent.futures.ThreadPoolExecutor(len(racers)) as pool:
        won = list(pool.map(lambda i: racers[i].claim(e.id, f"owner-{i}", NOW + 10, NOW), range(len(racers))))
    assert won.count(True) == 1


def test_prune(store: JournalStore) -> None:
    past_slot = {"start_ms": NOW_MS - 2 * HOUR_MS, "end_ms": NOW_MS - HOUR_MS}
    done_past = entry(state="booked", booking_id=1, reported=True, **past_slot)
    done_old = entry(kind="cancel", state="canceled", booking_id=2, reported=True, start_ms=None, end_ms=None)
    keep = [
        entry(**past_slot),  # pending: never pruned
        entry(state="booked", booking_id=3, created_at=NOW + 1, **past_slot),  # not reported yet
        entry(state="booked", booking_id=4, reported=True, updated_at=NOW + 10),  # slot to come, recent
        # Slot to come, last changed long ago (booked months ahead): kept until its slot ends, so
        # a resubmit is answered from it however far ahead the booking is.
        entry(state="booked", booking_id=6, reported=True, updated_at=NOW - 90 * 86400.0),
    ]
    for e in [done_past, done_old, *keep]:
        store.add(e)
    # done_old last changed before `before`: pruned although it has no slot.
    assert store.prune(NOW, before=NOW + 1) == 2
    assert store.prune(NOW, before=NOW + 1) == 0
    assert store.about_booking(STUDIO, 1) == []
    assert store.about_booking(STUDIO, 2) == []
    assert ids(store.booked(STUDIO, *slot(done_past))) == [keep[1].id]  # done_past's is gone
    assert ids(store.booked(STUDIO, *slot(keep[2]))) == [keep[2].id, keep[3].id]  # newest change first
    assert ids(store.unfinished(STUDIO)) == [keep[0].id, keep[1].id]
    # Reported now: due at the next prune.
    store.update(keep[1].id, reported=True)
    assert store.prune(NOW, before=NOW - 1) == 1
    assert ids(store.unfinished(STUDIO)) == [keep[0].id]


def test_studios_are_kept_apart(store: JournalStore) -> None:
    a = entry(state="booked", booking_id=5)
    b = entry(state="booked", booking_id=5, studio=OTHER_STUDIO)
    store.add(a)
    store.add(b)
    assert ids(store.booked(STUDIO, *slot(a))) == [a.id]
    assert ids(store.booked(OTHER_STUDIO, *slot(a))) == [b.id]
    assert ids(store.about_booking(OTHER_STUDIO, 5)) == [b.id]
    assert ids(store.unfinished(STUDIO)) == [a.id]
    assert store.unfinished("https://studio-c.perfectgym.example/api") == []
    assert store.claim(a.id, "x", NOW + 1, NOW)
    assert store.unfinished(OTHER_STUDIO)[0].claimed_by is None


def test_two_store_objects_see_each_others_writes(stores: StoreFactory) -> None:
    """As two worker processes: SQLite in WAL mode (each its own connection), or one Redis."""
    one, two = stores(), stores()
    e = entry()
    one.add(e)
    assert two.unfinished(STUDIO) == [e]
    two.update(e.id, state="booked", booking_id=77, reported=True)
    assert ids(one.booked(STUDIO, *slot(e))) == [e.id]
    assert one.unfinished(STUDIO) == []
    if isinstance(one, SQLiteStore):
        assert one._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_stores_answer_alike(tmp_path: Path, redis_url: str) -> None:
    """Random flows' writes on both stores at once; every read answers the same."""
    import random

    from perfectgym_appointments_client._journal._redis import RedisStore

    sqlite_store = SQLiteStore(str(tmp_path / "journal.db"), timeout=2.0)
    redis_store = RedisStore(redis_url, timeout=2.0, prefix=f"tests/journal/{uuid.uuid4().hex}/")
    both: list[JournalStore] = [sqlite_store, redis_store]
    rng = random.Random(29)
    studios, states = [STUDIO, OTHER_STUDIO], [PENDING, "booked", "already_booked", "canceled", "rescheduled"]
    made: list[str] = []

    def maybe(values: list[Any]) -> Any:
        return rng.choice([None, *values])

    def by_update(entries: list[Entry]) -> list[Entry]:
        assert [e.updated_at for e in entries] == sorted((e.updated_at for e in entries), reverse=True)
        return sorted(entries, key=lambda e: (-e.updated_at, e.id))

    try:
        for step in range(300):
            roll = rng.random()
            if roll < 0.25 or not made:
                e = entry(
                    studio=rng.choice(studios), created_at=NOW + step / 8, updated_at=NOW + rng.randint(-4, 4),
                    customer_id=maybe([1, 2]), start_ms=rng.choice([NOW_MS - HOUR_MS, NOW_MS + HOUR_MS]),
                    end_ms=maybe([NOW_MS, NOW_MS + 2 * HOUR_MS]), booking_id=maybe([1, 2, 3]),
                    old_booking_id=maybe([2, 3]), state=rng.choice(states), reported=rng.random() < 0.3,
                )  # fmt: skip
                made.append(e.id)
                for store in both:
                    store.add(e)
            elif roll < 0.55:
                fields = rng.choice(
                    [
                        {"state": rng.choice(states), "reported": rng.random() < 0.5},
                        {"booking_id": maybe([1, 2, 3]), "updated_at": NOW + rng.randint(-4, 4)},
                        {"old_booking_id": maybe([1, 2]), "customer_id": maybe([1, 2])},
                        {"claimed_by": None, "claimed_until": None},
                        {"studio": rng.choice(studios), "end_ms": maybe([NOW_MS, NOW_MS + HOUR_MS])},
                    ]
                )
                target = rng.choice(made)
                for store in both:
                    store.update(target, **fields)
            elif roll < 0.65:
                args = (
                    rng.choice(made),
                    rng.choice(["a", "b"]),
                    NOW + rng.randint(0, 9),
                    NOW + rng.randint(0, 9),
                )
                assert sqlite_store.claim(*args) == redis_store.claim(*args), (step, args)
            elif roll < 0.7:
                args = (NOW + rng.randint(-1, 1) * 3600, NOW + rng.randint(-5, 5))
                assert sqlite_store.prune(*args) == redis_store.prune(*args), (step, args)
            else:
                studio, customer, booking = rng.choice(studios), rng.choice([1, 2]), rng.choice([1, 2, 3])
                start, end = (
                    rng.choice([NOW_MS - HOUR_MS, NOW_MS + HOUR_MS]),
                    rng.choice([NOW_MS, NOW_MS + 2 * HOUR_MS]),
                )
                answers = [
                    (
                        by_update(store.booked(studio, customer, start, end)),
                        by_update(store.about_booking(studio, booking)),
                        store.unfinished(studio),
                    )
                    for store in both
                ]
                assert answers[0] == answers[1], step
    finally:
        for store in both:
            store.close()


# -- the Redis store's keys


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[Any]:
    from perfectgym_appointments_client._journal._redis import RedisStore

    store = RedisStore(redis_url, timeout=2.0, prefix=f"tests/journal/{uuid.uuid4().hex}/")
    try:
        yield store
    finally:
        store.close()


def keys_of(store: Any) -> set[str]:
    return set(store._redis.scan_iter(match=f"{store.prefix}*", count=1000))


def test_redis_keys_name_studios_by_hash_and_expire_when_done(redis_store: Any) -> None:
    from perfectgym_appointments_client._journal import _redis

    e = entry(booking_id=5, detail="x")
    redis_store.add(e)
    keys = keys_of(redis_store)
    assert not any("studio-a" in key or "perfectgym.example" in key for key in keys)
    hashed = _redis.studio_hash(STUDIO)
    assert len(hashed) == 24
    assert keys == {
        f"{redis_store.prefix}entry/{e.id}",
        f"{redis_store.prefix}studio/{hashed}/slot/11/{e.start_ms}/{e.end_ms}",
        f"{redis_store.prefix}studio/{hashed}/booking/5",
        f"{redis_store.prefix}studio/{hashed}/unfinished",
    }
    key = f"{redis_store.prefix}entry/{e.id}"
    assert redis_store._redis.pttl(key) == -1  # unfinished: kept until it is resolved
    redis_store.update(e.id, state="booked", reported=True, updated_at=NOW)
    # Finished and reported: expires at the later of its slot's end and FINISHED_AFTER after now.
    # (PEXPIRETIME: the absolute expiry, whatever the time of the check; NOW is the module's.)
    slot_end = e.end_ms or 0
    assert redis_store._redis.pexpiretime(key) == max(math.ceil((NOW + FINISHED_AFTER) * 1000), slot_end)
    assert f"{redis_store.prefix}studio/{hashed}/unfinished" not in keys_of(redis_store)
    late = entry(state="booked", booking_id=6, reported=True, end_ms=int((NOW + 2 * FINISHED_AFTER) * 1000))
    redis_store.add(late)
    late_expiry = redis_store._redis.pexpiretime(f"{redis_store.prefix}entry/{late.id}")
    assert late_expiry == late.end_ms  # its slot ends after FINISHED_AFTER from its last change
    # Pruned: nothing of them is left.
    assert redis_store.prune(NOW + 3 * FINISHED_AFTER, NOW + 3 * FINISHED_AFTER) == 2
    assert keys_of(redis_store) == set()


def test_redis_entries_gone_by_expiry_leave_no_keys(redis_store: Any) -> None:
    long_done = entry(
        state="booked", booking_id=8, reported=True, updated_at=NOW - 2 * FINISHED_AFTER, start_ms=1, end_ms=2
    )
    redis_store.add(long_done)  # its expiry has passed: Redis deletes the hash at once
    assert not redis_store._redis.exists(f"{redis_store.prefix}entry/{long_done.id}")
    assert redis_store.about_booking(STUDIO, 8) == []
    assert redis_store.prune(NOW, NOW - FINISHED_AFTER) == 0  # Redis pruned it; the index keys go now
    assert keys_of(redis_store) == set()
    # An index's id whose hash is gone is skipped and removed by its readers.
    e = entry(booking_id=9)
    redis_store.add(e)
    redis_store._redis.delete(f"{redis_store.prefix}entry/{e.id}")
    assert redis_store.booked(STUDIO, *slot(e)) == []
    assert redis_store.about_booking(STUDIO, 9) == []
    assert redis_store.unfinished(STUDIO) == []
    assert keys_of(redis_store) == set()


def test_redis_prune_member_names_its_entrys_index_keys(redis_store: Any) -> None:
    e = entry(state="booked", booking_id=1, old_booking_id=2, reported=True)
    redis_store.add(e)
    (member,) = redis_store._redis.zrange(f"{redis_store.prefix}done/by-update", 0, -1)
    assert json.loads(member)[0] == e.id
    assert set(json.loads(member)[1:]) == keys_of(redis_store) - {
        f"{redis_store.prefix}entry/{e.id}",
        f"{redis_store.prefix}done/by-update",
        f"{redis_store.prefix}done/by-end",
    }


# -- opening a journal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_open_journal_sqlite(tmp_path: Path) -> None:
    journal = open_journal(f"sqlite:///{tmp_path}/bookings.db", logger=logging.getLogger(LOGGER))
    try:
        assert isinstance(journal.store, SQLiteStore)
        assert (tmp_path / "bookings.db").exists()
    finally:
        journal.store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://localhost/journal", "a sqlite:/// or redis:// URL"),
        ("bookings.db", "a sqlite:/// or redis:// URL"),
        ("sqlite:///", "sqlite:///path/to/file.db"),
        ("sqlite://bookings.db", "sqlite:///path/to/file.db"),
    ],
)
def test_open_journal_refuses_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_journal(url, logger=logging.getLogger(LOGGER))


def test_open_journal_refuses_what_is_not_a_url() -> None:
    with pytest.raises(TypeError, match="journal must be"):
        open_journal(Path("bookings.db"), logger=logging.getLogger(LOGGER))  # type: ignore[arg-type]


def test_open_journal_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be opened"):
        open_journal(f"sqlite:///{tmp_path}/nowhere/bookings.db", logger=logging.getLogger(LOGGER))


def test_open_journal_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "bookings.db"
    path.write_bytes(b"\x00\xffnot SQLite at all\n" * 512)
    with pytest.raises(ConfigurationError, match="file is not a database"):
        open_journal(f"sqlite:///{path}", logger=logging.getLogger(LOGGER))
    assert path.read_bytes() == b"\x00\xffnot SQLite at all\n" * 512  # left as it was


def test_open_journal_refuses_a_redis_it_cannot_reach() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot be opened: ConnectionError") as caught:
        open_journal(url, logger=logging.getLogger(LOGGER), timeout=1.0)
    assert time.monotonic() - started < 1.5
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_open_journal_reads_a_redis_unix_socket_url(tmp_path: Path) -> None:
    """``redis+unix://`` as RateLimit(storage=...) takes it: a socket that is not there is refused
    for what it is, not for its scheme."""
    with pytest.raises(ConfigurationError, match=r"cannot be opened: ConnectionError.*No such file"):
        open_journal(f"redis+unix://{tmp_path}/redis.sock?db=0", logger=logging.getLogger(LOGGER))


def test_open_journal_redis(redis_url: str) -> None:
    from perfectgym_appointments_client._journal._redis import RedisStore

    journal = open_journal(redis_url, logger=logging.getLogger(LOGGER))
    try:
        assert isinstance(journal.store, RedisStore)
        assert PASSWORD not in repr(journal)
        assert PASSWORD not in journal.url
    finally:
        journal.store.close()


# -- a failing store: the fallback, one WARNING, and the store again once it answers

FALLBACK = "fallback"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def add_entry(store: JournalStore, e: Entry) -> str:
    store.add(e)
    return "added"


@pytest.mark.anyio
async def test_a_locked_sqlite_file_degrades(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    path = tmp_path / "bookings.db"
    journal = open_journal(f"sqlite:///{path}", logger=logging.getLogger(LOGGER), timeout=0.2)
    journal.retry_after = 0.3
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the file
        first = entry()
        assert await journal.call(FALLBACK, add_entry, journal.store, first) == FALLBACK
        assert not journal.available
        assert await journal.call(FALLBACK, add_entry, journal.store, entry()) == FALLBACK  # left alone
        (warning,) = warnings_of(caplog)
        assert "booking journal" in warning.getMessage()
        locker.execute("ROLLBACK")
        await anyio.sleep(journal.retry_after + 0.05)
        assert journal.available
        again = entry()
        assert await journal.call(FALLBACK, add_entry, journal.store, again) == "added"
        assert again.id in ids(await journal.call([], journal.store.unfinished, STUDIO))
        assert len(warnings_of(caplog)) == 1
        assert any("answers again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
    finally:
        locker.close()
        journal.store.close()  # waits for an abandoned write's thread (its busy timeout)


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_a_redis_that_fails_mid_use_degrades(
    own_redis: RedisProcess, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    journal = open_journal(own_redis.url, logger=logging.getLogger(LOGGER), timeout=0.3)
    journal.retry_after = 0.2
    try:
        before = entry()
        assert await journal.call(FALLBACK, add_entry, journal.store, before) == "added"
        if fault == "stopped":
            own_redis.stop()
        else:
            own_redis.freeze()
        assert await journal.call(FALLBACK, add_entry, journal.store, entry()) == FALLBACK
        assert await journal.call([], journal.store.unfinished, STUDIO) == []  # left alone
        (warning,) = warnings_of(caplog)
        assert PASSWORD not in warning.getMessage()
        if fault == "stopped":
            own_redis.start()  # the same port, and empty: it kept nothing on disk
        else:
            own_redis.thaw()
        await anyio.sleep(journal.retry_after + 0.05)
        after = entry()
        assert await journal.call(FALLBACK, add_entry, journal.store, after) == "added"
        unfinished = ids(await journal.call([], journal.store.unfinished, STUDIO))
        assert after.id in unfinished
        assert (before.id in unfinished) == (fault == "frozen")
        assert len(warnings_of(caplog)) == 1
        assert not any(PASSWORD in r.getMessage() for r in caplog.records)
    finally:
        journal.store.close()


def test_the_stores_agree_on_the_states_that_hold_a_booking() -> None:
    from perfectgym_appointments_client._journal import _redis, _sqlite

    assert _redis._HOLDING == _sqlite._HOLDING
    fields = {f.name for f in attrs.fields(Entry)}
    typed = _redis._INTS | _redis._FLOATS | _redis._BOOLS
    assert typed <= fields
    assert {f.name for f in attrs.fields(Entry) if f.name not in typed} == {
        "id", "kind", "studio", "process", "start", "end", "validated", "state", "detail", "claimed_by",
    }  # fmt: skip
    assert PENDING == "pending"
