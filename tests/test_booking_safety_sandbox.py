"""Booking safety against the sandbox, over real sockets, on both HTTP backends: httpx on asyncio
and trio, aiohttp on asyncio (tests/conftest.py deselects trio with aiohttp).

The rules under test are written down in perfectgym_appointments_client/_booking/__init__.py's docstring.
Each test makes one thing go wrong at the server (an answer lost or failed after the booking was
made, a commit slower than the client's timeout, a connection cut before the request was
handled, an appointment renamed meanwhile, a slot across a DST change, a caller cancelled while
its request is at the server), then audits the sandbox's own state against what the client
reported: its return value or exception, and the ``BookingOutcome`` its hook got.

Nothing waits on the clock to win a race: the sandbox's ``on_request`` hook tells the test when a
request is at the server, and holds it there until the test lets it go.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import attrs
import pytest

from perfectgym_appointments_client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AppointmentsClient,
    Booking,
    BookingIdUnknownError,
    BookingOutcome,
    InternalServerError,
    OutcomeKind,
    RetryPolicy,
    Slot,
    format_zoned_datetime,
)
from perfectgym_appointments_client.sandbox import ZONE, Appointment, BookingRecord, Faults, Sandbox

pytestmark = pytest.mark.anyio

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


# -- the server side: the sandbox's on_request hook ----------------------------------------------------


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


# -- the audit --------------------------------------------------------------------------------------


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
    made = {
        o.booking_id
        for o in outcomes
        if o.kind in (OutcomeKind.BOOKED, OutcomeKind.RESCHEDULED) and o.booking_id is not None
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


# -- a sandbox, a client, a customer ---------------------------------------------------------------


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
        found = await self.client.get_slots(appointment.id, self.customer, days_ahead=3, start_date=first)
        assert found, f"no free slot of {appointment.title} from {first}"
        return found


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest) -> str:
    """The client's HTTP backend; every test talks to the sandbox over real sockets through it.

    Named as tests/conftest.py's fixture (which is for tests/fakeapi.py and does not apply here)
    so that conftest's collection hook deselects the trio + aiohttp combinations."""
    return str(request.param)


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


async def cancel_when_held(hold: Hold, call: Callable[[], Awaitable[object]]) -> anyio.CancelScope:
    """Run ``call`` in a task inside a cancel scope; once ``hold``'s request is at the server,
    cancel the scope, then let the request go on. Returns the scope once the task has ended."""
    scope = anyio.CancelScope()
    returned: list[object] = []

    async def caller() -> None:
        with scope:
            returned.append(await call())

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await hold.arrived()
            scope.cancel()
            hold.release()
    finally:
        hold.release()
    assert returned == [], "a cancelled call returns nothing"
    return scope


def sent_bookings(client: AppointmentsClient) -> list[dict[str, Any]]:
    """The bodies of the booking requests the client sends from now on, as sent."""
    bodies: list[dict[str, Any]] = []

    backend = client._api.backend
    send = backend.send

    async def record(method: str, url: str, headers: dict[str, str], content: bytes | None) -> Any:
        if method == "POST" and urlsplit(url).path == BOOK:
            assert content is not None
            bodies.append(json.loads(content))
        return await send(method, url, headers, content)

    backend.send = record  # type: ignore[method-assign]
    return bodies


# -- faults at the server -----------------------------------------------------------------------------


@attrs.frozen
class CommitFault:
    """A booking made at the server whose answer the client does not get."""

    faults: Faults
    count: str  # its name in sb.fault_counts
    seen_as: type[APIError]  # what the client's booking request failed with
    studio: dict[str, Any] = attrs.field(factory=dict)  # studio(...) options


COMMIT_FAULTS = {
    "commit then drop": CommitFault(
        Faults(rate_commit_then_drop=1.0, max_faults=1), "commit_then_drop", APIConnectionError
    ),
    "500 after commit": CommitFault(
        Faults(rate_500_after_commit=1.0, max_faults=1), "500_after_commit", InternalServerError
    ),
    # The client gives up after 0.3 s; the booking lands at 0.6 s; the check looks at 1.3 s.
    "slow commit": CommitFault(
        Faults(rate_slow_commit=1.0, slow_commit_seconds=0.6, max_faults=1),
        "slow_commit",
        APITimeoutError,
        {"client_timeout": 0.3, "settle": 1.0},
    ),
}


