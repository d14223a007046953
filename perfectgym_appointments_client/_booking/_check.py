"""The booking check: was a booking made for a request whose answer was lost? Only evidence
counts (rule 2 in ``__init__.py``). Its reads are tried harder than a plain read."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import attrs

from .._breaker import evidence_reads
from .._exceptions import (
    APIConnectionError,
    APIError,
    InternalServerError,
    PerfectGymError,
    RateLimitError,
)
from .._generated.models import AppointmentBookingRequest
from .._models import Booking, ValidationStatus
from .._operations import Operations
from .._retry import RetryPolicy
from .._zoned import instant
from ._evidence import Evidence, in_list_window, unknown

__all__ = ["BookingCheck"]

T = TypeVar("T")

# Rounds of the check's reads, each with the client's retries: at a 15% fault rate and two
# retries, one round fails about once in 300 checks; three rounds, once in 30 million.
CHECK_ROUNDS = 3
# Bookings this client's calls made or returned, remembered so that one call's check never credits
# itself with another's. A claim matters while another flow for the same slot may still be
# checking (the flow's run bound, minutes); at the API's 1,000 bookings a minute this many cover
# ten minutes. The oldest are forgotten first.
MAX_CLAIMS = 10_000


class BookingCheck:
    def __init__(self, ops: Operations, *, settle: float) -> None:
        self.ops = ops
        self.settle = settle
        self._titles: dict[int, str | None] = {}
        self._claims: OrderedDict[int, None] = OrderedDict()
        # Where "now" is for the bookings list's window; a test against a sandbox with a pinned
        # clock sets the same one here.
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.ops.api.retry_policy

    def in_list_window(self, body: AppointmentBookingRequest) -> bool:
        return in_list_window(body, self.now())

    def claim(self, booking: Booking) -> None:
        """A call of this client made or returned ``booking``: no other call's check credits itself with it."""
        self._claims[booking.booking_id] = None
        self._claims.move_to_end(booking.booking_id)
        while len(self._claims) > MAX_CLAIMS:
            self._claims.popitem(last=False)

    def is_claimed(self, booking: Booking) -> bool:
        return booking.booking_id in self._claims

    async def held(self, body: AppointmentBookingRequest) -> Booking | None:
        """The customer's active booking of this appointment at exactly this slot, if the bookings
        list can show it: returned (``already_existed``) instead of a refusal to book it again."""
        if not self.in_list_window(body):
            return None
        found = await self._held_among(await self.listed_at_instant(body), body)
        if found is not None:
            self.claim(found)
        return found

    async def __call__(self, body: AppointmentBookingRequest, validated: bool, cause: APIError) -> Evidence:
        """Was a booking made for ``body``? ``validated``: the slot validated AVAILABLE just
        before the request (evidence a later CUSTOMER_IN_OTHER_BOOKING can use)."""
        await anyio.sleep(self.settle)
        try:
            if self.in_list_window(body):
                matches = await self.listed_at_instant(body)
                unclaimed = [b for b in matches if not self.is_claimed(b)]
                if unclaimed:
                    return Evidence(made=True, booking=await self._pick(unclaimed, body))
                held = await self._held_among(matches, body)
                if held is not None:
                    return Evidence(
                        made=False,
                        held=held,
                        detail="the booking at that time is one another call of this client made or returned",
                    )
                return Evidence(made=False, detail="the bookings list shows none at that time")
            status = await self.look(lambda: self.ops.validate(body))
        except PerfectGymError as exc:
            raise unknown(body, cause, f"checking whether it was made failed too ({exc})") from exc
        if status is ValidationStatus.AVAILABLE:
            return Evidence(made=False, detail="the slot validates AVAILABLE again")
        if status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING and validated:
            return Evidence(
                made=True,
                detail="the slot validated AVAILABLE before the request and CUSTOMER_IN_OTHER_BOOKING after it",
            )
        raise unknown(body, cause, f"the slot now validates {status}, which proves neither")

    async def look(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read of the booking check, tried harder than a plain read: its answer decides whether
        a member ends up booked twice or "unknown", and reads are safe to repeat. Each round is a
        call with the client's own retries; a round fails only when all of those did."""
        policy = self.retry_policy
        for round_number in range(CHECK_ROUNDS):
            try:
                # Past the studio's circuit breaker: this answer is worth the wait.
                with evidence_reads():
                    return await read()
            except (APIConnectionError, InternalServerError, RateLimitError) as exc:
                if round_number == CHECK_ROUNDS - 1:
                    raise
                await policy.sleep(policy.delay(exc, policy.max_retries + round_number))
        raise AssertionError("unreachable")  # pragma: no cover

    async def listed_at_instant(self, body: AppointmentBookingRequest) -> list[Booking]:
        """The customer's active bookings at exactly the slot's instants, as listed now."""
        listed = await self.look(lambda: self.ops.list_bookings(body.customer_id))
        start, end = instant(body.start_date_time), instant(body.end_date_time)
        return [
            b
            for b in listed
            if not b.is_canceled and instant(b.start_date_time) == start and instant(b.end_date_time) == end
        ]

    async def _pick(self, matches: list[Booking], body: AppointmentBookingRequest) -> Booking:
        if len(matches) > 1:
            title = await self.look(lambda: self._title(body.bookable_appointment_id))
            titled = [b for b in matches if title is not None and b.title == title]
            matches = titled or matches
        return max(matches, key=booking_id)

    async def _held_among(self, matches: list[Booking], body: AppointmentBookingRequest) -> Booking | None:
        """The oldest of ``matches`` that is a booking of the body's appointment (by its title, which
        a booking shows), marked ``already_existed``; None when there is none or the title cannot
        be told."""
        if not matches:
            return None
        title = await self.look(lambda: self._title(body.bookable_appointment_id))
        same = [b for b in matches if title is not None and b.title == title]
        return attrs.evolve(min(same, key=booking_id), already_existed=True) if same else None

    async def _title(self, bookable_appointment_id: int) -> str | None:
        if bookable_appointment_id not in self._titles:
            appointment = await self.ops.get_bookable_appointment(bookable_appointment_id)
            self._titles[bookable_appointment_id] = (
                appointment.title if isinstance(appointment.title, str) else None
            )
        return self._titles[bookable_appointment_id]


def booking_id(booking: Booking) -> int:
    return booking.booking_id
