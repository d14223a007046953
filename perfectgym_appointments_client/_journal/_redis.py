"""The journal on Redis (``journal="redis://host:6379/0"``): processes on several hosts share one
journal. redis-py's synchronous client, called from worker threads (``Journal.call``), one bounded
try per call (``socket_timeout`` and ``socket_connect_timeout`` are the journal's timeout, no
retries inside redis-py), as the rate limit's Redis storage.

The keys, under ``perfectgym-appointments/journal/`` (``S`` is the first 24 hex digits of the
SHA-256 of the studio's base URL: a URL never stands in a key name; no key or value holds an API
key, which entries do not have):

- ``entry/<id>``: a hash, one entry: its fields as strings (ints and floats as ``repr`` gives them,
  so that they read back exactly; bools as ``1``/``0``; a field that is None is left out).
- ``studio/S/slot/<customer_id>/<start_ms>/<end_ms>``: a set of the ids of the entries of that
  customer and slot (``booked``).
- ``studio/S/booking/<booking_id>``: a set of the ids of the entries naming that booking as their
  ``booking_id`` or ``old_booking_id`` (``about_booking``).
- ``studio/S/unfinished``: a sorted set of the ids of the entries pending or not reported, scored
  by ``created_at`` (``unfinished``, oldest first).
- ``done/by-end`` and ``done/by-update``: sorted sets of the entries finished and reported, scored
  by ``end_ms`` and ``updated_at`` (``prune``). Their members are JSON ``[id, index keys...]``, so
  that ``prune`` removes an entry from its index sets after its hash is gone.

``add`` and ``update`` write an entry and its index keys in one transaction (WATCH on the entry,
MULTI/EXEC); ``claim`` is a Lua script. An entry that becomes finished and reported expires
(PEXPIREAT) at the later of its slot's end and ``FINISHED_AFTER`` after its last change, so a
journal that nobody prunes does not keep it forever; ``prune`` deletes what is due before then
(as the SQLite store does) and what expired from the index keys. Readers skip (and remove) the ids
of an index whose hash is gone.

Bounds: a read of a slot's or a booking's set reads at most ``SET_READ_LIMIT`` ids (these hold
the few flows of one customer at one slot, or naming one booking); ``unfinished`` returns at most
the ``UNFINISHED_LIMIT`` oldest (the flows in flight in every process, and those waiting for
``recover()``: resolving them lets the next call see the rest); ``prune`` works in batches of
``BATCH`` until nothing is due.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from typing import Any

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._base import FINISHED_AFTER, PENDING, Entry

__all__ = ["PREFIX", "RedisStore"]

PREFIX = "perfectgym-appointments/journal/"
SET_READ_LIMIT = 1000
UNFINISHED_LIMIT = 10_000
BATCH = 500
_ATTEMPTS = 100  # of a WATCH/MULTI transaction that another writer keeps changing under it

_FIELDS = [field.name for field in attrs.fields(Entry)]
_INTS = frozenset(
    {"customer_id", "bookable_appointment_id", "start_ms", "end_ms", "booking_id", "old_booking_id"}
)
_FLOATS = frozenset({"created_at", "updated_at", "claimed_until"})
_BOOLS = frozenset({"reported"})
# Fields that are never None (NOT NULL in the SQLite store).
_REQUIRED = frozenset(
    {"id", "kind", "studio", "process", "created_at", "updated_at", "state", "detail", "reported"}
)
# The states that leave the customer holding the entry's booking (as _sqlite._HOLDING).
_HOLDING = ("booked", "already_booked", "rescheduled", "both_bookings")

# Take the entry for ARGV[1] until ARGV[2] if it is pending or not reported, and no other owner
# holds it past ARGV[3] (as the SQLite store's UPDATE ... WHERE). Numbers are repr()'s of floats:
# tonumber reads them exactly.
_CLAIM = """
local fields = redis.call('HMGET', KEYS[1], 'state', 'reported', 'claimed_by', 'claimed_until')
local state, reported, by, held_until = fields[1], fields[2], fields[3], fields[4]
if not state then return 0 end
if reported == '1' and state ~= ARGV[4] then return 0 end
if by and by ~= ARGV[1] then
    if not held_until or tonumber(held_until) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[1], 'claimed_until', ARGV[2])