def arm(st: Studio, fault: CommitFault, check: tuple[str, str]) -> None:
    """Switch ``fault`` on for the next booking request. For a slow commit the check's first read
    (``check``: method and path) is also held until the booking has landed, so the scenario
    (the commit lands before the check looks) does not hang on the settle time alone."""
    st.sb.faults = fault.faults
    if fault.count == "slow_commit":
        landed = threading.Event()
        st.server.on("committed", "POST", BOOK, landed.set)
        # Outside the list's window the check's read is the second validate (the first is book's own).
        st.server.hold_until(landed, "received", *check, nth=2 if check[1] == VALIDATE else 1)


def failure_logged(caplog: pytest.LogCaptureFixture, booking: Booking) -> APIError:
    """The error the booking request failed with, from the client's WARNING that it returns the
    booking that failed request made (so the booking came from the check, not from an answer)."""
    found = [
        r.args[0]
        for r in caplog.records
        if r.name == LOGGER
        and isinstance(r.args, tuple)
        and r.msg.startswith("bookAppointmentBooking failed")
        and r.args[1] == booking.booking_id
    ]
    assert len(found) == 1, [r.getMessage() for r in caplog.records]
    assert isinstance(found[0], APIError)
    return found[0]


@pytest.mark.parametrize("name", COMMIT_FAULTS)
async def test_booking_made_but_unanswered_inside_the_list_window_is_returned(
    name: str, caplog: pytest.LogCaptureFixture, http_backend: str
) -> None:
    fault = COMMIT_FAULTS[name]
    async with studio(http_backend, **fault.studio) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        arm(st, fault, ("GET", BOOKINGS))
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            booking = await st.client.book(st.customer, appointment.id, slot)

        assert st.sb.fault_counts[fault.count] == 1, "the fault really hit the booking request"
        assert type(failure_logged(caplog, booking)) is fault.seen_as
        assert st.posts == 1, "the booking request was not repeated"
        [made] = st.audit(booking)
        assert made.id == booking.booking_id
        assert (utc(made.start), utc(made.end)) == (utc(slot.start_date_time), utc(slot.end_date_time))
        assert utc(booking.start_date_time) == utc(slot.start_date_time)
        [outcome] = st.outcomes
        assert (outcome.kind, outcome.booking_id, outcome.caller_cancelled) == (
            OutcomeKind.BOOKED, booking.booking_id, False,
        )  # fmt: skip


@pytest.mark.parametrize("name", COMMIT_FAULTS)
async def test_booking_made_but_unanswered_outside_the_list_window_is_booked_with_unknown_id(
    name: str, http_backend: str
) -> None:
    fault = COMMIT_FAULTS[name]
    async with studio(http_backend, **fault.studio) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, OUTSIDE))[0]
        arm(st, fault, ("POST", VALIDATE))
        with pytest.raises(BookingIdUnknownError) as caught:
            await st.client.book(st.customer, appointment.id, slot, validate=True)

        error = caught.value
        assert type(error.cause) is fault.seen_as
        assert st.sb.fault_counts[fault.count] == 1
        assert st.posts == 1, "the booking request was not repeated"
        [made] = st.audit()
        assert (utc(made.start), utc(made.end)) == (utc(slot.start_date_time), utc(slot.end_date_time))
        assert utc(error.start_date_time) == utc(slot.start_date_time)
        [outcome] = st.outcomes
        assert (outcome.kind, outcome.booking_id) == (OutcomeKind.BOOKED_ID_UNKNOWN, None)
        assert outcome.error is error
        assert outcome.start_date_time is not None
        assert utc(outcome.start_date_time) == utc(slot.start_date_time)


@pytest.mark.parametrize("days", [INSIDE, OUTSIDE], ids=["inside the list window", "outside it"])
async def test_connection_cut_before_the_booking_is_handled_is_repeated_and_books_once(
    days: int, http_backend: str
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, days))[0]
        # Armed while the validate request is at the server: the next request, the booking, is cut.
        st.server.on(
            "received", "POST", VALIDATE,
            lambda: setattr(st.sb, "faults", Faults(rate_reset=1.0, max_faults=1)),
        )  # fmt: skip
        sent = sent_bookings(st.client)
        booking = await st.client.book(st.customer, appointment.id, slot, validate=True)

        assert st.sb.fault_counts["reset"] == 1
        assert len(sent) == 2, "the booking request was repeated"
        assert st.posts == 1, "the first booking request never reached the API; the repeat did"
        [made] = st.audit(booking)
        assert made.id == booking.booking_id
        assert utc(made.start) == utc(slot.start_date_time)
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.BOOKED, booking.booking_id)]


