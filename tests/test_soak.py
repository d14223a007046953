"""The small soak (CI): booking flows against a faulty sandbox, then the sandbox's state is audited.

``scripts/soak`` runs the full one; both use benchmarks/soak.py.
"""

from __future__ import annotations

import pytest

from benchmarks.soak import FULL_FAULTS, run_soak
from perfectgym_appointments_client.sandbox import Faults, Store

pytestmark = pytest.mark.anyio


async def test_small_soak_loses_and_doubles_nothing() -> None:
    report = await run_soak(flows=160, tasks=12, faults=FULL_FAULTS, seed=3, cancel_rate=0.2)
    summary = "\n".join(report.lines())
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
