"""The API's operations as the facade and the booking flows use them: each checks its arguments
(a ``TypeError``/``ValueError`` before any request), calls one generated operation through
``Requester.request`` and returns the public model.

It sits below both of its users: ``AppointmentsClient`` hands its reads to it, and the booking
flows (``_booking/``) read and validate through it, so neither depends on the other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from . import _studio_limits as studio_limits
from ._arguments import require_id, require_int
from ._call_options import CallOptions, bounded, current_bound
from ._constants import MAX_DAYS_AHEAD, MAX_SLICE_SIZE, MIN_SLICE_SIZE
from ._exceptions import AuthenticationError, BadRequestError
from ._generated.types import UNSET
from ._request import Requester, logger
from ._studio_limits import DAYS_AHEAD, SLICE_SIZE

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._generated.models import AppointmentBookingRequest
    from ._models import BookableAppointment, Booking, Page, Slot, ValidationStatus
    from ._pagination import AsyncPaginator


class _OnFirstUse:
    """A module imported on the first attribute asked of it, each attribute then kept here: the
    generated operations (and the attrs models they parse into) load with the first call, not
    with the client (importing the client stays within 1.25 x ``import httpx``, RESULTS.md), and
    later calls find an operation with one attribute lookup, not an import statement's machinery."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module(self._module), name)
        setattr(self, name, value)
        return value


if TYPE_CHECKING:
    from ._generated.api import appointments as generated
else:
    generated = _OnFirstUse("perfectgym_appointments_client._generated.api.appointments")

__all__ = ["Operations"]


