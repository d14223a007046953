"""The booking tests against the sandbox (tests/test_booking_check_sandbox.py,
tests/test_booking_outcome_sandbox.py): a sandbox and a client of it over real sockets
(``studio``), the sandbox's ``on_request`` hook that tells a test when a request is at the server
and holds it there until the test lets it go (``ServerHook``), and the audit of the sandbox's own
state against what the client reported (``audit``).

Nothing waits on the clock to win a race: a test makes one thing go wrong at the server, at a
point the hook names.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs

from perfectgym_appointments_client import (
    AppointmentsClient,
    Booking,
    BookingOutcome,
    OutcomeKind,
    RetryPolicy,
    Slot,
)
from perfectgym_appointments_client.sandbox import Appointment, BookingRecord, Sandbox

BOOK = "/v1/appointments/booking/book"
VALIDATE = "/v1/appointments/bookable/validate"
BOOKINGS = "/v1/appointments/booking"
WAIT = 10.0  # seconds any wait for the server may take before the test fails
INSIDE = 3  # days ahead: inside the bookings list's two weeks
OUTSIDE = 20  # days ahead: past them (15 to 27), inside the 28-day booking horizon
LOGGER = "perfectgym_appointments_client"


def utc(value: dt.datetime) -> dt.datetime:
    """The instant, for comparing: two datetimes sharing a ZoneInfo compare by wall clock."""
    return value.astimezone(dt.UTC)


# -- the server side: the sandbox's on_request hook --------------------------------------------------


class Hold:
    """One request held at the server: :meth:`arrived` returns once it is there, and it stays
    there until :meth:`release`."""

    def __init__(self) -> None:
        self._arrived = threading.Event()
        self.released = threading.Event()

    async def arrived(self) -> None:
        with anyio.fail_after(WAIT):
            await anyio.to_thread.run_sync(self._arrived.wait, abandon_on_cancel=True)

    def release(self) -> None:
        self.released.set()

    async def at_server(self) -> None:  # runs in the sandbox's event loop
        self._arrived.set()
        await anyio.to_thread.run_sync(self.released.wait, WAIT)


@attrs.define
class _Rule:
    phase: str
    method: str
    path: str
    skip: int  # matching requests to let by before this one
    then: Callable[[], Awaitable[Any] | None]


class ServerHook:
    """``Sandbox(on_request=...)``: records every request that reached the API, and runs the
    test's one-shot rules on the n-th request matching ``(phase, method, path)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self._rules: list[_Rule] = []
        self._gates: list[threading.Event] = []
        self._lock = threading.Lock()

    async def __call__(self, phase: str, method: str, path: str) -> None:
        with self._lock:
            self.seen.append((phase, method, path))
            due = []
            for rule in self._rules:
                if (rule.phase, rule.method, rule.path) == (phase, method, path):
                    rule.skip -= 1
                    if rule.skip == -1:
                        due.append(rule)
        for rule in due:
            reply = rule.then()
            if inspect.isawaitable(reply):
                await reply

    def on(self, phase: str, method: str, path: str, then: Callable[[], Any], *, nth: int = 1) -> None:
        """Run ``then`` (in the server's loop) at the ``nth`` request matching, from now on."""
        with self._lock:
            self._rules.append(_Rule(phase, method, path, nth - 1, then))

    def hold(self, phase: str, method: str, path: str, *, nth: int = 1) -> Hold:
        hold = Hold()
        self._gates.append(hold.released)
        self.on(phase, method, path, hold.at_server, nth=nth)
        return hold

    def hold_until(self, event: threading.Event, phase: str, method: str, path: str, *, nth: int = 1) -> None:
        """Hold the ``nth`` matching request until ``event`` is set (by another rule)."""
        self._gates.append(event)
        self.on(phase, method, path, lambda: anyio.to_thread.run_sync(event.wait, WAIT), nth=nth)

    def count(self, phase: str, method: str, path: str) -> int:
        with self._lock:
            return self.seen.count((phase, method, path))

    def release_all(self) -> None:
        for gate in self._gates:
            gate.set()


# -- the audit ---------------------------------------------------------------------------------------


