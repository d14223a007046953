"""examples/webapp killed mid-load and restarted, as deployed (issue 29): the app under uvicorn (a
real process) with its booking journal (SQLite beside its store, the default), a load generator
sending 100 bookings of distinct customers and slots over sockets, 8 at a time, while the sandbox
holds some booking requests for a second before it handles them (``Faults(rate_slow_commit=...)``,
the body read already). The app is SIGKILLed with bookings at the server, the sandbox makes them,
the app is restarted on the same store and journal and recovers them in its lifespan before it
serves; the load generator then resubmits the bookings whose answer it lost and sends the rest.

Compared at the end: the sandbox's active bookings with the app's store (0 missing: every booking
made is in the store, those made after the kill as ``recovered``; 0 double: no customer booked
twice at the sandbox, no booking id twice in the store; 0 unknown: no ``unknown`` outcome, and the
journal holds nothing pending).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from webapp_harness import API_KEY, WAIT, AppProcess, app_process

from perfectgym_appointments_client import (
    AppointmentsClient,
    BookingOutcome,
    OutcomeKind,
    format_zoned_datetime,
)
from perfectgym_appointments_client.sandbox import ZONE, Faults, Sandbox

pytestmark = pytest.mark.anyio

BOOK = "/v1/appointments/booking/book"
BOOKINGS = 100
CONCURRENCY = 8
KILL_AFTER = 30  # answers the load generator has had when the app is killed
HOLD = 1.0  # seconds the sandbox holds a slow booking request before it handles it
SLOW = 0.1  # the share of booking requests held: some are always at the server, few enough to be fast


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the tests' own loop; uvicorn runs asyncio


class Handled:
    """The sandbox's ``on_request`` (called in the sandbox's thread; plain counters): booking
    requests that reached its API (after a slow commit's hold) and those it made."""

    def __init__(self) -> None:
        self.received = 0
        self.committed = 0

    def __call__(self, phase: str, method: str, path: str) -> None:
        if (method, path) == ("POST", BOOK):
            if phase == "received":
                self.received += 1
            elif phase == "committed":
                self.committed += 1


class Holds:
    """When the sandbox last began holding a booking request (its slow-commit count, polled)."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb
        self.seen = 0
        self.last: float | None = None

    def poll(self) -> None:
        count = self._sb.fault_counts["slow_commit"]
        if count > self.seen:
            self.seen, self.last = count, time.monotonic()

    def fresh(self, within: float) -> bool:
        """A request began its hold less than ``within`` seconds ago: it is at the server still."""
        self.poll()
        return self.last is not None and time.monotonic() - self.last < within

    def over(self) -> bool:
        """Every hold that began has ended (by the sandbox's own HOLD)."""
        self.poll()
        return self.last is None or time.monotonic() - self.last > HOLD + 0.1

    def over_for(self, seconds: float) -> bool:
        """Every hold has been over for ``seconds``."""
        self.poll()
        return self.last is None or time.monotonic() - self.last > HOLD + 0.1 + seconds


@attrs.define
class Load:
    """The load generator: ``bodies`` posted ``CONCURRENCY`` at a time; each answer kept, or the
    booking marked lost (sent, no answer: the app died) or unsent (the app was not there)."""

    bodies: list[dict[str, Any]]
    answers: dict[int, httpx.Response] = attrs.Factory(dict)
    lost: set[int] = attrs.Factory(set)
    unsent: set[int] = attrs.Factory(set)
    stopped: bool = False

    async def run(self, app: AppProcess, indices: Sequence[int]) -> dict[int, httpx.Response]:
        queue = deque(indices)
        answered: dict[int, httpx.Response] = {}
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with app.client(limits=limits) as web:

            async def worker() -> None:
                while queue and not self.stopped:
                    index = queue.popleft()
                    try:
                        answer = await web.post("/bookings", json=self.bodies[index])
                    except httpx.ConnectError:
                        self.unsent.add(index)  # no connection: the app never had it
                        continue
                    except httpx.TransportError:
                        self.lost.add(index)  # sent; the app died before it answered
                        continue
                    answered[index] = self.answers[index] = answer

            async with anyio.create_task_group() as tg:
                for _ in range(CONCURRENCY):
                    tg.start_soon(worker)
        self.unsent.update(queue)
        return answered


async def _bodies(sb: Sandbox, customers: list[int]) -> list[dict[str, Any]]:
    """One booking per customer, each in a window of its own (no two overlap, so that no room,
    instructor or customer is taken twice: every booking can be made), all inside the bookings
    list's two weeks."""
    plain = [
        a for a in sb.store.listed()
        if not a.all_hours and not a.requires_confirmation and a.lead_minutes == 0 and not a.premium_only
    ][:6]  # fmt: skip
    tomorrow = dt.datetime.now(ZONE).date() + dt.timedelta(days=1)
    candidates: list[tuple[dt.datetime, dt.datetime, int]] = []
    async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client:
        for appointment in plain:
            for first in (tomorrow, tomorrow + dt.timedelta(days=6)):
                slots = await client.get_slots(
                    appointment.id, customer_id=customers[0], days_ahead=6, start_date=first
                )
                candidates += [(s.end_date_time, s.start_date_time, appointment.id) for s in slots]
    windows: list[tuple[dt.datetime, dt.datetime, int]] = []
    for end, start, appointment_id in sorted(candidates):  # the earliest end first: the most windows
        if not windows or start >= windows[-1][0]:
            windows.append((end, start, appointment_id))
    assert len(windows) >= len(customers), f"only {len(windows)} separate windows"
    return [
        {"customer_id": customer, "appointment_id": appointment_id,
         "start": format_zoned_datetime(start), "end": format_zoned_datetime(end)}
        for customer, (end, start, appointment_id) in zip(customers, windows, strict=False)
    ]  # fmt: skip


async def _until(condition: Any, what: str) -> None:
    try:
        with anyio.fail_after(WAIT):
            while not condition():  # noqa: ASYNC110 - the sandbox's counters have no event to wait on
                await anyio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"no {what} within {WAIT} s") from None


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_the_app_killed_during_100_bookings_recovers_them_at_its_restart(
    tmp_path: Path, backend: str
) -> None:
    handled = Handled()
    faults = Faults(rate_slow_commit=SLOW, slow_commit_seconds=HOLD, seed=7)
    with Sandbox(43, api_key=API_KEY, rate_limit=None, faults=faults, on_request=handled) as sb:
        holds = Holds(sb)
        customers = [sb.store.add_customer().id for _ in range(BOOKINGS)]
        load = Load(await _bodies(sb, customers))
        db_path = tmp_path / "outcomes.sqlite3"
        started = time.monotonic()

        # -- the first process: killed with bookings at the server ------------------------------
        with app_process(sb.base_url, tmp_path, db_path=db_path, WEBAPP_HTTP_BACKEND=backend) as first:
            first_startup = time.monotonic() - started
            killed_at = 0.0
            before: set[int] = set()

            async def kill_mid_way() -> None:
                nonlocal killed_at, before
                # Past KILL_AFTER answers, at a moment a booking request began its hold at the
                # server less than HOLD / 2 ago: it is there when the SIGKILL lands.
                await _until(lambda: len(load.answers) >= KILL_AFTER and holds.fresh(HOLD / 2), "a hold")
                load.stopped = True
                first.process.kill()
                killed_at = time.monotonic()
                before = {b.id for b in sb.store.snapshot() if b.active}

            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_mid_way)
                await load.run(first, range(BOOKINGS))
            await anyio.to_thread.run_sync(first.process.wait, WAIT)
            held_at_kill = holds.seen
            # The sandbox makes what the dead app had sent: every hold over, every request handled.
            # Every hold over, and every booking request that reached the API made (or, 3 s after
            # the holds ended, refused: a refusal has no phase of its own to wait for).
            await _until(
                lambda: holds.over() and (handled.received == handled.committed or holds.over_for(3.0)),
                "the held requests",
            )
            sb.faults = Faults()
            settled_at = time.monotonic()
            made_after_kill = {b.id for b in sb.store.snapshot() if b.active} - before
        answered_first = dict(load.answers)
        lost = sorted(load.lost)

        # -- the restart: the lifespan recovers before the app serves -----------------------------
        restarted_at = time.monotonic()
        with app_process(sb.base_url, tmp_path, db_path=db_path, WEBAPP_HTTP_BACKEND=backend) as second:
            second_startup = time.monotonic() - restarted_at
            line = second.log.wait_for("booking journal:")
            match = re.search(r"(\d+) booking\(s\) recovered, (\d+) pending", line)
            assert match is not None, line
            recovered, pending_at_start = int(match.group(1)), int(match.group(2))
            load.stopped = False
            retried = await load.run(second, sorted(load.lost | load.unsent))
        elapsed = time.monotonic() - started

        # -- the audit ----------------------------------------------------------------------------
        made = [b for b in sb.store.snapshot() if b.customer_id in set(customers) and b.active]
        rows = second.outcomes()
        later: list[BookingOutcome] = []
        async with AppointmentsClient(
            api_key=API_KEY,
            base_url=sb.base_url,
            journal=f"sqlite:///{tmp_path / 'bookings-journal.db'}",
            on_booking_outcome=later.append,
        ) as auditor:
            # What the restart could not prove yet (a request the dead app may still have had at
            # the server reads "not made" only once older than a flow may run, 150 s) is proven
            # by a later recovery (the app runs one every WEBAPP_RECOVER_EVERY): here, as that
            # later one, on a journal clock moved past the bound.
            assert auditor._journal is not None
            auditor._journal.clock = lambda: time.time() + 3600
            await auditor.recover()
            pending = await auditor.pending_bookings()

    stored = [r["booking_id"] for r in rows if r["operation"] == "book" and r["booking_id"] is not None]
    recovered_rows = {r["booking_id"] for r in rows if r["recovered"] and r["booking_id"] is not None}
    double_at_sandbox = sum(n - 1 for n in Counter(b.customer_id for b in made).values())
    double_in_store = sum(n - 1 for n in Counter(stored).values())
    missing = sorted(b.id for b in made if b.id not in set(stored))
    unknown = sum(r["kind"] == "unknown" for r in rows)
    resubmits = Counter(
        "already_existed" if retried[i].status_code == 200 else str(retried[i].status_code)
        for i in lost
        if i in retried
    )
    counts = (
        f"[{backend}] {len(answered_first)} answered before the kill, {len(lost)} answers lost, "
        f"{held_at_kill} slow commits so far, {len(made_after_kill)} made at the server after the "
        f"kill, {recovered} recovered at the restart ({sum(r['recovered'] for r in rows)} stored, the others "
        f"stored already), "
        f"{pending_at_start} pending then ({len(later)} proven later); resubmits of the lost: {dict(resubmits)}; "
        f"{len(made)} booked at the sandbox, {len(stored)} in the store: {len(missing)} missing, "
        f"{double_at_sandbox} + {double_in_store} double, {unknown} unknown, {len(pending)} pending; "
        f"startup {first_startup:.1f} s, kill to settled {settled_at - killed_at:.1f} s, restart "
        f"(recovering) {second_startup:.1f} s, the whole run {elapsed:.1f} s"
    )
    print(counts)  # noqa: T201 - the kill-and-recover counts, for the record (pytest -rP shows them)
    assert made_after_kill, f"no booking was at the server when the app was killed: {counts}"
    assert made_after_kill <= recovered_rows, counts  # made after the kill: known by recovery alone
    assert recovered >= len(made_after_kill), counts
    # Later recoveries' outcomes: an intent whose request never made a booking, or one that the
    # resubmit's booking (stored already) satisfies; never a booking the store lacks.
    assert all(o.kind is OutcomeKind.NOT_BOOKED or o.booking_id in set(stored) for o in later), (
        counts,
        later,
    )
    assert (len(made), len(missing), double_at_sandbox, double_in_store, unknown, len(pending)) == (
        BOOKINGS, 0, 0, 0, 0, 0,
    ), counts  # fmt: skip
    assert all(a.status_code in (200, 201) for a in answered_first.values()), counts
    assert all(a.status_code in (200, 201) for a in retried.values()), counts
    assert sorted(retried) == sorted(load.lost | load.unsent), counts
    # A lost answer whose booking was made comes back as that booking, nothing new booked.
    by_customer = {b.customer_id: b.id for b in made}
    for index in lost:
        body, answer = load.bodies[index], retried[index]
        assert answer.json()["booking_id"] == by_customer[body["customer_id"]], counts
        made_before_restart = answer.json()["booking_id"] in before | made_after_kill
        assert answer.json()["already_existed"] == made_before_restart, (index, answer.json(), counts)
    for answer in load.answers.values():
        assert answer.json()["booking_id"] in set(stored), counts


