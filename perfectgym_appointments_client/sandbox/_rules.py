"""The validation rules: the ValidationStatus of a slot, first failing rule first.

Pure functions of the studio's state: the same answer for POST .../validate, for a booking (which
books only an AVAILABLE slot) and for the slots list (which shows only AVAILABLE ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container

from ._calendar import on_grid, studio_open, utc
from ._ledger import Ledger
from ._model import ZONE, Appointment, Customer, about_id

__all__ = ["check", "check_instructors", "free_instructors", "time_status"]


def time_status(appointment: Appointment, start: dt.datetime, end: dt.datetime, *, now: dt.datetime,
                horizon: dt.timedelta) -> str:  # fmt: skip
    """The rules about the appointment and the time alone, whoever books."""
    instant, begin, finish = utc(now), utc(start), utc(end)
    if finish <= begin:
        return "END_DATE_TIME_NOT_AFTER_START_DATE_TIME"
    if not appointment.online:
        return "NOT_AVAILABLE"
    if begin <= instant:
        return "PAST_START_DATE_TIME"
    if not on_grid(start, end, appointment):
        return "PERIOD_DOES_NOT_MATCH"
    if begin - instant < appointment.lead_time:
        return "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME"
    if begin - instant > horizon:
        return "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME"
    if not appointment.all_hours and not studio_open(start, end):
        return "STUDIO_CLOSED"
    return "AVAILABLE"


def free_instructors(ledger: Ledger, appointment: Appointment, start: dt.datetime, end: dt.datetime,
                     wanted: list[int] | None = None) -> list[int]:  # fmt: skip
    if ledger.busy(start, end, appointment_id=appointment.id):
        return []  # the appointment's room or device is taken for this window
    candidates = [i for i in appointment.instructor_ids if not wanted or i in wanted]
    return [i for i in candidates if not ledger.busy(start, end, instructor_id=i)]


def check(ledger: Ledger, customer: Customer, appointment: Appointment, start: dt.datetime, end: dt.datetime,
          *, now: dt.datetime, horizon: dt.timedelta, wanted: list[int] | None = None) -> str:  # fmt: skip
    """The ValidationStatus of this slot for this customer.

    In order: the end after the start; the appointment bookable online; the start in the
    future, on the appointment's grid with its duration, outside its lead time, inside the
    booking horizon, in opening hours; the customer not idle that day, allowed by the
    appointment's restrictions, with a credit in its category, under the booking limit and
    free at that time; the room and one (wanted) instructor free.
    """
    status = time_status(appointment, start, end, now=now, horizon=horizon)
    if status != "AVAILABLE":
        return status
    day = start.astimezone(ZONE).date()
    if any(first <= day <= last for first, last in customer.idle_periods):
        return "CUSTOMER_IDLE"
    if appointment.premium_only and not customer.premium:
        return "BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED"
    if customer.contingent.get(appointment.category, 0) <= 0:
        return "NO_CONTINGENT"
    if ledger.active_after(customer.id, now) >= customer.booking_limit:
        return "BOOKING_LIMIT_REACHED"
    if ledger.busy(start, end, customer_id=customer.id):
        return "CUSTOMER_IN_OTHER_BOOKING"
    if not free_instructors(ledger, appointment, start, end, wanted):
        return "RESOURCE_NOT_AVAILABLE"
    return "AVAILABLE"


def check_instructors(known: Container[int], wanted: list[int] | None) -> None:
    """Refuse (400) a wanted instructor the studio does not have, before any rule is checked."""
    for instructor_id in wanted or ():
        if instructor_id not in known:
            raise about_id(400, "errormessage.instructor.not.found", instructor_id, "instructorIds")
