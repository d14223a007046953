"""How results are shown: rich tables for people, JSON for scripts (``--json``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from rich.rule import Rule
from rich.table import Table

from .. import BookableAppointment, Booking, Slot, format_zoned_datetime
from ._common import state

__all__ = [
    "appointments_table",
    "booking_json",
    "bookings_table",
    "print_json",
    "rule",
    "slots_table",
    "when",
]


def when(value: dt.datetime) -> str:
    return value.strftime("%a %d %b %H:%M")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def rule(title: str) -> None:
    # A rule spans the console; on an unbounded (piped) console keep it to a readable length.
    state.out.print(Rule(title), width=min(state.out.width, 100))


def booking_json(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": booking.booking_id,
        "customerId": booking.customer_id,
        "bookingStatus": str(booking.booking_status),
        "needsConfirmation": booking.needs_confirmation,
        "startDateTime": format_zoned_datetime(booking.start_date_time),
        "endDateTime": format_zoned_datetime(booking.end_date_time),
        "title": booking.title,
        "appointmentStatus": str(booking.appointment_status),
        "participantStatus": str(booking.participant_status),
    }


def appointments_table(appointments: list[BookableAppointment], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "title", "category", "minutes"):
        table.add_column(column, justify="right" if column in ("id", "minutes") else "left")
    for a in appointments:
        table.add_row(str(a.id), str(a.title or ""), str(a.category or ""), str(a.duration or ""))
    return table


def slots_table(slots: list[Slot], title: str) -> Table:
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("day")
    table.add_column("start")
    table.add_column("end")
    table.add_column("instructors")
    for n, s in enumerate(slots, 1):
        names = ", ".join(f"{i.first_name} {i.last_name}" for i in s.instructors or [])
        table.add_row(
            str(n), s.start_date_time.strftime("%a %d %b"), s.start_date_time.strftime("%H:%M"),
            s.end_date_time.strftime("%H:%M"), names,
        )  # fmt: skip
    return table


def bookings_table(bookings: list[Booking], title: str) -> Table:
    table = Table(title=title)
    for column in ("booking", "title", "when", "status", "appointment", "participant"):
        table.add_column(column)
    for b in bookings:
        status = str(b.booking_status) + (" (awaiting studio confirmation)" if b.needs_confirmation else "")
        table.add_row(
            str(b.booking_id), b.title or "", f"{when(b.start_date_time)}-{b.end_date_time:%H:%M}",
            status, str(b.appointment_status), str(b.participant_status),
        )  # fmt: skip
    return table
