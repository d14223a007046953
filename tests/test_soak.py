"""The small soak (CI): booking flows against a faulty sandbox, then the sandbox's state is audited,
on both HTTP backends (httpx on asyncio and trio, aiohttp on asyncio).

``scripts/soak`` runs the full one; both use benchmarks/soak.py.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from benchmarks import soak
from benchmarks.bad_input import HTTP_BACKENDS
from benchmarks.soak import FULL_FAULTS, run_soak
from perfectgym_appointments_client.sandbox import Faults, Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=HTTP_BACKENDS)
def http_backend(request: pytest.FixtureRequest) -> str:
    """The soak client's backend. Named as tests/conftest.py's fixture (which is for
    tests/fakeapi.py, not the sandbox) so that conftest's hook deselects trio + aiohttp."""
    return str(request.param)


async def test_small_soak_loses_and_doubles_nothing(http_backend: str) -> None:
    report = await run_soak(
        flows=160, tasks=12, faults=FULL_FAULTS, seed=3, cancel_rate=0.2, http_backend=http_backend
    )
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
    # The audit.
    assert report.clean, summary
    assert report.unhandled == []
    assert report.double_bookings == 0
    assert report.unknown_to_client == 0
    assert report.unreported == 0
    assert report.phantom == 0
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

    report = await run_soak(flows=24, tasks=4, faults=Faults(), seed=5, tamper=tamper, cancel_rate=0)
    assert report.phantom == 1
    assert report.unknown_to_client == 1
    assert report.unreported == 1
    assert not report.clean


def test_the_soak_command_runs_each_backend_and_fails_if_either_is_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[str] = []

    async def fake_soak(flows: int, tasks: int, *, http_backend: str) -> soak.SoakReport:
        ran.append(http_backend)
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
    out = capsys.readouterr().out
    assert "soak on httpx: CLEAN" in out
    assert "soak on aiohttp: PROBLEMS FOUND" in out
    assert "bad-input sweep on aiohttp: 1 malformed answers" in out
    ran.clear()
    monkeypatch.setattr(sys, "argv", ["soak", "--flows", "3", "--http-backend", "httpx"])
    assert soak.main() == 0
    assert ran == ["httpx"]
    assert "aiohttp" not in capsys.readouterr().out