async def test_appointment_renamed_while_the_answer_is_lost_still_returns_the_booking(
    http_backend: str,
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        renamed = f"{appointment.title} (new name)"
        st.sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        # Renamed right after the booking was made, before its (lost) answer.
        st.server.on(
            "committed", "POST", BOOK, lambda: st.sb.store.rename_appointment(appointment.id, renamed)
        )
        booking = await st.client.book(st.customer, appointment.id, slot)

        assert st.sb.fault_counts["commit_then_drop"] == 1
        assert st.posts == 1
        assert booking.title == renamed, "the booking as the list shows it now"
        [made] = st.audit(booking)
        assert made.id == booking.booking_id
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.BOOKED, booking.booking_id)]


# -- a slot across a DST change -------------------------------------------------------------------------


def next_change(month: int) -> dt.date:
    """The next last Sunday of ``month`` (3: spring, 10: autumn) after today, when Europe/Berlin
    changes its clocks."""
    today = dt.datetime.now(ZONE).date()
    for year in (today.year, today.year + 1):
        last = dt.date(year, month, 31)
        day = last - dt.timedelta(days=(last.weekday() + 1) % 7)
        if day > today:
            return day
    raise AssertionError("unreachable")


AUTUMN, SPRING = next_change(10), next_change(3)


@pytest.mark.parametrize(
    ("day", "start", "end", "faults"),
    [
        (AUTUMN, "02:00:00.000+02:00", "02:00:00.000+01:00", Faults(rate_commit_then_drop=1.0, max_faults=1)),
        (SPRING, "01:00:00.000+01:00", "03:00:00.000+02:00", Faults()),
    ],
    ids=["autumn, answer lost", "spring"],
)
async def test_slot_across_a_dst_change_is_booked_by_instant_and_sent_back_as_received(
    day: dt.date, start: str, end: str, faults: Faults, http_backend: str
) -> None:
    assert ZONE.utcoffset(dt.datetime.combine(day, dt.time(0))) != ZONE.utcoffset(
        dt.datetime.combine(day, dt.time(12))
    ), f"Europe/Berlin changes its clocks on {day}"
    now = dt.datetime.combine(day - dt.timedelta(days=5), dt.time(12), ZONE)
    async with studio(http_backend, now=now) as st:
        gym = st.sb.store.open_gym()
        slots = await st.client.get_slots(gym.id, st.customer, days_ahead=6, start_date=now.date())
        wire_start, wire_end = f"{day}T{start}[Europe/Berlin]", f"{day}T{end}[Europe/Berlin]"
        [slot] = [s for s in slots if format_zoned_datetime(s.start_date_time) == wire_start]
        assert format_zoned_datetime(slot.end_date_time) == wire_end
        assert utc(slot.end_date_time) - utc(slot.start_date_time) == dt.timedelta(hours=1)
        sent = sent_bookings(st.client)
        st.sb.faults = faults
        booking = await st.client.book(st.customer, gym.id, slot)

        assert st.sb.fault_counts["commit_then_drop"] == faults.rate_commit_then_drop
        assert [(b["startDateTime"], b["endDateTime"]) for b in sent] == [(wire_start, wire_end)]
        assert st.posts == 1
        assert (utc(booking.start_date_time), utc(booking.end_date_time)) == (
            utc(slot.start_date_time), utc(slot.end_date_time),
        )  # fmt: skip
        assert format_zoned_datetime(booking.start_date_time) == wire_start
        assert format_zoned_datetime(booking.end_date_time) == wire_end
        [made] = st.audit(booking)
        assert made.id == booking.booking_id
        assert (utc(made.start), utc(made.end)) == (utc(slot.start_date_time), utc(slot.end_date_time))
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.BOOKED, booking.booking_id)]


# -- the caller cancelled at each await point ---------------------------------------------------------


async def test_book_cancelled_while_validating_books_nothing_and_reports_nothing(http_backend: str) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        hold = st.server.hold("received", "POST", VALIDATE)
        scope = await cancel_when_held(hold, lambda: st.client.book(st.customer, appointment.id, slot))

        assert scope.cancelled_caught
        assert st.posts == 0
        assert st.audit() == []
        assert st.outcomes == []


