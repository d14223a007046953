"""How results are shown: rich tables for people, JSON for scripts (``--json``).

A table is laid out for the console's width (``show``) and never cuts a value: the columns of
fixed values (ids, times, statuses) keep their width, the text columns (titles, names) wrap at
their spaces, and when even that cannot fit, each row is shown as a block of lines instead.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .. import BookableAppointment, Booking, Slot, format_zoned_datetime
from .._models import instructor_name
from ._common import state

__all__ = [
    "appointments_table",
    "booking_json",
    "bookings_table",
    "fit",
    "print_json",
    "rule",
    "show",
    "slot_time",
    "slots_table",
    "when",
]

# Wider than any layout needs: a table measured at it takes its natural width.
_NATURAL = 10_000


def when(value: dt.datetime) -> str:
    return value.strftime("%a %d %b %H:%M")


def slot_time(value: dt.datetime) -> str:
    """A slot's start or end as ``book`` and ``validate`` take it: the studio's wall time and
    offset, to the minute (to the second or finer only when the API's has them)."""
    exact = value.second or value.microsecond
    return value.isoformat(timespec="auto" if exact else "minutes")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def rule(title: str) -> None:
    state.out.print(Rule(title))


def show(table: Table) -> None:
    out = state.out
    out.print(fit(table, out.width))


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


def _table(title: str) -> Table:
    # No vertical rules: six columns of ids, times and statuses fit 80 columns with a title to spare.
    return Table(
        title=escape(title), box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False, collapse_padding=True
    )


def _fixed(table: Table, header: str, justify: Any = "left") -> None:
    """A column of values that must stay whole on one line (ids, times, statuses)."""
    table.add_column(header, justify=justify, no_wrap=True, overflow="fold")


def _text(table: Table, header: str) -> None:
    """A column of text that may wrap at its spaces (titles, names)."""
    table.add_column(header, overflow="fold")


def _row(table: Table, *values: str) -> None:
    # As Text: the API's strings are data, not rich markup ("[Premium]" would vanish).
    table.add_row(*(Text(value) for value in values))


def appointments_table(appointments: list[BookableAppointment], title: str) -> Table:
    table = _table(title)
    _fixed(table, "id", "right")
    _text(table, "title")
    _text(table, "category")
    _fixed(table, "minutes", "right")
    for a in appointments:
        _row(table, str(a.id), str(a.title or ""), str(a.category or ""), str(a.duration or ""))
    return table


def slots_table(slots: list[Slot], title: str) -> Table:
    """The start and end as ``book``/``validate`` take them (copy them from here), in the studio's zone."""
    zones = sorted({str(getattr(s.start_date_time.tzinfo, "key", s.start_date_time.tzname())) for s in slots})
    table = _table(f"{title} (times in {', '.join(zones)})" if zones else title)
    _fixed(table, "#", "right")
    _fixed(table, "day")
    _fixed(table, "start")
    _fixed(table, "end")
    _text(table, "instructors")
    for n, s in enumerate(slots, 1):
        names = ", ".join(instructor_name(i) for i in s.instructors or [])  # as to_rows and the chart
        _row(
            table,
            str(n), s.start_date_time.strftime("%a"), slot_time(s.start_date_time), slot_time(s.end_date_time),
            names,
        )  # fmt: skip
    return table


def bookings_table(bookings: list[Booking], title: str) -> Table:
    table = _table(title)
    _fixed(table, "booking")
    _text(table, "title")
    _text(table, "when")
    _text(table, "status")  # the status stays whole: a note after it wraps
    _fixed(table, "appointment")
    _fixed(table, "participant")
    for b in bookings:
        status = str(b.booking_status) + (" (awaiting studio confirmation)" if b.needs_confirmation else "")
        _row(
            table,
            str(b.booking_id), b.title or "", f"{when(b.start_date_time)}-{b.end_date_time:%H:%M}",
            status, str(b.appointment_status), str(b.participant_status),
        )  # fmt: skip
    return table


def fit(table: Table, width: int) -> RenderableType:
    """``table`` laid out for ``width`` columns with no value cut.

    At its natural width if that fits. Otherwise each column gets at least its longest word (the
    whole value, for the fixed ones); of what is left, the text columns that then fit whole get it
    first, the narrowest first, and the others share the rest. (Rich on its own shrinks the
    widest columns first, past their longest word, and cuts values with "…".) If even the longest
    words do not fit, each row is a block of lines.
    """
    from rich.console import Console

    console = Console(width=_NATURAL)
    options = console.options
    lows, highs = [], []
    for column in table.columns:
        sizes = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
        high = max(size.maximum for size in sizes)
        lows.append(high if column.no_wrap else max(size.minimum for size in sizes))
        highs.append(high)
    overhead = Measurement.get(console, options, table).maximum - sum(highs)  # padding and rules
    if sum(highs) + overhead <= width:
        return table
    spare = width - overhead - sum(lows)
    if spare < 0:
        return _records(table)
    widths, slack = list(lows), [high - low for low, high in zip(lows, highs, strict=True)]
    waiting = sorted((i for i, more in enumerate(slack) if more), key=slack.__getitem__)
    while waiting and slack[waiting[0]] <= spare:  # whole, the narrowest first: fewer wrapped lines
        i = waiting.pop(0)
        widths[i], spare = highs[i], spare - slack[i]
    for i in waiting:  # the rest share what is left, in proportion to what they would take more
        widths[i] += spare * slack[i] // sum(slack[j] for j in waiting)
    for column, column_width in zip(table.columns, widths, strict=True):
        column.width = column_width
    return table


def _records(table: Table) -> Group:
    """Each row of ``table`` as lines of ``header  value``, for a console too narrow for columns."""
    parts: list[RenderableType] = [Text.from_markup(str(table.title or ""), style="italic")]
    columns = table.columns
    for row in zip(*(list(column.cells) for column in columns), strict=True):
        record = Table.grid(padding=(0, 2))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for column, cell in zip(columns, row, strict=True):
            record.add_row(column.header, cell)
        parts.extend([Text(""), record])
    return Group(*parts)