# -- the store and the setting, alone ---------------------------------------------------------------


def test_the_store_keeps_a_booking_once_when_recovery_reports_it_again(tmp_path: Path) -> None:
    # A process killed after the hook stored an outcome and before the journal wrote it: the next
    # start's recover() reports it again.
    from examples.webapp.store import OutcomeStore

    booked = BookingOutcome(operation="book", kind=OutcomeKind.BOOKED, booking_id=7, customer_id=1)
    with OutcomeStore(tmp_path / "outcomes.sqlite3") as store:
        store.record(booked)
        store.record(attrs.evolve(booked, recovered=True))
        store.record(attrs.evolve(booked, kind=OutcomeKind.ALREADY_BOOKED))  # the same booking
        not_canceled = BookingOutcome(operation="cancel", kind=OutcomeKind.NOT_CANCELED, booking_id=7)
        store.record(not_canceled)
        store.record(attrs.evolve(not_canceled, kind=OutcomeKind.CANCELED))  # a later cancel that worked
        store.record(attrs.evolve(not_canceled, kind=OutcomeKind.CANCELED, recovered=True))
        rows = store.outcomes()
    assert [(r["operation"], r["kind"], r["booking_id"], r["recovered"]) for r in rows] == [
        ("cancel", "canceled", 7, False),
        ("cancel", "not_canceled", 7, False),
        ("book", "booked", 7, False),
    ]


def test_the_journal_setting_defaults_beside_the_store_and_never_shows_a_password() -> None:
    from examples.webapp.settings import Settings, SettingsError

    env = {
        "PERFECTGYM_BASE_URL": "http://studio.example",
        "PERFECTGYM_API_KEY": "k",
        "WEBAPP_DB": "/srv/app/o.db",
    }
    assert Settings.from_env(env).journal == "sqlite:////srv/app/bookings-journal.db"
    assert Settings.from_env({**env, "WEBAPP_JOURNAL": "off"}).journal is None
    redis = Settings.from_env({**env, "WEBAPP_JOURNAL": "redis://:hunter2@cache:6379/1"})
    assert redis.journal == "redis://:hunter2@cache:6379/1"
    assert redis.journal_shown == "redis://:***@cache:6379/1"
    assert "hunter2" not in repr(redis)
    with pytest.raises(SettingsError, match="WEBAPP_JOURNAL must be") as refused:
        Settings.from_env({**env, "WEBAPP_JOURNAL": "postgres://u:hunter2@db/x"})
    assert "hunter2" not in str(refused.value)
