"""The studio's calendar: opening hours, each appointment's slot grid, and instants.

Date-times are compared as instants (in UTC): two datetimes sharing one ``ZoneInfo`` compare and
subtract by wall clock in Python, which is wrong by an hour across a DST switch. Only the opening
hours and the slot grid, which are wall-clock rules of the studio, look at local times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from ._model import ZONE, Appointment

__all__ = ["OPENING_HOURS", "appointment_length", "grid", "on_grid", "studio_open", "utc", "wall_add"]

# Opening hours by weekday (Monday = 0); Sunday closed. Opening times are multiples of every
# slot length (30, 45, 60, 90 minutes) so the slot grid, anchored at midnight, meets them.
OPENING_HOURS: dict[int, tuple[dt.time, dt.time] | None] = {
    0: (dt.time(6), dt.time(22)),
    1: (dt.time(6), dt.time(22)),
    2: (dt.time(6), dt.time(22)),
    3: (dt.time(6), dt.time(22)),
    4: (dt.time(6), dt.time(21)),
    5: (dt.time(9), dt.time(18)),
    6: None,
}


def utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def appointment_length(appointment: Appointment) -> dt.timedelta:
    return dt.timedelta(minutes=appointment.duration)


def _midnight(day: dt.date) -> dt.datetime:
    """The start of a day in the studio's zone (never in a DST gap or fold in Europe/Berlin)."""
    return dt.datetime.combine(day, dt.time(0), ZONE)


def wall_add(start: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """Add a duration in elapsed time, then show the result in the studio's zone (DST-safe)."""
    return (start.astimezone(dt.UTC) + step).astimezone(ZONE)


def grid(day: dt.date, appointment: Appointment) -> Iterator[dt.datetime]:
    """Slot starts of an appointment on a day: every ``duration`` minutes (elapsed) while the
    studio is open; for an all-hours appointment from local midnight to the next."""
    if appointment.all_hours:
        start, close = _midnight(day), _midnight(day + dt.timedelta(days=1))
    else:
        hours = OPENING_HOURS[day.weekday()]
        if hours is None:
            return
        start = dt.datetime.combine(day, hours[0], ZONE)
        close = dt.datetime.combine(day, hours[1], ZONE)
    step = appointment_length(appointment)
    while utc(start) + step <= utc(close):
        yield start
        start = wall_add(start, step)


def on_grid(start: dt.datetime, end: dt.datetime, appointment: Appointment) -> bool:
    local = start.astimezone(ZONE)
    step = appointment_length(appointment)
    if appointment.all_hours:  # its grid is elapsed time from midnight, across a DST change too
        on_step = (utc(start) - utc(_midnight(local.date()))) % step == dt.timedelta(0)
    else:  # opening hours start after any DST change, so wall minutes and elapsed ones agree
        on_step = (local.hour * 60 + local.minute) % appointment.duration == 0
    return local.second == 0 and local.microsecond == 0 and on_step and utc(end) - utc(start) == step


def studio_open(start: dt.datetime, end: dt.datetime) -> bool:
    local_start, local_end = start.astimezone(ZONE), end.astimezone(ZONE)
    hours = OPENING_HOURS[local_start.weekday()]
    return (
        hours is not None
        and local_start.date() == local_end.date()
        and hours[0] <= local_start.time()
        and local_end.time() <= hours[1]
    )
