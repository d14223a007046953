"""Soak: many booking flows against a misbehaving sandbox, then the server's state is audited.

``scripts/soak`` runs the full one (1,000 flows from 50 tasks) once per HTTP backend (httpx and
aiohttp, both on asyncio; ``--http-backend`` picks one), then the bad-input sweep
(benchmarks/bad_input.py) on the same backends; ``tests/test_soak.py`` runs a small one. Each
flow reads the free slots of a random window over the studio's whole four-week horizon (past the
bookings list's two weeks, where a booking's id cannot be read back), books one, reads it back,
then reschedules or cancels it, all through one shared client, while the sandbox injects 429/503/409s, connection
resets, "commit then drop" on bookings and random latency, and one flow in ten is cancelled by
its caller at a random moment (as a web app's timeout would).

The audit compares the sandbox's store with what the client reported: its return values and
exceptions, and the ``on_booking_outcome`` hook (the only report a cancelled caller gets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import anyio

from perfectgym_appointments_client import (
    AppointmentsClient,
    BookingIdUnknownError,
    BookingOutcome,
    BookingOutcomeUnknownError,
    OutcomeKind,
    PerfectGymError,
    RescheduleError,
    RetryPolicy,
    Slot,
)
from perfectgym_appointments_client._zoned import instant
from perfectgym_appointments_client.sandbox import BOOKING_HORIZON, BookingRecord, Faults, Sandbox, Store

from .bad_input import HTTP_BACKENDS, OPERATIONS, sweep

FULL_FAULTS = Faults(
    rate_429=0.05, rate_503=0.05, rate_reset=0.05, rate_commit_then_drop=0.05, rate_409=0.03,
    latency_jitter=0.004, seed=1,
)  # fmt: skip


@dataclass
class SoakReport:
    flows: int
    http_backend: str = "httpx"
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # why a step failed: error class names
    hook: Counter[str] = field(default_factory=Counter)  # outcome kinds the hook reported
    unhandled: list[str] = field(default_factory=list)
    double_bookings: int = 0
    unknown_to_client: int = 0
    phantom: int = 0
    unknown_state_flows: int = 0
    hook_disagrees: int = 0
    caller_cancelled: int = 0
    unreported: int = 0
    reported_as_cancelled: int = 0
    server_bookings: int = 0
    far_bookings: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        # A flow may end "unknown" without fault of the client's: when another customer takes
        # the slot's room between a dropped request and the check, RESOURCE_NOT_AVAILABLE proves
        # neither way. It is reported (exception and hook, with customer and slot) and counted,
        # and what the client told is still audited; only a wrong or missing report fails.
        return not (
            self.unhandled
            or self.double_bookings
            or self.unknown_to_client
            or self.phantom
            or self.hook_disagrees
            or self.unreported
        )

    def lines(self) -> list[str]:
        return [
            f"[{self.http_backend}] flows: {self.flows} in {self.seconds:.1f} s; "
            f"outcomes: {dict(sorted(self.outcomes.items()))}",
            f"why steps failed (typed errors the flows handled): {dict(sorted(self.failures.items()))}",
            f"the hook reported: {dict(sorted(self.hook.items()))}",
            f"faults injected: {dict(sorted(self.faults.items()))}",
            f"bookings made on the server: {self.server_bookings} ({self.far_bookings} past the list's two weeks)",
            f"flows cancelled by their caller: {self.caller_cancelled} "
            f"({self.reported_as_cancelled} after their request was sent, reported by the hook)",
            f"double bookings: {self.double_bookings}",
            f"bookings unknown to the caller and the hook: {self.unknown_to_client}",
            f"bookings the client believes in that the server lacks: {self.phantom}",
            f"flows ending in an unknown state (reported as such, with customer and slot): {self.unknown_state_flows}",
            f"hook reports that contradict the return values: {self.hook_disagrees}",
            f"bookings on the server the hook never reported: {self.unreported}",
            f"unhandled exceptions (outside PerfectGymError): {len(self.unhandled)} {self.unhandled[:3]}",
        ]


async def run_soak(
    flows: int = 1_000,
    tasks: int = 50,
    faults: Faults = FULL_FAULTS,
    seed: int = 7,
    tamper: Callable[[Store, list[int]], None] | None = None,
    cancel_rate: float = 0.1,
    http_backend: str = "httpx",
) -> SoakReport:
    """The soak through a client on ``http_backend`` (``"aiohttp"``: asyncio only).
    ``tamper(store, customers)`` runs between the flows and the audit (to test the audit)."""
    report = SoakReport(flows=flows, http_backend=http_backend)
    returned: dict[int, str] = {}  # what return values said: booking id -> "active" / "canceled"
    abandoned: set[int] = set()  # bookings whose last step's caller was cancelled: no return value
    reported: list[BookingOutcome] = []  # what the hook said, in order
    # The rate limit is issue 12's; 1,000 flows need far more than 1,000 requests a minute to an
    # endpoint, and the soak is about what faults do to bookings.
    async with Sandbox(seed=seed, faults=Faults(), rate_limit=None) as sandbox:
        store = sandbox.store
        customers = [store.add_customer().id for _ in range(tasks)]
        appointments = [a.id for a in store.appointments.values() if not a.premium_only]
        today = store.now().date()
        policy = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_cap=0.1)
        counter = iter(range(flows))
        started = time.perf_counter()
        sandbox.faults = faults
        async with AppointmentsClient(
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            http_backend=http_backend,
            retry_policy=policy,
            on_booking_outcome=reported.append,
            booking_check_settle=0.05,
            rate_limit=None,  # as the sandbox's: thousands of requests a minute, on purpose
        ) as client:
            if client._api.backend.name != http_backend:
                raise RuntimeError(
                    f"the soak asked for {http_backend}, the client runs {client._api.backend.name}"
                )

            async def flow(rng: random.Random, customer: int, touched: list[int]) -> str:
                appointment = rng.choice(appointments)
                first_day = today + dt.timedelta(days=rng.randrange(BOOKING_HORIZON.days - 1))
                days = rng.choice([1, 2, 3, 6, 8])
                try:
                    slots = await client.get_slots(appointment, customer, days, first_day)
                except PerfectGymError as exc:
                    report.failures[f"get_slots: {type(exc).__name__}"] += 1
                    return "no-slots-read"
                if len(slots) < 2:
                    return "no-free-slot"
                first, second = rng.sample(slots, 2)
                try:
                    booking = await client.book(customer, appointment, first)
                except BookingIdUnknownError:
                    return "booked-id-unknown"
                except BookingOutcomeUnknownError:
                    return "unknown"
                except PerfectGymError as exc:
                    # Any other error from book() promises that no booking was made; the audit checks it.
                    report.failures[f"book: {type(exc).__name__}"] += 1
                    return "book-failed"
                returned[booking.booking_id] = "active"
                touched.append(booking.booking_id)
                try:
                    await client.get_booking(booking.booking_id)
                except PerfectGymError as exc:  # a read; the booking stands either way
                    report.failures[f"get_booking: {type(exc).__name__}"] += 1
                if rng.random() < 0.5:
                    return await reschedule(booking.booking_id, appointment, second)
                return await cancel(booking.booking_id)

            async def reschedule(booking_id: int, appointment: int, slot: Slot) -> str:
                try:
                    moved = await client.reschedule(booking_id, slot, bookable_appointment_id=appointment)
                except RescheduleError as exc:
                    report.failures[f"reschedule: RescheduleError({type(exc.cause).__name__})"] += 1
                    if exc.new_booking_id is not None:
                        returned[exc.new_booking_id] = "active"
                    return "rescheduled-both-kept"
                except PerfectGymError as exc:
                    report.failures[f"reschedule: {type(exc).__name__}"] += 1
                    return "reschedule-failed"  # nothing booked, the old booking untouched
                returned[booking_id] = "canceled"
                returned[moved.booking_id] = "active"
                return "rescheduled"

            async def cancel(booking_id: int) -> str:
                try:
                    await client.cancel_booking(booking_id)
                except PerfectGymError as exc:
                    report.failures[f"cancel: {type(exc).__name__}"] += 1
                    return "cancel-failed"
                returned[booking_id] = "canceled"
                return "canceled"

            async def worker(number: int) -> None:
                rng = random.Random(seed * 1000 + number)
                for _ in counter:
                    # Anywhere in the flow: reading slots, validating, booking, checking, cancelling.
                    patience = rng.uniform(0.0, 0.5) if rng.random() < cancel_rate else math.inf
                    outcome = "caller-cancelled"
                    touched: list[int] = []
                    with anyio.move_on_after(patience) as scope:
                        try:
                            outcome = await flow(rng, customers[number], touched)
                        except Exception as exc:  # noqa: BLE001 - the soak's whole point is to count these
                            report.unhandled.append(f"{type(exc).__name__}: {exc}")
                            outcome = "unhandled"
                    if scope.cancelled_caught:
                        abandoned.update(touched)
                        report.caller_cancelled += 1
                        outcome = "caller-cancelled"
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
    _audit(report, mine, {i: s for i, s in returned.items() if i not in abandoned}, reported, store.now())
    return report


def _audit(
    report: SoakReport,
    mine: list[BookingRecord],
    returned: dict[int, str],
    reported: list[BookingOutcome],
    now: dt.datetime,
) -> None:
    # What the hook said, applied in order (one booking's flows run one after another).
    known: dict[int, str] = {}
    id_unknown: set[tuple[int, dt.timedelta]] = set()  # booked (or maybe booked), id unknown
    uncertain: set[int] = set()  # cancels reported as unknown
    for outcome in reported:
        report.hook[str(outcome.kind)] += 1
        if outcome.kind in (OutcomeKind.BOOKED, OutcomeKind.RESCHEDULED, OutcomeKind.BOTH_BOOKINGS):
            if outcome.booking_id is not None:
                known[outcome.booking_id] = "active"
            elif outcome.customer_id is not None and outcome.start_date_time is not None:
                # both bookings, the new one's id unreadable (past the list's window)
                id_unknown.add((outcome.customer_id, instant(outcome.start_date_time)))
        elif outcome.kind is OutcomeKind.CANCELED and outcome.booking_id is not None:
            known[outcome.booking_id] = "canceled"
        elif outcome.kind is OutcomeKind.BOOKED_ID_UNKNOWN:
            assert outcome.customer_id is not None
            assert outcome.start_date_time is not None
            id_unknown.add((outcome.customer_id, instant(outcome.start_date_time)))
        elif outcome.kind is OutcomeKind.UNKNOWN:
            # Reported as unknown, with the customer and slot (or the booking): the caller was
            # told to look before acting; the audit counts it, but holds nothing against it.
            report.unknown_state_flows += 1
            if outcome.customer_id is not None and outcome.start_date_time is not None:
                id_unknown.add((outcome.customer_id, instant(outcome.start_date_time)))
            if outcome.booking_id is not None:
                uncertain.add(outcome.booking_id)
        for canceled in outcome.canceled_booking_ids:
            known[canceled] = "canceled"
    report.hook_disagrees = sum(1 for i, state in returned.items() if known.get(i) != state)
    report.server_bookings = len(mine)
    report.far_bookings = sum(1 for b in mine if b.end - now > dt.timedelta(days=14))
    active = Counter((b.customer_id, instant(b.start)) for b in mine if b.active)
    report.double_bookings = sum(n - 1 for n in active.values() if n > 1)
    on_server = {b.id: ("active" if b.active else "canceled") for b in mine}
    unknown = [
        b
        for b in mine
        if b.active
        and known.get(b.id) != "active"
        and b.id not in uncertain
        and (b.customer_id, instant(b.start)) not in id_unknown
    ]
    report.unknown_to_client = len(unknown)
    report.phantom = sum(
        1 for i, s in known.items() if s == "active" and on_server.get(i) != "active" and i not in uncertain
    )
    # A cancelled caller learns only through the hook, so every booking the server holds, active or
    # canceled, must have been reported by it.
    report.unreported = sum(
        1 for b in mine if b.id not in known and (b.customer_id, instant(b.start)) not in id_unknown
    )
    report.reported_as_cancelled = sum(1 for o in reported if o.caller_cancelled)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=1_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument(
        "--http-backend",
        choices=[*HTTP_BACKENDS, "both"],
        default="both",
        help="the client's HTTP backend; both (the default): the soak and the sweep once per backend",
    )
    args = parser.parse_args()
    backends = HTTP_BACKENDS if args.http_backend == "both" else (args.http_backend,)
    ok = True
    recap: dict[str, list[str]] = {backend: [] for backend in backends}
    # A fresh sandbox and event loop per soak: asyncio, the one loop both backends run on.
    for backend in backends:
        report = anyio.run(partial(run_soak, args.flows, args.tasks, http_backend=backend))
        verdict = "CLEAN" if report.clean else "PROBLEMS FOUND"
        print("\n".join(report.lines()))
        print(f"soak on {backend}: {verdict}")
        recap[backend].append(f"soak {verdict} ({report.flows} flows in {report.seconds:.1f} s)")
        ok = ok and report.clean
    for backend, (counts, wrong) in anyio.run(sweep, backends).items():
        print(
            f"bad-input sweep on {backend}: {sum(counts.values())} malformed answers over "
            f"{len(OPERATIONS)} operations: {counts['typed']} typed errors, {counts['ok']} tolerant "
            f"parses, {counts['bare']} bare exceptions; {len(wrong)} cases handled wrongly"
        )
        for line in wrong:
            print("  " + line)
        recap[backend].append(f"sweep {len(wrong)} wrong of {sum(counts.values())}")
        ok = ok and not wrong
    for backend, parts in recap.items():
        print(f"{backend}: {'; '.join(parts)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