def audit(
    records: Iterable[BookingRecord],
    customer: int,
    outcomes: list[BookingOutcome],
    returned: Booking | None = None,
) -> list[BookingRecord]:
    """The customer's active bookings at the server, checked against what the client reported.

    No two at one instant; each one known to the caller (``returned``) or to the hook (by id, or
    by its slot for a booking reported made with its id unknown); and each booking the client
    says exists (returned, or reported booked and not canceled since) held by the server.
    """
    active = sorted((b for b in records if b.customer_id == customer and b.active), key=lambda b: b.id)
    instants = [(utc(b.start), utc(b.end)) for b in active]
    assert len(set(instants)) == len(instants), f"double booking: {active}"
    credited = [
        o.booking_id
        for o in outcomes
        if o.kind in (OutcomeKind.BOOKED, OutcomeKind.RESCHEDULED) and o.booking_id is not None
    ]
    assert len(set(credited)) == len(credited), f"two flows reported one booking as theirs: {outcomes}"
    # A booking the customer already held, returned to a resubmit: known to the hook all the same.
    made = set(credited) | {
        o.booking_id for o in outcomes if o.kind is OutcomeKind.ALREADY_BOOKED and o.booking_id is not None
    }
    canceled = {i for o in outcomes for i in o.canceled_booking_ids}
    canceled |= {
        o.booking_id for o in outcomes if o.kind is OutcomeKind.CANCELED and o.booking_id is not None
    }
    if returned is not None:
        assert returned.booking_id in made, "the hook was told of the booking the call returned"
    said_held = made - canceled
    id_unknown = [
        (utc(o.start_date_time), utc(o.end_date_time))
        for o in outcomes
        if o.kind is OutcomeKind.BOOKED_ID_UNKNOWN and o.start_date_time and o.end_date_time
    ]
    for slot in id_unknown:
        assert instants.count(slot) == 1, (
            f"booked with its id unknown at {slot}, but the server holds {active}"
        )
    for booking, slot in zip(active, instants, strict=True):
        assert booking.id in said_held or slot in id_unknown, (
            f"booking {booking.id} ({booking.start.isoformat()}) is unknown to the caller and the hook: "
            f"{outcomes}"
        )
    missing = said_held - {b.id for b in active}
    assert not missing, f"reported booked, but the server holds no active booking {missing}"
    return active


# -- a sandbox, a client, a customer -----------------------------------------------------------------


@attrs.define
class Studio:
    sb: Sandbox
    client: AppointmentsClient
    server: ServerHook
    outcomes: list[BookingOutcome]
    customer: int

    @property
    def posts(self) -> int:
        """Booking requests that reached the API (a connection cut before it is none)."""
        return self.server.count("received", "POST", BOOK)

    def audit(self, returned: Booking | None = None) -> list[BookingRecord]:
        return audit(self.sb.store.snapshot(), self.customer, self.outcomes, returned)

    def plain(self) -> Appointment:
        """An appointment anyone may book, booked as plain BOOKED, on the studio's opening hours."""
        return next(
            a
            for a in self.sb.store.listed()
            if not a.premium_only and not a.requires_confirmation and not a.all_hours
        )

    async def slots(self, appointment: Appointment, days: int) -> list[Slot]:
        """The customer's free slots of ``appointment`` on three days from ``days`` days ahead."""
        first = self.sb.store.now().date() + dt.timedelta(days=days)
        found = await self.client.get_slots(
            appointment.id, customer_id=self.customer, days_ahead=3, start_date=first
        )
        assert found, f"no free slot of {appointment.title} from {first}"
        return found


@asynccontextmanager
async def studio(
    http_backend: str,
    *,
    now: dt.datetime | None = None,
    client_timeout: float | None = None,
    settle: float = 0.2,
) -> AsyncIterator[Studio]:
    """A sandbox (no rate limit) and a client of it over ``http_backend`` with a quick retry
    policy; ``now`` pins the clock of both (the sandbox's, and the client's for the bookings
    list's window); ``client_timeout`` is the client's ``timeout``."""
    server = ServerHook()
    clock = None if now is None else (lambda: now)
    extra: dict[str, Any] = {} if client_timeout is None else {"timeout": client_timeout}
    async with Sandbox(seed=3, rate_limit=None, clock=clock, on_request=server) as sb:
        try:
            outcomes: list[BookingOutcome] = []
            async with AppointmentsClient(
                api_key=sb.api_key,
                base_url=sb.base_url,
                http_backend=http_backend,
                booking_check_settle=settle,
                on_booking_outcome=outcomes.append,
                retry_policy=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.05),
                **extra,
            ) as client:
                if clock is not None:
                    client._flows.now = clock
                assert client._api.backend.name == http_backend
                yield Studio(sb, client, server, outcomes, sb.store.add_customer().id)
        finally:
            server.release_all()  # a held request must not keep the sandbox from stopping