return 1
"""


class RedisStore:
    """Entries on one Redis, shared by every process that opens the same URL (and prefix)."""

    def __init__(self, url: str, *, timeout: float, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        if url.lower().startswith("redis+unix://"):  # as RateLimit(storage=...) spells it (limits')
            url = "unix://" + url[len("redis+unix://") :]
        # redis-py's types spell every answer as "a value or an awaitable of it": the client is
        # typed loosely here, its answers checked where they are used.
        self._redis: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        try:
            # Reached now, so that a Redis that cannot be reached is refused when the client is made.
            self._redis.ping()
            self._claim = self._redis.register_script(_CLAIM)
        except BaseException:
            self._redis.close()
            raise

    # -- key names

    def _entry_key(self, entry_id: str) -> str:
        return f"{self.prefix}entry/{entry_id}"

    def _studio_prefix(self, studio: str) -> str:
        return f"{self.prefix}studio/{studio_hash(studio)}/"

    def _slot_key(self, studio: str, customer_id: Any, start_ms: Any, end_ms: Any) -> str:
        return f"{self._studio_prefix(studio)}slot/{customer_id}/{start_ms}/{end_ms}"

    def _booking_key(self, studio: str, booking_id: Any) -> str:
        return f"{self._studio_prefix(studio)}booking/{booking_id}"

    def _unfinished_key(self, studio: str) -> str:
        return f"{self._studio_prefix(studio)}unfinished"

    @property
    def _by_end(self) -> str:
        return f"{self.prefix}done/by-end"

    @property
    def _by_update(self) -> str:
        return f"{self.prefix}done/by-update"

    def _index_sets(self, fields: dict[str, str]) -> list[str]:
        """The slot and booking sets an entry (its encoded fields) belongs to, sorted."""
        studio = fields["studio"]
        keys = set()
        if all(name in fields for name in ("customer_id", "start_ms", "end_ms")):
            keys.add(self._slot_key(studio, fields["customer_id"], fields["start_ms"], fields["end_ms"]))
        for name in ("booking_id", "old_booking_id"):
            if name in fields:
                keys.add(self._booking_key(studio, fields[name]))
        return sorted(keys)

    def _done_member(self, fields: dict[str, str]) -> str | None:
        """The entry's member of the ``done`` sorted sets if it is finished and reported, else None."""
        if fields["state"] == PENDING or fields["reported"] != "1":
            return None
        return json.dumps([fields["id"], *self._index_sets(fields)])

    # -- writes

    def add(self, entry: Entry) -> None:
        fields = {name: _encode(name, getattr(entry, name)) for name in _FIELDS}
        _check_required(fields)
        new = {name: text for name, text in fields.items() if text is not None}
        key = self._entry_key(entry.id)
        for _ in range(_ATTEMPTS):
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    if pipe.exists(key):
                        raise ValueError(f"the journal already holds an entry {entry.id}")
                    pipe.multi()
                    self._write(pipe, entry.id, None, new)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        raise RuntimeError(f"could not add journal entry {entry.id}: it kept changing")

    def update(self, entry_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"no such entry fields: {sorted(unknown)}")
        if "id" in fields:
            raise ValueError("an entry's id does not change")
        changes = {name: _encode(name, value) for name, value in fields.items()}
        _check_required(changes)
        key = self._entry_key(entry_id)
        for _ in range(_ATTEMPTS):
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    old: dict[str, str] = pipe.hgetall(key)
                    if not old:
                        return  # no such entry (pruned, or never written): nothing to update
                    new = dict(old)
                    for name, text in changes.items():
                        if text is None:
                            new.pop(name, None)
                        else:
                            new[name] = text
                    pipe.multi()
                    self._write(pipe, entry_id, old, new)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        raise RuntimeError(f"could not update journal entry {entry_id}: it kept changing")

    def _write(self, pipe: Any, entry_id: str, old: dict[str, str] | None, new: dict[str, str]) -> None:
        """Queue (in a MULTI) the writes that turn the entry ``old`` (None: none) into ``new``,
        its index keys and its expiry included."""
        key = self._entry_key(entry_id)
        pipe.delete(key)  # the fields that became None go, and so does an expiry
        pipe.hset(key, mapping=new)
        old_sets = set(self._index_sets(old)) if old else set()
        new_sets = set(self._index_sets(new))
        for index in sorted(old_sets - new_sets):
            pipe.srem(index, entry_id)
        for index in sorted(new_sets - old_sets):
            pipe.sadd(index, entry_id)
        if old is not None:
            pipe.zrem(self._unfinished_key(old["studio"]), entry_id)
            old_member = self._done_member(old)
            if old_member is not None:
                pipe.zrem(self._by_end, old_member)
                pipe.zrem(self._by_update, old_member)
        new_member = self._done_member(new)
        if new_member is None:
            pipe.zadd(self._unfinished_key(new["studio"]), {entry_id: float(new["created_at"])})
            return
        pipe.zadd(self._by_update, {new_member: float(new["updated_at"])})
        expires = (float(new["updated_at"]) + FINISHED_AFTER) * 1000
        if "end_ms" in new:
            pipe.zadd(self._by_end, {new_member: int(new["end_ms"])})
            expires = max(expires, int(new["end_ms"]))
        pipe.pexpireat(key, math.ceil(expires))

    def claim(self, entry_id: str, owner: str, until: float, now: float) -> bool:
        taken = self._claim(
            keys=[self._entry_key(entry_id)], args=[owner, repr(float(until)), repr(float(now)), PENDING]
        )
        return bool(taken)

    def prune(self, now: float, before: float) -> int:
        now_ms = int(now * 1000)
        pruned = 0
        for done, below in ((self._by_end, f"({now_ms}"), (self._by_update, f"({float(before)!r}")):
            while True:
                members: list[str] = self._redis.zrangebyscore(done, "-inf", below, start=0, num=BATCH)
                if not members:
                    break
                removed, changed = self._prune_batch(members, now_ms, before)
                pruned += removed
                if not changed:
                    break  # nothing this batch could remove (cannot happen; never loop on it)
        return pruned

    def _prune_batch(self, members: list[str], now_ms: int, before: float) -> tuple[int, bool]:
        """Remove the entries of these ``done`` members that are due (and the members whose
        entry is gone); how many entries were deleted, and whether anything was removed."""
        ids = [str(json.loads(member)[0]) for member in members]
        keys = [self._entry_key(entry_id) for entry_id in ids]
        for _ in range(_ATTEMPTS):
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*keys)
                    # Read on another connection after the WATCH: a change since makes EXEC fail.
                    hashes: list[dict[str, str]] = self._read(keys)
                    pipe.multi()
                    deleted = 0
                    for entry_id, member, fields in zip(ids, members, hashes, strict=True):
                        index_sets: list[str] = [str(index) for index in json.loads(member)[1:]]
                        if fields:
                            if self._done_member(fields) != member:
                                # Stale (the entry changed since): only the member goes.
                                index_sets = []
                            elif _due(fields, now_ms, before):
                                pipe.delete(self._entry_key(entry_id))
                                deleted += 1
                            else:
                                continue
                        for index in index_sets:
                            pipe.srem(index, entry_id)
                        pipe.zrem(self._by_end, member)
                        pipe.zrem(self._by_update, member)
                    results = pipe.execute()
                    return deleted, bool(results)
                except redis.WatchError:
                    continue
        raise RuntimeError("could not prune the journal: its entries kept changing")

    # -- reads

    def _read(self, keys: list[str]) -> list[dict[str, str]]:
        hashes: list[dict[str, str]] = []
        for start in range(0, len(keys), BATCH):
            with self._redis.pipeline(transaction=False) as pipe:
                for key in keys[start : start + BATCH]:
                    pipe.hgetall(key)
                hashes.extend(pipe.execute())
        return hashes

    def _entries_of_set(self, index: str) -> list[Entry]:
        """The entries whose ids the set ``index`` holds (at most SET_READ_LIMIT), removing the
        ids whose entry is gone (expired or pruned)."""
        ids: list[str] = []
        for entry_id in self._redis.sscan_iter(index, count=100):
            ids.append(entry_id)
            if len(ids) >= SET_READ_LIMIT:
                break
        hashes = self._read([self._entry_key(entry_id) for entry_id in ids])
        gone = [entry_id for entry_id, fields in zip(ids, hashes, strict=True) if not fields]
        if gone:
            self._redis.srem(index, *gone)
        return [_entry(fields) for fields in hashes if fields]

    def booked(self, studio: str, customer_id: int, start_ms: int, end_ms: int) -> list[Entry]:
        entries = [
            entry
            for entry in self._entries_of_set(self._slot_key(studio, customer_id, start_ms, end_ms))
            if entry.studio == studio
            and (entry.customer_id, entry.start_ms, entry.end_ms) == (customer_id, start_ms, end_ms)
            and entry.booking_id is not None
            and entry.state in _HOLDING
        ]
        return _newest_first(entries)

    def about_booking(self, studio: str, booking_id: int) -> list[Entry]:
        entries = [
            entry
            for entry in self._entries_of_set(self._booking_key(studio, booking_id))
            if entry.studio == studio and booking_id in (entry.booking_id, entry.old_booking_id)
        ]
        return _newest_first(entries)

    def unfinished(self, studio: str) -> list[Entry]:
        index = self._unfinished_key(studio)
        ids: list[str] = self._redis.zrange(index, 0, UNFINISHED_LIMIT - 1)
        hashes = self._read([self._entry_key(entry_id) for entry_id in ids])
        gone = [entry_id for entry_id, fields in zip(ids, hashes, strict=True) if not fields]
        if gone:
            self._redis.zrem(index, *gone)
        entries = [
            entry
            for entry in (_entry(fields) for fields in hashes if fields)
            if entry.studio == studio and (not entry.reported or entry.state == PENDING)
        ]
        return sorted(entries, key=lambda entry: (entry.created_at, entry.id))

    def close(self) -> None:
        self._redis.close()