BOOK_POINTS = {
    "book received": (("received", "POST", BOOK), Faults()),
    "book committed": (("committed", "POST", BOOK), Faults()),
    "check after a lost answer": (
        ("received", "GET", BOOKINGS),
        Faults(rate_commit_then_drop=1.0, max_faults=1),
    ),
}


@pytest.mark.parametrize("point", BOOK_POINTS)
async def test_book_cancelled_with_its_request_at_the_server_runs_to_the_end_and_reports(
    point: str, http_backend: str
) -> None:
    (phase, method, path), faults = BOOK_POINTS[point]
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        st.sb.faults = faults
        hold = st.server.hold(phase, method, path)
        scope = await cancel_when_held(hold, lambda: st.client.book(st.customer, appointment.id, slot))

        assert scope.cancelled_caught, "the caller's cancellation went on once the flow ended"
        assert st.posts == 1
        [made] = st.audit()
        [outcome] = st.outcomes
        assert (outcome.operation, outcome.kind, outcome.booking_id, outcome.caller_cancelled) == (
            "book", OutcomeKind.BOOKED, made.id, True,
        )  # fmt: skip
        assert utc(made.start) == utc(slot.start_date_time)


@pytest.mark.parametrize("point", ["new booking committed", "old booking's cancel received"])
async def test_reschedule_cancelled_ends_with_exactly_the_new_booking_and_reports_it(
    point: str, http_backend: str
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slots = await st.slots(appointment, INSIDE)
        first = slots[0]
        second = next(s for s in slots if utc(s.start_date_time) >= utc(first.end_date_time))
        old = await st.client.book(st.customer, appointment.id, first)
        if point == "new booking committed":
            hold = st.server.hold("committed", "POST", BOOK)
        else:
            hold = st.server.hold("received", "DELETE", f"{BOOKINGS}/{old.booking_id}")
        scope = await cancel_when_held(
            hold,
            lambda: st.client.reschedule(old.booking_id, second, bookable_appointment_id=appointment.id),
        )

        assert scope.cancelled_caught
        [new] = st.audit()  # never neither, never both
        assert new.id != old.booking_id
        assert utc(new.start) == utc(second.start_date_time)
        assert st.sb.store.bookings[old.booking_id].status == "CANCELED"
        booked, rescheduled = st.outcomes
        assert (booked.kind, booked.booking_id) == (OutcomeKind.BOOKED, old.booking_id)
        assert (
            rescheduled.operation, rescheduled.kind, rescheduled.booking_id, rescheduled.old_booking_id,
            rescheduled.canceled_booking_ids, rescheduled.caller_cancelled,
        ) == ("reschedule", OutcomeKind.RESCHEDULED, new.id, old.booking_id, (old.booking_id,), True)  # fmt: skip


# -- the audit itself -------------------------------------------------------------------------------------


def test_the_audit_can_fail() -> None:
    start = dt.datetime(2030, 1, 7, 9, tzinfo=ZONE)
    end = start + dt.timedelta(hours=1)

    def record(booking_id: int, at: dt.datetime = start) -> BookingRecord:
        return BookingRecord(booking_id, 7, 1, at, at + dt.timedelta(hours=1), 1, "BOOKED", start)

    def booked(booking_id: int | None, kind: OutcomeKind = OutcomeKind.BOOKED) -> BookingOutcome:
        return BookingOutcome(
            operation="book", kind=kind, booking_id=booking_id, start_date_time=start, end_date_time=end
        )

    assert [b.id for b in audit([record(1)], 7, [booked(1)])] == [1]
    assert [b.id for b in audit([record(1)], 7, [booked(None, OutcomeKind.BOOKED_ID_UNKNOWN)])] == [1]
    with pytest.raises(AssertionError, match="unknown to the caller and the hook"):
        audit([record(1)], 7, [])
    with pytest.raises(AssertionError, match="unknown to the caller and the hook"):
        audit([record(1), record(2, end)], 7, [booked(1)])
    with pytest.raises(AssertionError, match="double booking"):
        audit([record(1), record(2)], 7, [booked(1), booked(2)])
    with pytest.raises(AssertionError, match="server holds no active booking"):
        audit([], 7, [booked(1)])
    with pytest.raises(AssertionError, match="id unknown"):
        audit([], 7, [booked(None, OutcomeKind.BOOKED_ID_UNKNOWN)])
