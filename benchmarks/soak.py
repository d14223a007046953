"""Soak: many booking flows against a misbehaving sandbox, then the server's state is audited.

``scripts/soak`` runs the full one (1,000 flows from 50 tasks) once per HTTP backend (httpx and
aiohttp, both on asyncio; ``--http-backend`` picks one), then the bad-input sweep
(benchmarks/bad_input.py) on the same backends; ``tests/test_soak.py`` runs a small one. Each
flow reads the free slots of a random window over the studio's whole four-week horizon (past the
bookings list's two weeks, where a booking's id cannot be read back), books one, reads it back,
then reschedules or cancels it, all through one shared client, while the sandbox injects 429/503/409s, connection
resets, "commit then drop" on bookings and random latency, and one flow in ten is cancelled by
its caller at a random moment (as a web app's timeout would).

Three production faults besides:

* The rate limit's Redis fails (where a redis-server is installed; ``--no-redis`` leaves it out):
  the shared client keeps its budget on a real redis-server (``RateLimit(storage=...)``) that is
  stopped (SIGTERM) and started again, then frozen (SIGSTOP) and thawed, in turn, at 1/6, 2/6,
  ... of the flows. The client falls back to an in-process budget (one WARNING per outage), goes
  on calling, and comes back to Redis; the report counts the outages, the returns, and the
  requests served and flows ended while Redis was failing.
* Resubmits: one flow in ten books the same slot twice, from a second tab at the same time, or
  again right after a browser disconnect cancelled the first attempt's caller (whose flow may
  still be running). The client returns the booking the member holds (``already_existed``,
  outcome ``ALREADY_BOOKED``) instead of a second booking.
* A client closed under its flows: a few times during the run, a client of its own starts some
  flows, their callers are cancelled while a booking is at the server, and the client is closed
  (``aclose()``, or the end of its ``async with``). Closing waits for those flows, so their
  outcomes still reach the hook (an async hook that takes its time, as a database write would).

The audit compares the sandbox's store with what the client reported: its return values and
exceptions, and the ``on_booking_outcome`` hook (the only report a cancelled caller gets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import anyio
import attrs

from perfectgym_appointments_client import (
    AppointmentsClient,
    Booking,
    BookingIdUnknownError,
    BookingOutcome,
    BookingOutcomeUnknownError,
    OutcomeKind,
    PerfectGymError,
    RateLimit,
    RescheduleError,
    RetryPolicy,
    Slot,
)
from perfectgym_appointments_client._zoned import instant
from perfectgym_appointments_client.sandbox import BOOKING_HORIZON, BookingRecord, Faults, Sandbox, Store

from .bad_input import HTTP_BACKENDS, OPERATIONS, sweep
from .redis_process import RedisMissing, RedisProcess

FULL_FAULTS = Faults(
    rate_429=0.05, rate_503=0.05, rate_reset=0.05, rate_commit_then_drop=0.05, rate_409=0.03,
    latency_jitter=0.004, seed=1,
)  # fmt: skip

LOGGER = "perfectgym_appointments_client"
STORAGE_FAILED = "the rate-limit storage failed"  # the client's WARNING, once per outage
CLOSED_EARLY = "closing the client while"  # aclose() gave up waiting for its flows
# Redis faults: stop/start and freeze/thaw in turn, at 1/6, 2/6, ... of the flows.
REDIS_FAULTS = 4
REDIS_TIMEOUT = 0.1  # RateLimit.storage_timeout: a frozen Redis costs this per call
REDIS_RETRY_AFTER = 0.3  # RateLimit.storage_retry_after: Redis asked again this soon after it failed
OUTAGE_HOLD = 0.15  # seconds each fault lasts once the client noticed it
NOTICE_WAIT = 1.0  # at most this long for the client to notice a fault
BACK_WAIT = 3.0  # and for the main client to be back on Redis after it answers again
# Resubmits: a second tab at the same time, or a new attempt after a browser disconnect.
SECOND_TAB = "second tab"
AFTER_DISCONNECT = "after a disconnect"
# The first attempt's caller goes away this many round trips (the flow's slots read) after it
# began: about when its validation or its booking request is at the server. A booking (validate,
# then book: two small answers) often takes less than one slots read, so more than 1.5 would
# mostly come after it returned (a loaded run saw 0 of 10 first attempts abandoned at 0.5..3).
DISCONNECT_AFTER = (0.2, 1.5)
# Clients closed under their flows.
CLOSE_ROUNDS = 2
CLOSE_FLOWS = 3  # flows on each such client
CLOSE_WAIT = 10.0  # at most this long for one of them to have a booking at the server
HOOK_DELAY = 0.05  # the closed clients' hook: an app writing the outcome to its database
MADE = (OutcomeKind.BOOKED, OutcomeKind.RESCHEDULED, OutcomeKind.BOTH_BOOKINGS)
NO_BOOKING = ("unknown", "booked-id-unknown", "book-failed")  # what a book step ended with, worst first


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
    requests: int = 0  # requests the sandbox served
    # Redis faults
    redis: str = "off"
    redis_faults: Counter[str] = field(default_factory=Counter)  # stopped, restarted, frozen, thawed
    outages: int = 0  # WARNINGs "the rate-limit storage failed": one per outage
    back_on_redis: int = 0  # faults after which the main client was back on Redis
    back_on_redis_s: list[float] = field(default_factory=list)  # how long after Redis answered
    outage_requests: int = 0  # requests the sandbox served while Redis was failing
    outage_flows: int = 0  # flows that ended meanwhile
    redis_problems: list[str] = field(default_factory=list)  # the fault injection's own failures
    # Resubmits
    resubmits: Counter[str] = field(default_factory=Counter)
    disconnected: int = 0  # first attempts whose caller went away before they returned
    disconnected_after_sending: int = 0  # of those, with their booking request sent (the hook says)
    already_existed: int = 0  # book() returns with already_existed=True
    made_twice: int = 0  # booking ids two flows both reported as made (BOOKED, RESCHEDULED...)
    stale_reports: int = 0  # "made" reports of a booking the hook had reported canceled already
    # Clients closed under their flows
    closes: int = 0
    closes_while_running: int = 0
    flows_running_at_close: int = 0
    reports_during_close: int = 0
    late_reports: int = 0  # outcomes reported after aclose() returned: it did not wait
    close_cut_short: int = 0  # aclose() gave up waiting ("closing the client while ...")

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
            or self.made_twice
            or self.late_reports
            or self.close_cut_short
        )

    def lines(self) -> list[str]:
        back = (
            f", at most {max(self.back_on_redis_s):.2f} s after it answered" if self.back_on_redis_s else ""
        )
        redis = (
            f"Redis faults: {dict(sorted(self.redis_faults.items()))}; the client fell back to an "
            f"in-process budget {self.outages} times ('{STORAGE_FAILED}') and was back on Redis "
            f"after {self.back_on_redis} of them{back}; calls went on meanwhile: "
            f"{self.outage_requests} requests served, {self.outage_flows} flows ended"
            + (f"; fault injection problems: {self.redis_problems}" if self.redis_problems else "")
            if self.redis.startswith("on")
            else f"Redis faults: {self.redis}"
        )
        return [
            f"[{self.http_backend}] flows: {self.flows} in {self.seconds:.1f} s ({self.requests} requests); "
            f"outcomes: {dict(sorted(self.outcomes.items()))}",
            f"why steps failed (typed errors the flows handled): {dict(sorted(self.failures.items()))}",
            f"the hook reported: {dict(sorted(self.hook.items()))}",
            f"faults injected: {dict(sorted(self.faults.items()))}",
            redis,
            f"resubmits of the same slot: {dict(sorted(self.resubmits.items()))} "
            f"({self.disconnected} first attempts abandoned by a disconnect, "
            f"{self.disconnected_after_sending} of them after their booking request was sent); "
            f"returned already_existed: {self.already_existed}",
            f"clients closed while their flows ran: {self.closes_while_running} of {self.closes} "
            f"({self.flows_running_at_close} flows running at the close, {self.reports_during_close} "
            f"outcomes reported while it closed, {self.late_reports} after; "
            f"{self.close_cut_short} closes that stopped waiting)",
            f"bookings made on the server: {self.server_bookings} ({self.far_bookings} past the list's two weeks)",
            f"flows cancelled by their caller: {self.caller_cancelled} "
            f"({self.reported_as_cancelled} after their request was sent, reported by the hook)",
            f"double bookings: {self.double_bookings}",
            f"bookings unknown to the caller and the hook: {self.unknown_to_client}",
            f"bookings the client believes in that the server lacks: {self.phantom}",
            f"flows ending in an unknown state (reported as such, with customer and slot): {self.unknown_state_flows}",
            f"hook reports that contradict the return values: {self.hook_disagrees}",
            f"bookings on the server the hook never reported: {self.unreported}",
            f"booking ids reported as made by two flows: {self.made_twice} "
            f"(made-reports after the booking's cancel, applied as canceled: {self.stale_reports})",
            f"unhandled exceptions (outside PerfectGymError): {len(self.unhandled)} {self.unhandled[:3]}",
        ]


class _Messages(logging.Handler):
    """Counts the client's log records that start with one of ``prefixes``."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__(logging.WARNING)
        self.prefixes = prefixes
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for prefix in self.prefixes:
            if message.startswith(prefix):
                self.counts[prefix] += 1