class Operations:
    """One client's operations over its :class:`Requester` (``client._ops``)."""

    def __init__(self, api: Requester) -> None:
        self.api = api
        # The task group of ``async with client``, where listings prefetch their next page.
        self.task_group: TaskGroup | None = None

    async def check_api_key(self) -> bool:

        try:
            await self.api.request(generated.check_api_key)
        except AuthenticationError:
            return False
        return True

    # -- bookable appointments ------------------------------------------------------------------
    def bookable_appointments(
        self, slice_size: int, limit: int | None, options: CallOptions | None = None
    ) -> AsyncPaginator[BookableAppointment]:
        require_int("slice_size", slice_size, low=MIN_SLICE_SIZE, high=MAX_SLICE_SIZE)
        if limit is not None:
            require_int("limit", limit, low=1)

        base_url = self.api.base_url

        async def fetch(offset: str, number: int) -> Page[BookableAppointment]:
            from ._models import Page

            while True:
                # The size this studio accepts (_studio_limits.py): 10..100 unless it said otherwise.
                size = studio_limits.fit(base_url, SLICE_SIZE, slice_size)
                try:
                    # Each page is a call of its own: the per-call bounds count from its request.
                    with bounded(options or CallOptions()):
                        page = await self.api.request(
                            generated.get_bookable_appointments, offset=offset, slice_size=size
                        )
                except BadRequestError as exc:
                    # A studio stricter than the documented bounds: learn its own, ask again.
                    if not studio_limits.learn(base_url, exc, SLICE_SIZE, size, logger):
                        raise
                    continue
                return Page(items=page.result, has_next=page.has_next, offset=page.offset, number=number)

        from ._pagination import AsyncPaginator  # listing only: not loaded with the client

        return AsyncPaginator(fetch, operation="getBookableAppointments", limit=limit, spawn=self._spawner())

    def _spawner(self) -> Callable[[Callable[[], Coroutine[Any, Any, None]]], None] | None:
        task_group = self.task_group
        if task_group is None:
            return None

        def spawn(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
            task_group.start_soon(job)

        return spawn

    def get_bookable_appointment(self, bookable_appointment_id: int) -> Awaitable[BookableAppointment]:
        # The request's own awaitable, not a coroutine around it: one fewer on every call's way.
        require_id("bookable_appointment_id", bookable_appointment_id)
        return self.api.request(generated.get_bookable_appointment, bookable_appointment_id)

    # -- slots ----------------------------------------------------------------------------------
    async def get_slots(
        self,
        bookable_appointment_id: int,
        customer_id: int | None,
        days_ahead: int | None,
        start_date: dt.date | None,
    ) -> list[Slot]:
        require_id("bookable_appointment_id", bookable_appointment_id)
        start_date = _slot_window_arguments(customer_id, days_ahead, start_date)
        if days_ahead is None:  # the API's default window: nothing of the studio's to fit
            return await self._slots_window(bookable_appointment_id, customer_id, None, start_date)
        base_url = self.api.base_url
        while True:
            # The windows this studio accepts (_studio_limits.py): 1..6 days unless it said otherwise.
            low, high = studio_limits.bounds(base_url, DAYS_AHEAD)
            try:
                if low <= days_ahead <= high:
                    return await self._slots_window(
                        bookable_appointment_id, customer_id, days_ahead, start_date
                    )
                return await self._slots_windows(
                    bookable_appointment_id, customer_id, days_ahead, start_date, low, high
                )
            except _Refused as refused:
                # A studio stricter than the documented bounds: learn its own, ask again within them.
                if not studio_limits.learn(base_url, refused.error, DAYS_AHEAD, refused.asked, logger):
                    raise refused.error from None

    async def _slots_window(
        self, appointment_id: int, customer_id: int | None, days: int | None, first_day: dt.date | None
    ) -> list[Slot]:

        try:
            return await self.api.request(
                generated.get_bookable_appointment_slots,
                appointment_id,
                customer_id=UNSET if customer_id is None else customer_id,
                days_ahead=UNSET if days is None else days,
                slot_window_start_date=UNSET if first_day is None else first_day,
            )
        except BadRequestError as exc:
            if days is not None and exc.reference == DAYS_AHEAD:
                raise _Refused(exc, days) from None
            raise

    async def _slots_windows(
        self,
        appointment_id: int,
        customer_id: int | None,
        days: int,
        start_date: dt.date | None,
        low: int,
        high: int,
    ) -> list[Slot]:
        """``days`` of slots in windows of ``low`` to ``high`` days (the studio's bounds): the
        windows of a long span, or one window of ``low`` days trimmed to a shorter span."""
        found: list[Slot] = []
        trim_to: int | None = None
        if days < low:
            trim_to, days = days, low
        first = 0
        if start_date is None:
            # "Today" is the studio's, and only its answers say which zone that is: the first
            # window goes without a date, and its slots name the zone for the rest.
            first = min(high, days)
            found = await self._slots_window(appointment_id, customer_id, first, None)
            if found:
                start_date = dt.datetime.now(found[0].start_date_time.tzinfo).date()
            elif first < days:
                # No slot, no zone. The studio's today is within a day of UTC's: starting a day
                # early and ending a day late leaves no gap after the first window, and each
                # slot is then trimmed by its own zone's today.
                start_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
                trim_to, days = trim_to or days, days + 2
        windows = _windows(first, days, low, high)
        answers: dict[int, list[Slot]] = {}

        def window(offset: int, size: int) -> Callable[[], Awaitable[None]]:
            async def fetch() -> None:
                assert start_date is not None
                answers[offset] = await self._slots_window(
                    appointment_id, customer_id, size, start_date + dt.timedelta(days=offset)
                )

            return fetch

        # All the windows' turns before the first is sent: the call gets what it needs or sends
        # nothing, instead of spending half an endpoint's budget on an answer it cannot give.
        slots_operation = generated.get_bookable_appointment_slots

        throttle = self.api.throttle
        reservation = (
            contextlib.nullcontext()
            if throttle is None or not windows
            else throttle.reserved(
                slots_operation.OPERATION_ID, len(windows), patience=self.api.patience(current_bound.get())
            )
        )
        async with reservation:
            from ._concurrency import run_all

            await run_all(window(offset, size) for offset, size in windows)
        for offset, _ in windows:
            found.extend(answers[offset])
        if trim_to is not None and found:
            found = _trimmed(found, trim_to, None if first else start_date)
        return merge_slots(found)

    async def search_slots(
        self,
        bookable_appointment_ids: Iterable[int],
        customer_id: int | None,
        days_ahead: int | None,
        start_date: dt.date | None,
        concurrency: int,
    ) -> dict[int, list[Slot]]:
        ids = list(bookable_appointment_ids)
        for appointment_id in ids:
            require_id("bookable_appointment_ids[]", appointment_id)
        require_int("concurrency", concurrency, low=1)
        start_date = _slot_window_arguments(customer_id, days_ahead, start_date)
        unique = list(dict.fromkeys(ids))
        found: dict[int, list[Slot]] = {}

        def one(appointment_id: int) -> Callable[[], Awaitable[None]]:
            async def fetch() -> None:
                found[appointment_id] = await self.get_slots(
                    appointment_id, customer_id, days_ahead, start_date
                )

            return fetch

        from ._concurrency import run_all

        await run_all((one(appointment_id) for appointment_id in unique), limit=concurrency)
        return {appointment_id: found[appointment_id] for appointment_id in unique}

    # -- validation and bookings ----------------------------------------------------------------
    async def validate(self, body: AppointmentBookingRequest) -> ValidationStatus:

        result = await self.api.request(generated.validate_for_appointment_booking, body=body)
        return result.validation_status

    async def get_booking(self, booking_id: int) -> Booking:
        require_id("booking_id", booking_id)
        from ._models import Booking

        return Booking.from_api(await self.api.request(generated.get_appointment_booking, booking_id))

    async def list_bookings(self, customer_id: int) -> list[Booking]:
        require_id("customer_id", customer_id)
        from ._models import Booking

        raw = await self.api.request(generated.get_appointment_bookings, customer_id=customer_id)
        return [Booking.from_api(b, customer_id=customer_id) for b in raw]


def _slot_window_arguments(
    customer_id: int | None, days_ahead: int | None, start_date: dt.date | None
) -> dt.date | None:
    """Check a slot window's arguments (before any request); the first day as a date."""
    if customer_id is not None:
        require_id("customer_id", customer_id)
    if days_ahead is not None:
        require_int("days_ahead", days_ahead, low=1, high=MAX_DAYS_AHEAD)
    if start_date is not None:
        if isinstance(start_date, dt.datetime):
            from ._zoned import require_aware

            start_date = require_aware(start_date, "start_date").date()
        elif not isinstance(start_date, dt.date):
            raise TypeError(f"start_date must be a datetime.date, got {type(start_date).__name__}")
        if (dt.date.max - start_date).days < (days_ahead or 1):
            raise ValueError(
                f"the window from {start_date} for {days_ahead or 1} days ends after {dt.date.max}"
            )
    return start_date


class _Refused(Exception):
    """A slot window's ``daysAhead`` was refused: the error, and how many days that window asked."""

    def __init__(self, error: BadRequestError, asked: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.asked = asked


def _windows(first: int, days: int, low: int, high: int) -> list[tuple[int, int]]:
    """``(offset, size)`` windows covering days ``first`` to ``days`` (exclusive), each of ``low``
    to ``high`` days: a last window shorter than ``low`` starts earlier instead (overlapping the
    one before, whose duplicates are merged away)."""
    windows = []
    for offset in range(first, days, high):
        size = min(high, days - offset)
        if size < low:
            offset, size = max(0, days - low), min(low, days)
        windows.append((offset, size))
    return windows


def _trimmed(slots: list[Slot], days: int, first_day: dt.date | None) -> list[Slot]:
    """The slots starting on the ``days`` days from ``first_day`` (None: the studio's today, in
    each slot's own zone)."""
    ends: dict[Any, dt.date] = {}
    for slot in slots:
        zone = slot.start_date_time.tzinfo
        if zone not in ends:
            start = first_day if first_day is not None else dt.datetime.now(zone).date()
            ends[zone] = start + dt.timedelta(days=days)
    return [s for s in slots if s.start_date_time.date() < ends[s.start_date_time.tzinfo]]


def merge_slots(slots: list[Slot]) -> list[Slot]:
    """One list in time order (by instant), each slot once: windows may overlap at their edges."""
    from ._zoned import instant

    unique: dict[tuple[dt.timedelta, dt.timedelta], Slot] = {}
    for slot in slots:
        unique.setdefault((instant(slot.start_date_time), instant(slot.end_date_time)), slot)
    return [unique[key] for key in sorted(unique)]
