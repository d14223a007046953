"""The booking check against the sandbox, over real sockets, on both HTTP backends: httpx on asyncio
and trio, aiohttp on asyncio (tests/conftest.py deselects trio with aiohttp).

The rules under test are written down in perfectgym_appointments_client/_booking/__init__.py's docstring.
Each test makes one thing go wrong at the server (an answer lost or failed after the booking was
made, a commit slower than the client's timeout, a connection cut before the request was
handled, an appointment renamed meanwhile, a slot across a DST change), then audits the sandbox's
own state against what the client reported: its return value or exception, and the
``BookingOutcome`` its hook got (tests/sandbox_studio.py). The same rules through the fake API:
tests/test_booking_check.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
from sandbox_studio import BOOK, BOOKINGS, INSIDE, LOGGER, OUTSIDE, VALIDATE, Studio, audit, studio, utc

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
    format_zoned_datetime,
)
from perfectgym_appointments_client.sandbox import ZONE, BookingRecord, Faults

pytestmark = pytest.mark.anyio


def sent_bookings(client: AppointmentsClient) -> list[dict[str, Any]]:
    """The bodies of the booking requests the client sends from now on, as sent."""
    bodies: list[dict[str, Any]] = []

    backend = client._api.backend
    send = backend.send

    async def record(method: str, url: str, headers: dict[str, str], content: bytes | None, turn: Any) -> Any:
        if method == "POST" and urlsplit(url).path == BOOK:
            assert content is not None
            bodies.append(json.loads(content))
        return await send(method, url, headers, content, turn)

    backend.send = record  # type: ignore[method-assign]
    return bodies


# -- faults at the server ----------------------------------------------------------------------------


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
    # The client gives up after 0.3 s; the booking, its body read, is held at the server until
    # then (``arm``) and lands once the check's first read has arrived, which waits for it.
    "slow commit": CommitFault(
        Faults(rate_slow_commit=1.0, slow_commit_seconds=0, max_faults=1),
        "slow_commit",
        APITimeoutError,
        {"client_timeout": 0.3},
    ),
}


def arm(st: Studio, fault: CommitFault, check: tuple[str, str]) -> None:
    """Switch ``fault`` on for the next booking request. For a slow commit the booking request is
    held at the server until the check's first read (``check``: method and path) arrives, so
    after the client gave up on it; that read is held until the booking has landed: the commit
    lands after the client's timeout and before the check looks, on events, not on the clock."""
    st.sb.faults = fault.faults
    if fault.count == "slow_commit":
        checking, landed = threading.Event(), threading.Event()
        st.server.hold_until(checking, "received", "POST", BOOK)
        st.server.on("committed", "POST", BOOK, landed.set)
        # Outside the list's window the check's read is the second validate (the first is book's own).
        nth = 2 if check[1] == VALIDATE else 1
        st.server.on("received", *check, checking.set, nth=nth)
        st.server.hold_until(landed, "received", *check, nth=nth)


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
            booking = await st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
            )

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
            await st.client.book(
                customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot, validate=True
            )

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
        booking = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot, validate=True
        )

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
        booking = await st.client.book(
            customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
        )

        assert st.sb.fault_counts["commit_then_drop"] == 1
        assert st.posts == 1
        assert booking.title == renamed, "the booking as the list shows it now"
        [made] = st.audit(booking)
        assert made.id == booking.booking_id
        assert [(o.kind, o.booking_id) for o in st.outcomes] == [(OutcomeKind.BOOKED, booking.booking_id)]


# -- a slot across a DST change ----------------------------------------------------------------------


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
        slots = await st.client.get_slots(
            gym.id, customer_id=st.customer, days_ahead=6, start_date=now.date()
        )
        wire_start, wire_end = f"{day}T{start}[Europe/Berlin]", f"{day}T{end}[Europe/Berlin]"
        [slot] = [s for s in slots if format_zoned_datetime(s.start_date_time) == wire_start]
        assert format_zoned_datetime(slot.end_date_time) == wire_end
        assert utc(slot.end_date_time) - utc(slot.start_date_time) == dt.timedelta(hours=1)
        sent = sent_bookings(st.client)
        st.sb.faults = faults
        booking = await st.client.book(customer_id=st.customer, bookable_appointment_id=gym.id, slot=slot)

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


# -- the audit itself --------------------------------------------------------------------------------


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