@dataclass
class _Progress:
    """The flows handed out so far, shared by the workers and the fault tasks."""

    flows: int
    drawn: int = 0

    def take(self) -> bool:
        if self.drawn >= self.flows:
            return False
        self.drawn += 1
        return True

    async def reached(self, fraction: float) -> None:
        await _until(lambda: self.drawn >= self.flows * fraction)


async def _until(condition: Callable[[], bool], period: float = 0.01) -> None:
    """Return once ``condition()`` holds: state that other tasks, threads and the log change."""
    while not condition():  # noqa: ASYNC110 - polled: none of that state has an event to wait on
        await anyio.sleep(period)


def _flows_running(client: AppointmentsClient) -> int:
    """Booking flows of ``client`` still running (past the point where they run to their end)."""
    return client._flows._shield.in_flight.count


async def run_soak(
    flows: int = 1_000,
    tasks: int = 50,
    faults: Faults = FULL_FAULTS,
    seed: int = 7,
    tamper: Callable[[Store, list[int]], None] | None = None,
    cancel_rate: float = 0.1,
    http_backend: str = "httpx",
    *,
    redis: bool = True,
    resubmit_rate: float = 0.1,
    close_rounds: int = CLOSE_ROUNDS,
    journal: str | None = None,
) -> SoakReport:
    """The soak through a client on ``http_backend`` (``"aiohttp"``: asyncio only); with
    ``journal`` (a ``sqlite:///`` or ``redis://`` URL) every client writes a booking journal there.
    ``tamper(store, customers)`` runs between the flows and the audit (to test the audit).
    ``redis``: the Redis faults, where a redis-server is installed; ``resubmit_rate``: the share
    of flows that book their slot twice; ``close_rounds``: clients closed under their flows."""
    report = SoakReport(flows=flows, http_backend=http_backend)
    server: RedisProcess | None = None
    if redis:
        try:
            server = RedisProcess()
        except RedisMissing as exc:
            report.redis = f"skipped ({exc})"
        else:
            await anyio.to_thread.run_sync(server.start)
            report.redis = f"on (a redis-server on port {server.port})"
    else:
        report.redis = "off (--no-redis)"
    messages = _Messages(STORAGE_FAILED, CLOSED_EARLY)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(messages)
    try:
        return await _soak(
            report, flows, tasks, faults, seed, tamper, cancel_rate, http_backend, server, messages,
            resubmit_rate, close_rounds, journal,
        )  # fmt: skip
    finally:
        logger.removeHandler(messages)
        if server is not None:
            await anyio.to_thread.run_sync(server.close)


