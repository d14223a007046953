"""Rule 6: book_first_available validates up to ``concurrency`` candidates at once but decides
them strictly in time order, and books exactly one (or raises NoSlotAvailableError). An answer
about the customer rather than the slot ends the search: no later slot can answer otherwise."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from .._arguments import booking_request, require_id, require_int, start_filter
from .._concurrency import run_all
from .._constants import MAX_DAYS_AHEAD
from .._exceptions import APIError, NoSlotAvailableError, SlotNotBookableError
from .._models import Booking, Slot, ValidationStatus
from .._operations import Operations
from .._zoned import instant
from ._book import book
from ._check import BookingCheck
from ._shield import Shield

__all__ = ["CUSTOMER_WIDE_STATUSES", "MAX_CANDIDATES", "book_first_available"]

# How many slots, earliest first, one call validates at most.
MAX_CANDIDATES = 200

# Validation answers about the customer or the appointment, not the slot: once one comes back,
# no other slot of the same appointment can validate AVAILABLE for this customer.
# CUSTOMER_IDLE is not one of them: an idle period ends on a date, so a later slot may be fine.
CUSTOMER_WIDE_STATUSES = frozenset(
    {
        ValidationStatus.NO_CONTINGENT,
        ValidationStatus.BOOKING_LIMIT_REACHED,
        ValidationStatus.BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED,
        ValidationStatus.NOT_AVAILABLE,
    }
)


async def book_first_available(
    check: BookingCheck,
    shield: Shield,
    customer_id: int,
    bookable_appointment_id: int,
    start_date: dt.date | None,
    days_ahead: int,
    earliest: dt.datetime | dt.time | None,
    latest: dt.datetime | dt.time | None,
    instructor_id: int | None,
    concurrency: int,
) -> Booking:
    require_id("customer_id", customer_id)
    require_id("bookable_appointment_id", bookable_appointment_id)
    require_int("days_ahead", days_ahead, low=1, high=MAX_DAYS_AHEAD)
    require_int("concurrency", concurrency, low=1)
    if instructor_id is not None:
        require_id("instructor_id", instructor_id)
    ops = check.ops
    starts_ok = start_filter(earliest, latest)
    slots = await ops.get_slots(bookable_appointment_id, customer_id, days_ahead, start_date)
    # The earliest MAX_CANDIDATES only: a year of slots a customer may not book would otherwise be
    # thousands of validations for one call.
    candidates = sorted(
        (
            s
            for s in slots
            if starts_ok(s.start_date_time)
            and (instructor_id is None or any(i.id == instructor_id for i in s.instructors or ()))
        ),
        key=lambda s: instant(s.start_date_time),
    )[:MAX_CANDIDATES]
    instructor_ids = None if instructor_id is None else [instructor_id]
    statuses: Counter[str] = Counter()
    first_error: BaseException | None = None
    checked = 0
    # Closed at once when the loop ends early: validations in flight must not outlive it.
    async with contextlib.aclosing(
        _validate_in_order(ops, customer_id, bookable_appointment_id, candidates, instructor_ids, concurrency)
    ) as outcomes:
        async for slot, outcome in outcomes:
            checked += 1
            if isinstance(outcome, BaseException):
                statuses["ERROR"] += 1
                first_error = first_error or outcome
                continue
            if outcome is not ValidationStatus.AVAILABLE:
                statuses[str(outcome)] += 1
                if outcome in CUSTOMER_WIDE_STATUSES:
                    break  # no other slot can answer differently: stop validating
                continue
            body = booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
            try:
                # It just validated AVAILABLE: evidence the booking check can use.
                return await shield.run("book", body, book, check, body, True)
            except SlotNotBookableError as exc:  # taken meanwhile: try the next one
                statuses["TAKEN_MEANWHILE"] += 1
                first_error = first_error or exc
                if exc.status in CUSTOMER_WIDE_STATUSES:
                    break
    summary = ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())) or "no slots in the window"
    raise NoSlotAvailableError(
        f"no bookable slot for customer {customer_id} on bookable appointment {bookable_appointment_id} "
        f"({checked} of {len(candidates)} candidates checked: {summary})",
        checked=checked,
        statuses=statuses,
    ) from first_error


async def _validate_in_order(
    ops: Operations,
    customer_id: int,
    bookable_appointment_id: int,
    candidates: list[Slot],
    instructor_ids: list[int] | None,
    concurrency: int,
) -> AsyncGenerator[tuple[Slot, ValidationStatus | BaseException], None]:
    """Yield (slot, status or error) in candidate order, validating ``concurrency`` ahead.

    Works in windows so that no task group stays open across a ``yield``.
    """
    for start in range(0, len(candidates), concurrency):
        window = candidates[start : start + concurrency]
        outcomes: list[ValidationStatus | BaseException | None] = [None] * len(window)

        def check(outcomes: list[Any], index: int, slot: Slot) -> Callable[[], Awaitable[None]]:
            async def validate() -> None:
                try:
                    outcomes[index] = await ops.validate(
                        booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
                    )
                except APIError as exc:  # an answer about this slot, decided in order below
                    outcomes[index] = exc

            return validate

        await run_all(check(outcomes, index, slot) for index, slot in enumerate(window))
        for slot, outcome in zip(window, outcomes, strict=True):
            assert outcome is not None
            yield slot, outcome
