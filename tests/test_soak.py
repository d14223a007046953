"""The small soak (CI): booking flows against a faulty sandbox, then the sandbox's state is audited,
on both HTTP backends (httpx on asyncio and trio, aiohttp on asyncio). Besides the sandbox's faults:
resubmits of one slot, clients closed while their flows run, and (where redis-server is installed)
the rate limit's Redis stopped, restarted, frozen and thawed.

``scripts/soak`` runs the full one; both use benchmarks/soak.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import soak
from benchmarks.bad_input import HTTP_BACKENDS
from benchmarks.redis_process import RedisMissing
from benchmarks.soak import FULL_FAULTS, run_soak
from perfectgym_appointments_client import BookingOutcome, OutcomeKind
from perfectgym_appointments_client.sandbox import BookingRecord, Faults, Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=HTTP_BACKENDS)
def http_backend(request: pytest.FixtureRequest) -> str:
    """The soak client's backend. Named as tests/conftest.py's fixture (which is for
    tests/fakeapi.py, not the sandbox) so that conftest's hook deselects trio + aiohttp."""
    return str(request.param)


async def test_small_soak_loses_and_doubles_nothing(http_backend: str, tmp_path: Path) -> None:
    # With a booking journal (SQLite), as production runs with one (issue 29).
    report = await run_soak(
        flows=160, tasks=12, faults=FULL_FAULTS, seed=3, cancel_rate=0.2, http_backend=http_backend,
        resubmit_rate=0.15, journal=f"sqlite:///{tmp_path / 'journal.db'}",
    )  # fmt: skip
    summary = "\n".join(report.lines())
    assert report.http_backend == http_backend
    assert summary.startswith(f"[{http_backend}] flows: 160 in ")
    # The faults really happened, flows really ran to the end, over the whole horizon, and some
    # callers really gave up while their request was at the server.
    assert report.faults.get("reset", 0) > 0, summary
    assert report.faults.get("commit_then_drop", 0) > 0, summary
    assert report.faults.get("429", 0) + report.faults.get("503", 0) > 0, summary
    assert report.outcomes["canceled"] + report.outcomes["rescheduled"] > 60, summary
    assert sum(report.outcomes.values()) == 160
    assert report.far_bookings > 0, summary  # past the list's two weeks
    assert report.caller_cancelled > 0, summary
    # Resubmits of the same slot, from a second tab and after a disconnect, got the held booking.
    assert report.resubmits[soak.SECOND_TAB] > 0, summary
    assert report.resubmits[soak.AFTER_DISCONNECT] > 0, summary
    assert report.disconnected > 0, summary
    assert report.already_existed > 0, summary
    # Clients closed while their flows ran: closing waited, every outcome reached the hook first.
    assert report.closes == soak.CLOSE_ROUNDS, summary
    assert report.closes_while_running > 0, summary
    assert report.reports_during_close > 0, summary
    assert report.late_reports == 0, summary
    assert report.close_cut_short == 0, summary
    # Redis stopped and restarted, frozen and thawed: the client fell back, went on, came back.
    if shutil.which("redis-server") is None:  # that part is skipped (and said so) without one
        assert report.redis.startswith("skipped"), summary
    else:
        assert report.redis.startswith("on"), summary
        assert report.redis_faults["restarted"] > 0, summary
        assert report.redis_faults["thawed"] > 0, summary
        assert report.redis_problems == [], summary
        assert report.outages >= soak.REDIS_FAULTS, summary
        assert report.back_on_redis > 0, summary
        assert report.outage_requests > 0, summary
    # The audit.
    assert report.clean, summary
    assert report.unhandled == []
    assert report.double_bookings == 0
    assert report.unknown_to_client == 0
    assert report.unreported == 0
    assert report.phantom == 0
    assert report.made_twice == 0
    # A flow may end "unknown" (reported so) when another customer takes the slot's room between a
    # dropped request and the check; what matters is that no report was wrong or missing (above).
    assert report.hook_disagrees == 0


async def test_the_audit_can_fail() -> None:
    # Behind the client's back: one booking made, one canceled. The audit must see both.
    def tamper(store: Store, customers: list[int]) -> None:
        active = next(b for b in store.snapshot() if b.customer_id in customers and b.active)
        store.cancel(active.id)
        customer = store.customers[customers[0]]
        for appointment in store.appointments.values():
            slots = store.slots(appointment.id, store.now().date(), 5, customer.id)
            if slots:
                start, end, _ = slots[0]
                store.book(customer.id, appointment.id, start, end)
                return

    report = await run_soak(
        flows=24, tasks=4, faults=Faults(), seed=5, tamper=tamper, cancel_rate=0, redis=False
    )
    assert report.phantom == 1
    assert report.unknown_to_client == 1
    assert report.unreported == 1
    assert not report.clean