async def _soak(
    report: SoakReport,
    flows: int,
    tasks: int,
    faults: Faults,
    seed: int,
    tamper: Callable[[Store, list[int]], None] | None,
    cancel_rate: float,
    http_backend: str,
    server: RedisProcess | None,
    messages: _Messages,
    resubmit_rate: float,
    close_rounds: int,
    journal: str | None = None,
) -> SoakReport:
    returned: dict[int, str] = {}  # what return values said: booking id -> "active" / "canceled"
    returned_slot: dict[int, tuple[int, dt.timedelta]] = {}  # booking id -> customer, start (book's)
    abandoned: set[int] = set()  # bookings whose last step's caller was cancelled: no return value
    reported: list[BookingOutcome] = []  # what the hook said, in order
    disconnects: set[tuple[int, dt.timedelta]] = set()  # customer, start of abandoned first attempts
    progress = _Progress(flows)
    if server is not None:
        # A client-side rate limit takes a 429 without Retry-After as the API's lockout of the
        # endpoint for its span; the injected 429s (and 503s) say Retry-After: 0, so that they
        # are retried as before instead of closing endpoints for the rest of the run.
        faults = attrs.evolve(faults, retry_after=0)
        # Far more than the API's 1,000 a minute (the soak is about what faults do to bookings),
        # but counted on Redis, and on the process's own budget while Redis fails.
        rate_limit: RateLimit | None = RateLimit(
            requests=1_000_000,
            seconds=60,
            storage=server.url,
            storage_timeout=REDIS_TIMEOUT,
            storage_retry_after=REDIS_RETRY_AFTER,
        )
    else:
        rate_limit = None  # as the sandbox's: thousands of requests a minute, on purpose
    # The sandbox's own rate limit is issue 12's; 1,000 flows need far more than 1,000 requests
    # a minute to an endpoint.
    async with Sandbox(seed=seed, faults=Faults(), rate_limit=None) as sandbox:
        store = sandbox.store
        customers = [store.add_customer().id for _ in range(tasks)]
        closing_customers = [store.add_customer().id for _ in range(CLOSE_FLOWS if close_rounds else 0)]
        appointments = [a.id for a in store.appointments.values() if not a.premium_only]
        today = store.now().date()
        policy = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_cap=0.1)

        def new_client(
            hook: Callable[[BookingOutcome], Awaitable[None] | None], limit: RateLimit | None
        ) -> AppointmentsClient:
            return AppointmentsClient(
                api_key=sandbox.api_key,
                base_url=sandbox.base_url,
                http_backend=http_backend,
                retry_policy=policy,
                on_booking_outcome=hook,
                booking_check_settle=0.05,
                rate_limit=limit,
                journal=journal,
            )

        # The clients closed under their flows keep their budget in-process: a call cancelled
        # while its turn is being asked of Redis (a worker-thread hop that is not cancellable)
        # sends once the hop returns, even when the client closed meanwhile; aiohttp then opens
        # a session nobody closes, httpx raises a bare RuntimeError. A client bug, reported;
        # with `closing_limit = rate_limit` the soak finds it now and then.
        closing_limit = None if rate_limit is None else attrs.evolve(rate_limit, storage=None)

        started = time.perf_counter()
        sandbox.faults = faults
        async with new_client(reported.append, rate_limit) as client:
            if client._api.backend.name != http_backend:
                raise RuntimeError(
                    f"the soak asked for {http_backend}, the client runs {client._api.backend.name}"
                )

            async def attempt(
                on: AppointmentsClient, customer: int, appointment: int, slot: Slot
            ) -> Booking | str:
                try:
                    return await on.book(customer_id=customer, bookable_appointment_id=appointment, slot=slot)
                except BookingIdUnknownError:
                    return "booked-id-unknown"
                except BookingOutcomeUnknownError:
                    return "unknown"
                except PerfectGymError as exc:
                    # Any other error from book() promises that no booking was made; the audit checks it.
                    report.failures[f"book: {type(exc).__name__}"] += 1
                    return "book-failed"

            async def resubmitted(
                on: AppointmentsClient,
                rng: random.Random,
                customer: int,
                appointment: int,
                slot: Slot,
                kind: str,
                round_trip: float,
            ) -> list[Booking | str]:
                """The member books ``slot`` twice: from two tabs at once, or again right after
                the first attempt's caller went away (its flow may still be running)."""
                report.resubmits[kind] += 1
                results: list[Booking | str] = []

                async def one() -> None:
                    results.append(await attempt(on, customer, appointment, slot))

                if kind == SECOND_TAB:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(one)
                        tg.start_soon(one)
                    return results
                first = anyio.CancelScope()

                async def first_attempt() -> None:
                    with first:
                        await one()
                    if first.cancelled_caught:
                        report.disconnected += 1
                        disconnects.add((customer, instant(slot.start_date_time)))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(first_attempt)  # a request handler of its own, as in a web app
                    await anyio.sleep(min(rng.uniform(*DISCONNECT_AFTER) * round_trip, 1.0))
                    first.cancel()  # the browser went away
                    await one()  # and the member presses "Book" again
                return results

            async def flow(
                on: AppointmentsClient,
                rng: random.Random,
                customer: int,
                touched: list[int],
                resubmit: str | None,
            ) -> str:
                appointment = rng.choice(appointments)
                first_day = today + dt.timedelta(days=rng.randrange(BOOKING_HORIZON.days - 1))
                days = rng.choice([1, 2, 3, 6, 8])
                asked = time.perf_counter()
                try:
                    slots = await on.get_slots(
                        appointment, customer_id=customer, days_ahead=days, start_date=first_day
                    )
                except PerfectGymError as exc:
                    report.failures[f"get_slots: {type(exc).__name__}"] += 1
                    return "no-slots-read"
                if len(slots) < 2:
                    return "no-free-slot"
                first, second = rng.sample(slots, 2)
                if resubmit is None:
                    results = [await attempt(on, customer, appointment, first)]
                else:
                    round_trip = time.perf_counter() - asked
                    results = await resubmitted(on, rng, customer, appointment, first, resubmit, round_trip)
                bookings = [r for r in results if isinstance(r, Booking)]
                for made in bookings:
                    returned[made.booking_id] = "active"
                    returned_slot[made.booking_id] = (customer, instant(made.start_date_time))
                    touched.append(made.booking_id)
                    report.already_existed += made.already_existed
                if not bookings:
                    return min((r for r in results if isinstance(r, str)), key=NO_BOOKING.index)
                # Go on with the booking the member made (or, if every attempt found it held, that one).
                booking = next((b for b in bookings if not b.already_existed), bookings[0])
                try:
                    await on.get_booking(booking.booking_id)
                except PerfectGymError as exc:  # a read; the booking stands either way
                    report.failures[f"get_booking: {type(exc).__name__}"] += 1
                if rng.random() < 0.5:
                    return await reschedule(on, booking.booking_id, appointment, second)
                return await cancel(on, booking.booking_id)

            async def reschedule(
                on: AppointmentsClient, booking_id: int, appointment: int, slot: Slot
            ) -> str:
                try:
                    moved = await on.reschedule(booking_id, slot, bookable_appointment_id=appointment)
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

            async def cancel(on: AppointmentsClient, booking_id: int) -> str:
                try:
                    await on.cancel_booking(booking_id)
                except PerfectGymError as exc:
                    report.failures[f"cancel: {type(exc).__name__}"] += 1
                    return "cancel-failed"
                returned[booking_id] = "canceled"
                return "canceled"

            async def one_flow(
                on: AppointmentsClient,
                rng: random.Random,
                customer: int,
                caller: anyio.CancelScope,
                resubmit: str | None = None,
            ) -> None:
                outcome = "caller-cancelled"
                touched: list[int] = []
                with caller:
                    try:
                        outcome = await flow(on, rng, customer, touched, resubmit)
                    except Exception as exc:  # noqa: BLE001 - the soak's whole point is to count these
                        report.unhandled.append(f"{type(exc).__name__}: {exc}")
                        outcome = "unhandled"
                if caller.cancelled_caught:
                    abandoned.update(touched)
                    report.caller_cancelled += 1
                    outcome = "caller-cancelled"
                report.outcomes[outcome] += 1

            async def worker(number: int) -> None:
                rng = random.Random(seed * 1000 + number)
                while progress.take():
                    # Anywhere in the flow: reading slots, validating, booking, checking, cancelling.
                    patience = rng.uniform(0.0, 0.5) if rng.random() < cancel_rate else math.inf
                    resubmit = None
                    if rng.random() < resubmit_rate:
                        resubmit = rng.choice([SECOND_TAB, AFTER_DISCONNECT])
                    await one_flow(client, rng, customers[number], anyio.move_on_after(patience), resubmit)

            async def close_under_flows(number: int, members: list[int]) -> None:
                """A client of its own runs a flow per member; once a booking of theirs is at the
                server, their callers are cancelled and the client closed while the flows run."""
                phase = ["running"]

                async def hook(outcome: BookingOutcome) -> None:
                    await anyio.sleep(HOOK_DELAY)  # an app writing the outcome to its database
                    reported.append(outcome)
                    if phase[0] == "closing":
                        report.reports_during_close += 1
                    elif phase[0] == "closed":
                        report.late_reports += 1

                ended = [False] * len(members)

                async def call(on: AppointmentsClient, index: int, caller: anyio.CancelScope) -> None:
                    rng = random.Random(seed * 1_000_003 + number * 100 + index)
                    await one_flow(on, rng, members[index], caller)
                    ended[index] = True

                async with anyio.create_task_group() as callers:
                    other = new_client(hook, closing_limit)
                    async with other:
                        scopes = [anyio.CancelScope() for _ in members]
                        for index, scope in enumerate(scopes):
                            callers.start_soon(call, other, index, scope)
                        with anyio.move_on_after(CLOSE_WAIT):
                            await _until(lambda: _flows_running(other) > 0 or all(ended), 0.002)
                        for scope in scopes:
                            scope.cancel()  # the browsers went away (or the web app shuts down)
                        running = _flows_running(other)
                        phase[0] = "closing"
                        if number % 2 == 0:
                            await other.aclose()  # then the end of `async with` closes it again: a no-op
                            phase[0] = "closed"
                    phase[0] = "closed"
                report.closes += 1
                report.closes_while_running += running > 0
                report.flows_running_at_close += running

            async def closer() -> None:
                for number in range(close_rounds):
                    await progress.reached((number + 1) / (close_rounds + 1))
                    taken = sum(progress.take() for _ in closing_customers)
                    if not taken:
                        return
                    await close_under_flows(number, closing_customers[:taken])

            async def redis_faults(redis: RedisProcess) -> None:
                throttle = client._api.throttle
                assert throttle is not None
                for number in range(REDIS_FAULTS):
                    await progress.reached((number + 1) / (REDIS_FAULTS + 2))
                    stopped = number % 2 == 0
                    warned = messages.counts[STORAGE_FAILED]
                    served, ended = sandbox.stats["requests"], sum(report.outcomes.values())
                    injected = False
                    try:
                        await anyio.to_thread.run_sync(redis.stop if stopped else redis.freeze)
                        injected = True
                        report.redis_faults["stopped" if stopped else "frozen"] += 1
                        with anyio.move_on_after(NOTICE_WAIT):
                            await _until(partial(lambda seen: messages.counts[STORAGE_FAILED] > seen, warned))
                        await anyio.sleep(OUTAGE_HOLD)
                    finally:
                        # Only a fault that happened is undone: a second redis-server on the port
                        # would be left running. (run_soak's end stops whichever one runs.)
                        with anyio.CancelScope(shield=True):
                            if injected:
                                try:
                                    await anyio.to_thread.run_sync(redis.start if stopped else redis.thaw)
                                except RuntimeError as exc:  # redis-server did not start again
                                    report.redis_problems.append(str(exc))
                                else:
                                    report.redis_faults["restarted" if stopped else "thawed"] += 1
                            report.outage_requests += sandbox.stats["requests"] - served
                            report.outage_flows += sum(report.outcomes.values()) - ended
                    if report.redis_problems:
                        return
                    answered = time.perf_counter()
                    with anyio.move_on_after(BACK_WAIT):
                        await _until(lambda: throttle.shared)
                    if throttle.shared:
                        report.back_on_redis += 1
                        report.back_on_redis_s.append(time.perf_counter() - answered)

            async with anyio.create_task_group() as background:
                if server is not None:
                    background.start_soon(redis_faults, server)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(closer)
                    for number in range(tasks):
                        tg.start_soon(worker, number)
                background.cancel_scope.cancel()  # the flows are done: no more Redis faults
        report.seconds = time.perf_counter() - started
        sandbox.faults = Faults()
        report.faults = dict(sandbox.fault_counts)
        report.requests = sandbox.stats["requests"]
        report.outages = messages.counts[STORAGE_FAILED]
        report.close_cut_short = messages.counts[CLOSED_EARLY]
        everyone = customers + closing_customers
        if tamper is not None:
            tamper(store, everyone)
        mine = [b for b in store.snapshot() if b.customer_id in set(everyone)]
    _audit(
        report,
        mine,
        {i: s for i, s in returned.items() if i not in abandoned},
        reported,
        store.now(),
        returned_slot=returned_slot,
        disconnects=disconnects,
    )
    return report


