"""What the booking journal costs per booking: ``python -m benchmarks.journal`` (RESULTS.md, section 13).

Bookings of the demo customer (one a slot, over the sandbox's four weeks: validate, then book),
made one after another by one client against a sandbox in a process of its own, without a
journal, with a SQLite journal (a file in a temporary folder) and with a Redis journal (a real
redis-server on a free loopback port), in interleaved rounds. Per booking: the wall time and the
client process's CPU time, and what the journal adds to each (median of the rounds). A booking
with a journal makes three journal calls: the resubmit lookup before validating, the intent
before the request, the outcome after the report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from typing import Any

import anyio

from benchmarks._common import KEY, sandbox_process
from benchmarks.redis_process import RedisMissing, RedisProcess
from perfectgym_appointments_client import AppointmentsClient

DEMO_CUSTOMER = 1210005199


async def _slots(base_url: str, count: int) -> list[tuple[int, Any]]:
    """``count`` distinct (appointment, slot) pairs the demo customer may book, none overlapping
    another (a customer is in one booking at a time)."""
    async with AppointmentsClient(api_key=KEY, base_url=base_url, rate_limit=None) as client:
        found: list[tuple[int, Any]] = []
        taken: list[tuple[float, float]] = []
        async for appointment in client.bookable_appointments(slice_size=100):
            if appointment.title and any(w in appointment.title for w in ("Plus", "Extended", "Premium")):
                continue
            for week in range(4):
                start = dt.date.today() + dt.timedelta(days=1 + 7 * week)
                for slot in await client.get_slots(
                    appointment.id, customer_id=DEMO_CUSTOMER, days_ahead=6, start_date=start
                ):
                    begins, ends = slot.start_date_time.timestamp(), slot.end_date_time.timestamp()
                    if all(
                        ends <= other_begins or begins >= other_ends for other_begins, other_ends in taken
                    ):
                        taken.append((begins, ends))
                        found.append((appointment.id, slot))
                        break
            if len(found) >= count:
                return found[:count]
    return found


async def _book_all(base_url: str, pairs: list[tuple[int, Any]], journal: str | None) -> tuple[float, float]:
    async with AppointmentsClient(
        api_key=KEY, base_url=base_url, rate_limit=None, journal=journal, booking_check_settle=0
    ) as client:
        wall, cpu = time.perf_counter(), time.process_time()
        for appointment_id, slot in pairs:
            await client.book(customer_id=DEMO_CUSTOMER, bookable_appointment_id=appointment_id, slot=slot)
        return (time.perf_counter() - wall) / len(pairs), (time.process_time() - cpu) / len(pairs)


async def measure(rounds: int, per_round: int) -> dict[str, Any]:
    redis: RedisProcess | None = None
    try:
        redis = RedisProcess().start()
    except RedisMissing:
        redis = None
    results: dict[str, dict[str, list[float]]] = {"none": {"wall": [], "cpu": []}}
    try:
        with tempfile.TemporaryDirectory() as folder:
            kinds: dict[str, str | None] = {"none": None, "sqlite": f"sqlite:///{folder}/journal.db"}
            if redis is not None:
                kinds["redis"] = redis.url
            for round_number in range(rounds):
                # A fresh sandbox a round: every kind books the same number of new slots.
                with sandbox_process("--appointments", "132") as base_url:
                    pairs = await _slots(base_url, per_round * len(kinds))
                    # Each round in another order: none of them always goes first (a cold start).
                    order = list(kinds.items())
                    order = order[round_number % len(order) :] + order[: round_number % len(order)]
                    for index, (name, journal) in enumerate(order):
                        share = pairs[index * per_round : (index + 1) * per_round]
                        wall, cpu = await _book_all(base_url, share, journal)
                        results.setdefault(name, {"wall": [], "cpu": []})
                        results[name]["wall"].append(wall)
                        results[name]["cpu"].append(cpu)
                print(f"  round {round_number + 1} of {rounds}", flush=True)
    finally:
        if redis is not None:
            redis.close()
    return {
        name: {key: statistics.median(values) for key, values in figures.items()}
        for name, figures in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=8)
    # The demo customer's booking limit stops a round of 3 x 40.
    parser.add_argument("--per-round", type=int, default=15, help="bookings per kind and round")
    args = parser.parse_args()
    figures = anyio.run(measure, args.rounds, args.per_round)
    base = figures["none"]
    print(
        f"\nMeasured {dt.date.today()} (`python -m benchmarks.journal`), {args.rounds} rounds of {args.per_round} bookings each:\n"
    )
    print("| journal | wall per booking | client CPU per booking | added wall | added CPU |")
    print("|---|---|---|---|---|")
    for name, values in figures.items():
        print(
            f"| {name} | {values['wall'] * 1000:.2f} ms | {values['cpu'] * 1000:.2f} ms "
            f"| {(values['wall'] - base['wall']) * 1000:+.2f} ms | {(values['cpu'] - base['cpu']) * 1000:+.2f} ms |"
        )


if __name__ == "__main__":
    main()
