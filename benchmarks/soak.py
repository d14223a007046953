"""Soak: many booking flows against a misbehaving sandbox, then the server's state is audited.

``scripts/soak`` runs the full one (1,000 flows from 50 tasks), then the bad-input sweep
(benchmarks/bad_input.py); ``tests/test_soak.py`` runs a small one. Each flow books a free
slot, reads the booking back, then reschedules or cancels it, all through one shared client while the sandbox injects 429/503s, connection resets, "commit then
drop" on bookings and random latency. Afterwards the client's own record of what it did (only
what its return values and exceptions told it) is compared with the sandbox's store.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    BookingOutcomeUnknownError,
    InternalServerError,
    PerfectGymError,
    RescheduleError,
    RetryPolicy,
    Slot,
)
from perfectgym_appointments_client.sandbox import Faults, Sandbox, Store

from .bad_input import OPERATIONS, sweep

FULL_FAULTS = Faults(
    rate_429=0.05, rate_503=0.05, rate_reset=0.05, rate_commit_then_drop=0.05, latency_jitter=0.004,
    retry_after=0, seed=1,
)  # fmt: skip


@dataclass
class SoakReport:
    flows: int
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # why a step failed: error class names
    unhandled: list[str] = field(default_factory=list)
    double_bookings: int = 0
    unknown_to_client: int = 0
    phantom: int = 0
    unknown_state_flows: int = 0
    server_bookings: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (
            self.unhandled
            or self.double_bookings
            or self.unknown_to_client
            or self.phantom
            or self.unknown_state_flows
        )

    def lines(self) -> list[str]:
        return [
            f"flows: {self.flows} in {self.seconds:.1f} s; outcomes: {dict(sorted(self.outcomes.items()))}",
            f"why steps failed (typed errors the flows handled): {dict(sorted(self.failures.items()))}",
            f"faults injected: {dict(sorted(self.faults.items()))}",
            f"bookings made on the server: {self.server_bookings}",
            f"double bookings: {self.double_bookings}",
            f"bookings the client does not know about: {self.unknown_to_client}",
            f"bookings the client believes in that the server lacks: {self.phantom}",
            f"flows ending in an unknown state: {self.unknown_state_flows}",
            f"unhandled exceptions (outside PerfectGymError): {len(self.unhandled)} {self.unhandled[:3]}",
        ]


def _ambiguous(exc: BaseException) -> bool:
    """A failure after which the request may or may not have been carried out."""
    if isinstance(exc, APIConnectionError):
        return exc.may_have_reached_server
    return isinstance(exc, InternalServerError)


async def run_soak(
    flows: int = 1_000,
    tasks: int = 50,
    faults: Faults = FULL_FAULTS,
    seed: int = 7,
    days_ahead: int = 4,
    tamper: Callable[[Store, list[int]], None] | None = None,
) -> SoakReport:
    """``tamper(store, customers)`` runs between the flows and the audit (to test the audit)."""
    report = SoakReport(flows=flows)
    # What the client was told: booking id -> "active" / "canceled", per customer.
    believed: dict[int, str] = {}
    uncertain: set[int] = set()  # bookings of flows that ended "unknown": counted there, not twice
    async with Sandbox(seed=seed, faults=Faults()) as sandbox:
        store = sandbox.store
        customers = [store.add_customer().id for _ in range(tasks)]
        appointments = [a.id for a in store.appointments.values() if not a.premium_only]
        policy = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_cap=0.1)
        counter = iter(range(flows))
        started = time.perf_counter()
        sandbox.faults = faults
        async with AppointmentsClient(
            api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=policy
        ) as client:

            async def flow(rng: random.Random, customer: int) -> str:
                appointment = rng.choice(appointments)
                try:
                    slots = await client.get_slots(appointment, customer_id=customer, days_ahead=days_ahead)
                except PerfectGymError as exc:
                    report.failures[f"get_slots: {type(exc).__name__}"] += 1
                    return "no-slots-read"
                if len(slots) < 2:
                    return "no-free-slot"
                first, second = rng.sample(slots, 2)
                try:
                    booking = await client.book(customer, appointment, first)
                except BookingOutcomeUnknownError:
                    return "unknown"
                except PerfectGymError as exc:
                    # Any other error from book() promises that no booking was made; the audit checks it.
                    report.failures[f"book: {type(exc).__name__}"] += 1
                    return "book-failed"
                believed[booking.booking_id] = "active"
                with contextlib.suppress(PerfectGymError):  # a read; the booking stands either way
                    await client.get_booking(booking.booking_id)
                if rng.random() < 0.5:
                    return await reschedule(booking.booking_id, appointment, second)
                return await cancel(booking.booking_id)

            async def reschedule(booking_id: int, appointment: int, slot: Slot) -> str:
                try:
                    moved = await client.reschedule(booking_id, slot, bookable_appointment_id=appointment)
                except RescheduleError as exc:
                    report.failures[f"reschedule: RescheduleError({type(exc.cause).__name__})"] += 1
                    believed[exc.new_booking_id] = "active"
                    if _ambiguous(exc.cause):
                        uncertain.add(booking_id)
                        return "unknown"
                    return "rescheduled-both-kept"
                except BookingOutcomeUnknownError:
                    return "unknown"
                except PerfectGymError as exc:
                    report.failures[f"reschedule: {type(exc).__name__}"] += 1
                    return "reschedule-failed"  # nothing booked, the old booking untouched
                believed[booking_id] = "canceled"
                believed[moved.booking_id] = "active"
                return "rescheduled"

            async def cancel(booking_id: int) -> str:
                try:
                    await client.cancel_booking(booking_id)
                except PerfectGymError as exc:
                    report.failures[f"cancel: {type(exc).__name__}"] += 1
                    if _ambiguous(exc):
                        uncertain.add(booking_id)
                        return "unknown"
                    return "cancel-failed"
                believed[booking_id] = "canceled"
                return "canceled"

            async def worker(number: int) -> None:
                rng = random.Random(seed * 1000 + number)
                for _ in counter:
                    try:
                        outcome = await flow(rng, customers[number])
                    except Exception as exc:  # noqa: BLE001 - the soak's whole point is to count these
                        report.unhandled.append(f"{type(exc).__name__}: {exc}")
                        outcome = "unhandled"
                    report.outcomes[outcome] += 1

            async with anyio.create_task_group() as tg:
                for number in range(tasks):
                    tg.start_soon(worker, number)
        report.seconds = time.perf_counter() - started
        sandbox.faults = Faults()
        report.faults = dict(sandbox.fault_counts)
        if tamper is not None:
            tamper(store, customers)
        mine = [b for b in store.snapshot() if b.customer_id in set(customers)]
    report.server_bookings = len(mine)
    report.unknown_state_flows = report.outcomes["unknown"]
    active = Counter((b.customer_id, b.appointment_id, b.start) for b in mine if b.active)
    report.double_bookings = sum(n - 1 for n in active.values() if n > 1)
    on_server = {b.id: ("active" if b.active else "canceled") for b in mine}
    report.unknown_to_client = sum(
        1
        for i, s in on_server.items()
        if s == "active" and believed.get(i) != "active" and i not in uncertain
    )
    report.phantom = sum(
        1
        for i, s in believed.items()
        if s == "active" and on_server.get(i) != "active" and i not in uncertain
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=1_000)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    report = anyio.run(run_soak, args.flows, args.tasks)
    print("\n".join(report.lines()))
    print("soak: " + ("CLEAN" if report.clean else "PROBLEMS FOUND"))
    counts, wrong = anyio.run(sweep)
    print(
        f"bad-input sweep: {sum(counts.values())} malformed answers over {len(OPERATIONS)} operations: "
        f"{counts['typed']} typed errors, {counts['ok']} tolerant parses, {counts['bare']} bare exceptions; "
        f"{len(wrong)} cases handled wrongly"
    )
    for line in wrong:
        print("  " + line)
    return 0 if report.clean and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
