"""Argument checks shared by the client and the booking flows: each runs before any request.

A wrong argument is a ``TypeError`` or ``ValueError`` naming it, never a request the API refuses.
Date-times are compared by instant (:func:`instant`), never by wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._generated.models import AppointmentBookingRequest
    from ._models import SlotLike

__all__ = [
    "MAX_ID",
    "booking_request",
    "check_slot",
    "require_id",
    "require_int",
    "start_filter",
]


MAX_ID = 2**63 - 1
"""The API's ids are int64: a larger one could only be answered 400 (or wrapped by the server)."""


def require_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        # str() of an int past 4300 digits raises a ValueError of its own, about something else.
        got = str(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit number"
        raise ValueError(f"{name} must be {bounds}, got {got}")
    return value


def require_id(name: str, value: object) -> int:
    return require_int(name, value, low=1, high=MAX_ID)


def check_slot(slot: object) -> tuple[dt.datetime, dt.datetime]:
    try:
        start = slot.start_date_time  # type: ignore[attr-defined]
        end = slot.end_date_time  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            f"slot must have start_date_time and end_date_time (a Slot from get_slots), got {type(slot).__name__}"
        ) from None
    from ._zoned import instant, require_aware  # with the first booking, not with the client

    require_aware(start, "slot.start_date_time")
    require_aware(end, "slot.end_date_time")
    # By instant: a 60-minute slot across the autumn change ends at a wall time before it starts.
    if instant(end) <= instant(start):
        raise ValueError(f"slot ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return start, end


def booking_request(
    customer_id: int, bookable_appointment_id: int, slot: SlotLike, instructor_ids: Sequence[int] | None
) -> AppointmentBookingRequest:
    # The attrs model loads with the first booking request, not with the client (import time).
    from ._generated.models import AppointmentBookingRequest
    from ._generated.types import UNSET

    require_id("customer_id", customer_id)
    require_id("bookable_appointment_id", bookable_appointment_id)
    start, end = check_slot(slot)
    if instructor_ids is None:
        instructors = getattr(slot, "instructors", None)
        ids = (
            [i if isinstance(i, int) else i.id for i in instructors]
            if isinstance(instructors, (list, tuple))
            else []
        )
    else:
        ids = [require_id("instructor_ids[]", i) for i in instructor_ids]
    return AppointmentBookingRequest(
        customer_id=customer_id,
        bookable_appointment_id=bookable_appointment_id,
        start_date_time=start,
        end_date_time=end,
        instructor_ids=ids if ids else UNSET,
    )


def start_filter(
    earliest: dt.datetime | dt.time | None, latest: dt.datetime | dt.time | None
) -> Callable[[dt.datetime], bool]:
    """Whether a slot's start is within the bounds: an aware datetime bounds the instant, a time
    of day the wall clock in the slot's own (the studio's) zone."""
    from ._zoned import instant, require_aware

    for name, bound in (("earliest", earliest), ("latest", latest)):
        if isinstance(bound, dt.datetime):
            require_aware(bound, name)
        elif bound is not None and not isinstance(bound, dt.time):
            raise TypeError(f"{name} must be an aware datetime or a time of day, got {type(bound).__name__}")

    def ok(start: dt.datetime) -> bool:
        for bound, after in ((earliest, True), (latest, False)):
            if bound is None:
                continue
            if isinstance(bound, dt.datetime):
                value, limit = instant(start), instant(bound)
                if (value < limit) if after else (value > limit):
                    return False
            else:
                wall, wall_limit = start.time(), bound.replace(tzinfo=None)
                if (wall < wall_limit) if after else (wall > wall_limit):
                    return False
        return True

    return ok
