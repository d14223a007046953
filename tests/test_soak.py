"""The small soak (CI): booking flows against a faulty sandbox, then the sandbox's state is audited.

``scripts/soak`` runs the full one; both use benchmarks/soak.py.
"""

from __future__ import annotations

import pytest

from benchmarks.soak import FULL_FAULTS, run_soak
from perfectgym_appointments_client.sandbox import Faults, Store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the soak's point is the server's state; one backend keeps CI short


async def test_small_soak_loses_and_doubles_nothing() -> None:
    report = await run_soak(flows=120, tasks=12, faults=FULL_FAULTS, seed=3)
    summary = "\n".join(report.lines())
    # The faults really happened, and flows really ran to the end.
    assert report.faults.get("reset", 0) > 0
    assert report.faults.get("commit_then_drop", 0) > 0
    assert report.faults.get("429", 0) + report.faults.get("503", 0) > 0
    assert report.outcomes["canceled"] + report.outcomes["rescheduled"] > 60
    assert sum(report.outcomes.values()) == 120
    # The audit.
    assert report.clean, summary
    assert report.unhandled == []
    assert report.double_bookings == 0
    assert report.unknown_to_client == 0
    assert report.phantom == 0
    assert report.unknown_state_flows == 0


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

    report = await run_soak(flows=24, tasks=4, faults=Faults(), seed=5, tamper=tamper)
    assert report.phantom == 1
    assert report.unknown_to_client == 1
    assert not report.clean