def studio_hash(studio: str) -> str:
    """The studio (its base URL) as it stands in key names."""
    return hashlib.sha256(studio.encode()).hexdigest()[:24]


def _encode(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name in _BOOLS:
        return "1" if value else "0"
    if name in _INTS:
        return str(operator.index(value))
    if name in _FLOATS:
        return repr(float(value))
    # str.__str__: a str enum's value (its own __str__ may be "Kind.NAME").
    return str.__str__(value) if isinstance(value, str) else str(value)


def _check_required(fields: dict[str, str | None]) -> None:
    missing = sorted(name for name, text in fields.items() if text is None and name in _REQUIRED)
    if missing:
        raise ValueError(f"journal entry fields that cannot be None: {missing}")


def _entry(fields: dict[str, str]) -> Entry:
    values: dict[str, Any] = {}
    for name, text in fields.items():
        if name in _INTS:
            values[name] = int(text)
        elif name in _FLOATS:
            values[name] = float(text)
        elif name in _BOOLS:
            values[name] = text == "1"
        elif name in _FIELDS:
            values[name] = text
    return Entry(**values)


def _due(fields: dict[str, str], now_ms: int, before: float) -> bool:
    """Whether prune(now, before) deletes this entry (as the SQLite store's DELETE ... WHERE)."""
    if fields["state"] == PENDING or fields["reported"] != "1":
        return False
    if "end_ms" in fields:  # a booking's entry lives until its slot has ended, however far ahead
        return int(fields["end_ms"]) < now_ms
    return float(fields["updated_at"]) < before


def _newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda entry: (entry.updated_at, entry.created_at, entry.id), reverse=True)