def _audit(
    report: SoakReport,
    mine: list[BookingRecord],
    returned: dict[int, str],
    reported: list[BookingOutcome],
    now: dt.datetime,
    *,
    returned_slot: dict[int, tuple[int, dt.timedelta]] | None = None,
    disconnects: set[tuple[int, dt.timedelta]] | None = None,
) -> None:
    # What the hook said, applied in order (one booking's flows run one after another). A canceled
    # booking stays canceled: a "made" report that comes after its cancel (two flows of one member,
    # a resubmit's) does not bring it back.
    known: dict[int, str] = {}
    made: Counter[int] = Counter()  # booking id -> how many flows reported it as made
    id_unknown: set[tuple[int, dt.timedelta]] = set()  # booked (or maybe booked), id unknown
    uncertain: set[int] = set()  # cancels reported as unknown
    for outcome in reported:
        report.hook[str(outcome.kind)] += 1
        if outcome.kind in MADE:
            if outcome.booking_id is not None:
                made[outcome.booking_id] += 1
                if known.get(outcome.booking_id) == "canceled":
                    report.stale_reports += 1
                else:
                    known[outcome.booking_id] = "active"
            elif outcome.customer_id is not None and outcome.start_date_time is not None:
                # both bookings, the new one's id unreadable (past the list's window)
                id_unknown.add((outcome.customer_id, instant(outcome.start_date_time)))
        elif outcome.kind is OutcomeKind.ALREADY_BOOKED and outcome.booking_id is not None:
            # Nothing made by this flow: the member held the booking already. It is known to the
            # app all the same (whoever made it may have reported it differently, or not yet).
            known.setdefault(outcome.booking_id, "active")
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
    # Two flows must never both say they made one booking (a resubmit gets ALREADY_BOOKED).
    report.made_twice = sum(n - 1 for n in made.values() if n > 1)
    slots = returned_slot or {}

    def disagrees(booking_id: int, state: str) -> bool:
        said = known.get(booking_id)
        # A resubmit's return value may name a booking the hook reported only as "unknown, this
        # customer and slot" (a first attempt that could not tell; the resubmit, validated, sent
        # nothing and reports nothing): silence, not a contradiction.
        return said != state and not (said is None and slots.get(booking_id) in id_unknown)

    report.hook_disagrees = sum(1 for i, state in returned.items() if disagrees(i, state))
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
    cut = disconnects or set()
    report.disconnected_after_sending = sum(
        1
        for o in reported
        if o.operation == "book"
        and o.caller_cancelled
        and o.customer_id is not None
        and o.start_date_time is not None
        and (o.customer_id, instant(o.start_date_time)) in cut
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=1_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument(
        "--http-backend",
        choices=[*HTTP_BACKENDS, "both"],
        default="both",
        help="the client's HTTP backend; both (the default): the soak and the sweep once per backend",
    )
    parser.add_argument(
        "--journal",
        choices=["sqlite", "off"],
        default="sqlite",
        help="the booking journal every client writes (a SQLite file in a temporary folder; the default), or none",
    )
    parser.add_argument(
        "--redis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the Redis faults (stop/restart, freeze/thaw the rate limit's redis-server); on by "
        "default, skipped (and said so) where no redis-server is installed",
    )
    args = parser.parse_args()
    backends = HTTP_BACKENDS if args.http_backend == "both" else (args.http_backend,)
    ok = True
    recap: dict[str, list[str]] = {backend: [] for backend in backends}
    # A fresh sandbox and event loop per soak: asyncio, the one loop both backends run on.
    for backend in backends:
        with tempfile.TemporaryDirectory() as folder:
            journal = None if args.journal == "off" else f"sqlite:///{folder}/soak-journal.db"
            report = anyio.run(
                partial(
                    run_soak, args.flows, args.tasks, http_backend=backend, redis=args.redis, journal=journal
                )
            )
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