def test_the_soak_command_runs_each_backend_and_fails_if_either_is_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[str] = []
    redis_asked: list[bool] = []

    async def fake_soak(
        flows: int, tasks: int, *, http_backend: str, redis: bool, journal: str | None
    ) -> soak.SoakReport:
        ran.append(http_backend)
        redis_asked.append(redis)
        report = soak.SoakReport(flows=flows, http_backend=http_backend)
        report.double_bookings = int(http_backend == "aiohttp")
        return report

    async def fake_sweep(backends: tuple[str, ...]) -> dict[str, tuple[Counter[str], list[str]]]:
        return {backend: (Counter(typed=1), []) for backend in backends}

    monkeypatch.setattr(soak, "run_soak", fake_soak)
    monkeypatch.setattr(soak, "sweep", fake_sweep)
    monkeypatch.setattr(sys, "argv", ["soak", "--flows", "3"])
    assert soak.main() == 1
    assert ran == ["httpx", "aiohttp"]
    assert redis_asked == [True, True]
    out = capsys.readouterr().out
    assert "soak on httpx: CLEAN" in out
    assert "soak on aiohttp: PROBLEMS FOUND" in out
    assert "bad-input sweep on aiohttp: 1 malformed answers" in out
    ran.clear()
    monkeypatch.setattr(sys, "argv", ["soak", "--flows", "3", "--http-backend", "httpx", "--no-redis"])
    assert soak.main() == 0
    assert ran == ["httpx"]
    assert redis_asked == [True, True, False]
    assert "aiohttp" not in capsys.readouterr().out


async def test_without_redis_server_the_soak_says_it_skips_the_redis_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing() -> None:
        raise RedisMissing("redis-server is not installed (a test's stand-in)")

    monkeypatch.setattr(soak, "RedisProcess", missing)
    report = await run_soak(flows=8, tasks=2, faults=Faults(), seed=5, cancel_rate=0, close_rounds=0)
    assert report.clean, "\n".join(report.lines())
    assert sum(report.outcomes.values()) == 8
    assert "Redis faults: skipped (redis-server is not installed" in "\n".join(report.lines())
    assert report.outages == report.back_on_redis == 0


def test_the_audit_counts_already_booked_as_known_and_fails_a_booking_two_flows_both_made() -> None:
    now = dt.datetime(2030, 1, 7, 8, tzinfo=dt.UTC)
    start = now + dt.timedelta(days=1)

    def record(booking_id: int) -> BookingRecord:
        return BookingRecord(
            id=booking_id, customer_id=1, appointment_id=2, start=start + dt.timedelta(hours=booking_id),
            end=start + dt.timedelta(hours=booking_id, minutes=30), instructor_id=3, status="BOOKED",
            created=now,
        )  # fmt: skip

    def reported(kind: OutcomeKind, booking_id: int) -> BookingOutcome:
        return BookingOutcome(operation="book", kind=kind, booking_id=booking_id, customer_id=1)

    # Booking 10 reached the hook only as ALREADY_BOOKED (a lost answer's check found it handed out
    # already, by a validated resubmit, which reports nothing): known to the app all the same.
    report = soak.SoakReport(flows=1)
    soak._audit(report, [record(10)], {10: "active"}, [reported(OutcomeKind.ALREADY_BOOKED, 10)], now)
    assert report.unknown_to_client == report.unreported == report.hook_disagrees == report.made_twice == 0
    assert report.clean
    # Booking 11 reported BOOKED by two flows: one of them credits itself with the other's booking.
    report = soak.SoakReport(flows=2)
    soak._audit(
        report, [record(11)], {11: "active"},
        [reported(OutcomeKind.BOOKED, 11), reported(OutcomeKind.ALREADY_BOOKED, 11), reported(OutcomeKind.BOOKED, 11)],
        now,
    )  # fmt: skip
    assert report.made_twice == 1
    assert not report.clean
    # A late "made" report does not bring a canceled booking back, and is counted.
    report = soak.SoakReport(flows=1)
    canceled = BookingOutcome(operation="cancel", kind=OutcomeKind.CANCELED, booking_id=12)
    gone = record(12)
    gone.status = "CANCELED"
    late = [canceled, reported(OutcomeKind.ALREADY_BOOKED, 12), reported(OutcomeKind.BOOKED, 12)]
    soak._audit(report, [gone], {12: "canceled"}, late, now)
    assert (report.phantom, report.hook_disagrees, report.stale_reports, report.made_twice) == (0, 0, 1, 0)
    # Outcomes reported after a client closed mean it did not wait for its flows.
    assert not soak.SoakReport(flows=1, late_reports=1).clean
    assert not soak.SoakReport(flows=1, close_cut_short=1).clean
