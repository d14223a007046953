"""The booking flows and their safety rules: book, the booking check, cancel, reschedule, and
book_first_available. Every rule that keeps a member from being booked twice, or told "not booked"
when they are, is here.

1. A booking request is repeated only on evidence that the first one made nothing: it never
   arrived (429, a failed connect), or the booking check says so. The API has no idempotency key.
2. The booking check (:meth:`BookingFlows._check`) waits ``settle`` seconds (a request may still be
   in progress at the server), then looks:
   - inside the bookings list's window (+/- 2 weeks around now): an active booking of the customer
     at exactly that instant means it was made (the title only breaks ties); none means it was not;
   - outside it: the slot validating AVAILABLE again means nothing was made; CUSTOMER_IN_OTHER_BOOKING
     for a slot that validated AVAILABLE just before means it was made, though its id cannot be
     read (:class:`BookingIdUnknownError`); anything else proves nothing
     (:class:`BookingOutcomeUnknownError`).
3. After a repeated booking request the list is read once more: two active bookings of the customer
   at that instant means both requests were made, and the newer one is canceled.
4. Once a booking or cancel request may be at the server, the flow runs to its end even if the
   caller is cancelled (a web app's timeout, a client that went away), bounded by the client's
   timeout; then the cancellation goes on, and the outcome is reported: a WARNING log record and
   ``on_booking_outcome``.
5. ``reschedule`` books the new slot before it cancels the old booking: it never ends with neither.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import inspect
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
import attrs
import sniffio

from ._arguments import booking_request, require_id, require_int, start_filter
from ._constants import MAX_SLICE_SIZE
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NoSlotAvailableError,
    NotFoundError,
    PerfectGymError,
    RateLimitError,
    RescheduleError,
    ResponseValidationError,
    SlotNotBookableError,
)
from ._generated.api.appointments import book_appointment_booking, delete_appointment_booking
from ._generated.models import AppointmentBooking, AppointmentBookingRequest, CancelResult
from ._models import Booking, Slot, SlotLike, ValidationStatus
from ._request import Requester, logger
from ._retry import Resolved
from ._zoned import instant

if TYPE_CHECKING:
    from ._client import AppointmentsClient

__all__ = ["BookingFlows", "BookingOutcome", "OutcomeKind"]

T = TypeVar("T")

# Rounds of the check's reads, each with the client's retries: at a 15% fault rate and two
# retries, one round fails about once in 300 checks; three rounds, once in 30 million.
CHECK_ROUNDS = 3
LIST_WINDOW = dt.timedelta(days=14)
# Our clock and the server's differ a little; a slot this close to the window's edge may or may
# not be listed, so the list is not trusted to show it.
LIST_MARGIN = dt.timedelta(hours=1)
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


class OutcomeKind(enum.StrEnum):
    """How a booking flow ended (``BookingOutcome.kind``)."""

    BOOKED = "booked"
    """A booking was made and its id is known."""
    BOOKED_ID_UNKNOWN = "booked_id_unknown"
    """A booking was made (proven) but its id could not be read: outside the list's window."""
    NOT_BOOKED = "not_booked"
    """Nothing was booked (proven)."""
    UNKNOWN = "unknown"
    """It could not be told whether a booking was made."""
    CANCELED = "canceled"
    """The booking is canceled."""
    NOT_CANCELED = "not_canceled"
    """The booking is still active (or it could not be told): the cancel failed."""
    RESCHEDULED = "rescheduled"
    """The new booking was made and the old one canceled."""
    BOTH_BOOKINGS = "both_bookings"
    """Reschedule booked the new slot (or may have) but could not cancel the old booking."""


@attrs.frozen(kw_only=True)
class BookingOutcome:
    """What a booking flow ended with, given to ``AppointmentsClient(on_booking_outcome=...)``.

    Reported once per ``book``, ``cancel_booking`` and ``reschedule`` whose request was sent,
    whether the call returned, raised, or was cancelled by its caller (``caller_cancelled``):
    an app that stores bookings learns of every one, even one whose call it abandoned.
    """

    operation: str
    """``book``, ``cancel`` or ``reschedule``."""
    kind: OutcomeKind
    booking_id: int | None = None
    """The booking made (book, reschedule), or the one canceled (cancel)."""
    customer_id: int | None = None
    bookable_appointment_id: int | None = None
    start_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None
    canceled_booking_ids: tuple[int, ...] = ()
    """Bookings this flow canceled besides: a duplicate, or reschedule's old booking."""
    old_booking_id: int | None = None
    """reschedule: the booking being moved."""
    caller_cancelled: bool = False
    error: BaseException | None = attrs.field(default=None, eq=False)
    """The error the call raised (or would have, had it not been cancelled)."""


OutcomeHook = Callable[[BookingOutcome], Awaitable[None] | None]


@attrs.define
class _Evidence:
    made: bool | None  # None: unknown
    booking: Booking | None = None
    detail: str = ""


class BookingFlows:
    """The booking flows of one :class:`AppointmentsClient` (``client._flows``)."""

    def __init__(
        self,
        client: AppointmentsClient,
        api: Requester,
        *,
        settle: float,
        on_outcome: OutcomeHook | None,
        run_bound: float,
    ) -> None:
        self._client = client
        self._api = api
        self.settle = settle
        self._on_outcome = on_outcome
        self._run_bound = run_bound
        self._titles: dict[int, str | None] = {}
        # Where "now" is for the bookings list's window; a test against a sandbox with a pinned
        # clock sets the same one here.
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    # -- book ---------------------------------------------------------------------------------------
    async def book(
        self, body: AppointmentBookingRequest, *, validate: bool, validated: bool = False
    ) -> Booking:
        """``validate``: validate first (SlotNotBookableError unless AVAILABLE); ``validated``:
        the caller just saw it validate AVAILABLE (evidence the check can use)."""
        if validate:
            status = await self._client._validate(body)
            if status is not ValidationStatus.AVAILABLE:
                raise SlotNotBookableError(
                    status, customer_id=body.customer_id, bookable_appointment_id=body.bookable_appointment_id
                )
            validated = True

        async def run() -> tuple[Booking, BookingOutcome]:
            booking, duplicates = await self._book_once(body, validated)
            return booking, self._outcome("book", OutcomeKind.BOOKED, body, booking.booking_id, duplicates)

        return await self._to_the_end("book", body, run)

    async def _book_once(
        self, body: AppointmentBookingRequest, validated: bool
    ) -> tuple[Booking, tuple[int, ...]]:
        """The booking request and its check. Returns the booking and any duplicate it canceled."""
        repeated = False

        async def decide(exc: APIError, can_retry: bool) -> bool | Resolved:
            nonlocal repeated
            refused = _refusal_status(exc)
            # A refusal is an answer: nothing was booked by this request. But after a repeat,
            # "customer in other booking" may be our first request, committed late.
            if refused is not None and not (
                repeated and refused is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING
            ):
                raise SlotNotBookableError(
                    refused,
                    customer_id=body.customer_id,
                    bookable_appointment_id=body.bookable_appointment_id,
                ) from exc
            if _never_arrived(exc):  # sending again cannot make a second booking
                return self._api.retry_policy.is_retryable(exc)
            if not _ambiguous(exc) and refused is None:
                return False  # 400/401/403/404: an answer, and nothing was made
            evidence = await self._check(body, validated, exc)
            if evidence.made:
                if evidence.booking is not None:
                    logger.warning(
                        "bookAppointmentBooking failed (%s) but booking %s was made; returning it",
                        exc, evidence.booking.booking_id,
                    )  # fmt: skip
                    return Resolved(evidence.booking)
                raise _id_unknown(body, exc, evidence.detail)
            # Proven: nothing was made. A refusal says why; a success status we could not read is
            # not worth repeating; any other failure is, if the policy allows.
            if refused is not None:
                raise SlotNotBookableError(
                    refused,
                    customer_id=body.customer_id,
                    bookable_appointment_id=body.bookable_appointment_id,
                ) from exc
            if isinstance(exc, ResponseValidationError):
                return False
            retry = self._api.retry_policy.is_retryable(exc) or isinstance(exc, ConflictError)
            repeated = repeated or (retry and can_retry)
            return retry

        # Resolved by the check: the Booking a failed request did make.
        result: AppointmentBooking | Booking = await self._api.request(
            book_appointment_booking, body=body, decide=decide
        )
        booking = (
            result if isinstance(result, Booking) else Booking.from_api(result, customer_id=body.customer_id)
        )
        if not repeated or not _in_list_window(body, self.now()):
            return booking, ()
        return await self._drop_duplicate(body, booking)

    async def _drop_duplicate(
        self, body: AppointmentBookingRequest, booking: Booking
    ) -> tuple[Booking, tuple[int, ...]]:
        """After a repeated request: if both requests made a booking, cancel the newer one."""
        try:
            await anyio.sleep(self.settle)
            listed = await self._look(lambda: self._client.list_bookings(body.customer_id))
            same = sorted(self._at_instant(listed, body), key=_id)
        except PerfectGymError as exc:
            logger.warning("could not look for a duplicate of booking %s: %s", booking.booking_id, exc)
            return booking, ()
        if len(same) < 2:
            return booking, ()
        keep, canceled = same[0], []
        for duplicate in same[1:]:
            try:
                await self._cancel_once(duplicate.booking_id)
            except PerfectGymError as exc:
                # The booking stands either way; the duplicate stays, and the log says so.
                logger.warning(
                    "booking was made twice for customer %s (%s and %s) and the second could not be canceled: %s",
                    body.customer_id, keep.booking_id, duplicate.booking_id, exc,
                )  # fmt: skip
                continue
            canceled.append(duplicate.booking_id)
            logger.warning(
                "booking was requested twice and made twice for customer %s: kept %s, canceled %s",
                body.customer_id, keep.booking_id, duplicate.booking_id,
            )  # fmt: skip
        return keep, tuple(canceled)

    async def _check(self, body: AppointmentBookingRequest, validated: bool, cause: APIError) -> _Evidence:
        """Was a booking made for ``body``? Only evidence counts (see the module's rule 2)."""
        await anyio.sleep(self.settle)
        try:
            if _in_list_window(body, self.now()):
                listed = await self._look(lambda: self._client.list_bookings(body.customer_id))
                matches = self._at_instant(listed, body)
                if not matches:
                    return _Evidence(made=False, detail="the bookings list shows none at that time")
                return _Evidence(made=True, booking=await self._pick(matches, body))
            status = await self._look(lambda: self._client._validate(body))
        except PerfectGymError as exc:
            raise self._unknown(body, cause, f"checking whether it was made failed too ({exc})") from exc
        if status is ValidationStatus.AVAILABLE:
            return _Evidence(made=False, detail="the slot validates AVAILABLE again")
        if status is ValidationStatus.CUSTOMER_IN_OTHER_BOOKING and validated:
            return _Evidence(
                made=True,
                detail="the slot validated AVAILABLE before the request and CUSTOMER_IN_OTHER_BOOKING after it",
            )
        raise self._unknown(body, cause, f"the slot now validates {status}, which proves neither")

    async def _look(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read of the booking check, tried harder than a plain read: its answer decides whether
        a member ends up booked twice or "unknown", and reads are safe to repeat. Each round is a
        call with the client's own retries; a round fails only when all of those did."""
        policy = self._api.retry_policy
        for round_number in range(CHECK_ROUNDS):
            try:
                return await read()
            except (APIConnectionError, InternalServerError, RateLimitError) as exc:
                if round_number == CHECK_ROUNDS - 1:
                    raise
                await policy.sleep(policy.delay(exc, policy.max_retries + round_number))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _at_instant(bookings: list[Booking], body: AppointmentBookingRequest) -> list[Booking]:
        start, end = instant(body.start_date_time), instant(body.end_date_time)
        return [
            b
            for b in bookings
            if not b.is_canceled and instant(b.start_date_time) == start and instant(b.end_date_time) == end
        ]

    async def _pick(self, matches: list[Booking], body: AppointmentBookingRequest) -> Booking:
        if len(matches) > 1:
            title = await self._title(body.bookable_appointment_id)
            titled = [b for b in matches if title is not None and b.title == title]
            matches = titled or matches
        return max(matches, key=_id)

    async def _title(self, bookable_appointment_id: int) -> str | None:
        if bookable_appointment_id not in self._titles:
            appointment = await self._client.get_bookable_appointment(bookable_appointment_id)
            self._titles[bookable_appointment_id] = (
                appointment.title if isinstance(appointment.title, str) else None
            )
        return self._titles[bookable_appointment_id]

    def _unknown(
        self, body: AppointmentBookingRequest, cause: APIError, why: str
    ) -> BookingOutcomeUnknownError:
        return BookingOutcomeUnknownError(
            f"booking for customer {body.customer_id} on bookable appointment {body.bookable_appointment_id} at "
            f"{body.start_date_time.isoformat()} failed ambiguously ({cause}) and {why}; nothing was "
            "repeated: list the customer's bookings (or validate the slot) before trying again",
            customer_id=body.customer_id,
            cause=cause,
            bookable_appointment_id=body.bookable_appointment_id,
            start_date_time=body.start_date_time,
            end_date_time=body.end_date_time,
        )

    # -- cancel -------------------------------------------------------------------------------------
    async def cancel(self, booking_id: int) -> str:
        async def run() -> tuple[str, BookingOutcome]:
            message = await self._cancel_once(booking_id)
            return message, BookingOutcome(
                operation="cancel", kind=OutcomeKind.CANCELED, booking_id=booking_id
            )

        return await self._to_the_end("cancel", booking_id, run)

    async def _cancel_once(self, booking_id: int) -> str:
        """A cancel is repeated only when it surely did nothing; after an ambiguous failure (or a
        409: someone else changed it) the booking is read back, and canceled by then is done."""
        sent_again = False

        async def decide(exc: APIError, can_retry: bool) -> bool | Resolved:
            nonlocal sent_again
            if _never_arrived(exc):
                sent_again = sent_again or can_retry
                return self._api.retry_policy.is_retryable(exc)
            # "Already canceled" after our own repeat means our first request did it.
            if not _ambiguous(exc) and not (sent_again and isinstance(exc, BadRequestError)):
                return False
            await anyio.sleep(self.settle)
            try:
                if (await self._look(lambda: self._client.get_booking(booking_id))).is_canceled:
                    return Resolved(f"Booking {booking_id} was canceled.")
            except NotFoundError:
                return False
            except PerfectGymError as read_error:
                raise BookingOutcomeUnknownError(
                    f"cancelling booking {booking_id} failed ambiguously ({exc}) and reading it back failed "
                    f"too ({read_error}): it may or may not be canceled; get_booking({booking_id}) tells",
                    customer_id=None,
                    cause=exc,
                ) from read_error
            if isinstance(exc, ResponseValidationError):
                return False  # a success status we cannot read, and the booking still active
            retry = self._api.retry_policy.is_retryable(exc) or isinstance(exc, ConflictError)
            sent_again = sent_again or (retry and can_retry)
            return retry

        # Resolved by the check: the text for a booking found canceled.
        result: CancelResult | str = await self._api.request(
            delete_appointment_booking, booking_id, decide=decide
        )
        return result if isinstance(result, str) else str(result.success)

    # -- reschedule ---------------------------------------------------------------------------------
    async def reschedule(
        self, booking_id: int, new_slot: SlotLike, *, bookable_appointment_id: int | None, validate: bool
    ) -> Booking:
        old = await self._client.get_booking(booking_id)
        if old.customer_id is None:  # pragma: no cover - getAppointmentBooking requires customerId
            raise ConfigurationError(f"booking {booking_id} has no customer id")
        if bookable_appointment_id is None:
            bookable_appointment_id = await self._appointment_id_for(old)
        body = booking_request(old.customer_id, bookable_appointment_id, new_slot, None)
        validated = False
        if validate:
            status = await self._client._validate(body)
            if status is not ValidationStatus.AVAILABLE:
                raise SlotNotBookableError(
                    status, customer_id=old.customer_id, bookable_appointment_id=bookable_appointment_id
                )
            validated = True

        async def run() -> tuple[Booking, BookingOutcome]:
            try:
                new, duplicates = await self._book_once(body, validated)
            except (BookingIdUnknownError, BookingOutcomeUnknownError) as exc:
                # The new booking exists or may: the old one stays, so the member is never left
                # with neither.
                raise RescheduleError(
                    f"booking the new slot for booking {booking_id} ended without a booking id ({exc}); "
                    f"the old booking {booking_id} was kept, so the customer may now hold both",
                    old_booking_id=booking_id,
                    new_booking_id=None,
                    cause=exc,
                ) from exc
            try:
                await self._cancel_once(booking_id)
            except PerfectGymError as exc:
                raise RescheduleError(
                    f"booked {new.booking_id} but could not cancel the old booking {booking_id} ({exc}); "
                    "both bookings exist now",
                    old_booking_id=booking_id,
                    new_booking_id=new.booking_id,
                    cause=exc,
                ) from exc
            outcome = self._outcome(
                "reschedule", OutcomeKind.RESCHEDULED, body, new.booking_id, (*duplicates, booking_id)
            )
            return new, attrs.evolve(outcome, old_booking_id=booking_id)

        return await self._to_the_end("reschedule", body, run, old_booking_id=booking_id)

    async def _appointment_id_for(self, booking: Booking) -> int:
        matches = [
            a.id
            async for a in self._client.bookable_appointments(slice_size=MAX_SLICE_SIZE)
            if a.title == booking.title
        ]
        if len(matches) != 1:
            raise ConfigurationError(
                f"cannot tell which bookable appointment booking {booking.booking_id} ({booking.title!r}) "
                f"belongs to ({len(matches)} match its title): pass bookable_appointment_id=..."
            )
        return matches[0]

    # -- book_first_available -----------------------------------------------------------------------
    async def book_first_available(
        self,
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
        require_int("days_ahead", days_ahead, low=1)
        require_int("concurrency", concurrency, low=1)
        if instructor_id is not None:
            require_id("instructor_id", instructor_id)
        starts_ok = start_filter(earliest, latest)
        slots = await self._client.get_slots(bookable_appointment_id, customer_id, days_ahead, start_date)
        candidates = sorted(
            (
                s
                for s in slots
                if starts_ok(s.start_date_time)
                and (instructor_id is None or any(i.id == instructor_id for i in s.instructors or ()))
            ),
            key=lambda s: instant(s.start_date_time),
        )
        instructor_ids = None if instructor_id is None else [instructor_id]
        statuses: Counter[str] = Counter()
        first_error: BaseException | None = None
        checked = 0
        # Closed at once when the loop ends early: validations in flight must not outlive it.
        async with contextlib.aclosing(
            self._validate_in_order(
                customer_id, bookable_appointment_id, candidates, instructor_ids, concurrency
            )
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
                    return await self.book(body, validate=False, validated=True)
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
        self,
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

            async def check(outcomes: list[Any], index: int, slot: Slot) -> None:
                try:
                    outcomes[index] = await self._client.validate_slot(
                        customer_id, bookable_appointment_id, slot, instructor_ids=instructor_ids
                    )
                except APIError as exc:
                    outcomes[index] = exc

            async with anyio.create_task_group() as tg:
                for index, slot in enumerate(window):
                    tg.start_soon(check, outcomes, index, slot)
            for slot, outcome in zip(window, outcomes, strict=True):
                assert outcome is not None
                yield slot, outcome

    # -- running to the end, and reporting ----------------------------------------------------------
    async def _to_the_end(
        self,
        operation: str,
        subject: AppointmentBookingRequest | int,
        run: Callable[[], Awaitable[tuple[T, BookingOutcome]]],
        *,
        old_booking_id: int | None = None,
    ) -> T:
        """Run a flow whose request may reach the server to its end, whatever the caller does.

        Under trio and anyio cancel scopes a shielded scope is enough. Under asyncio a native
        cancellation (``asyncio.timeout``, ``Task.cancel``) gets through shields, so the flow runs
        in a task of its own that the caller waits for until it ends.
        """
        result: list[Any] = []

        async def bounded() -> None:
            with anyio.move_on_after(self._run_bound):
                try:
                    result.append(await run())
                except Exception as exc:  # noqa: BLE001 - handed to the caller below
                    result.append(exc)
            if not result:  # the bound ran out mid-flow: whatever was sent, we cannot tell
                customer = subject.customer_id if isinstance(subject, AppointmentBookingRequest) else None
                cause = APITimeoutError(
                    f"{operation} did not end within {self._run_bound:.0f} s",
                    operation=operation, method="", path="",
                )  # fmt: skip
                result.append(BookingOutcomeUnknownError(str(cause), customer_id=customer, cause=cause))

        natively_cancelled = False
        with anyio.CancelScope(shield=True):
            if sniffio.current_async_library() == "asyncio":
                import asyncio

                task = asyncio.ensure_future(bounded())
                while not task.done():
                    try:
                        await asyncio.shield(task)
                    except asyncio.CancelledError:
                        natively_cancelled = True
            else:
                await bounded()
        outcome_or_error = result[0]
        caller_cancelled = natively_cancelled
        if not caller_cancelled:
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
            except anyio.get_cancelled_exc_class():
                caller_cancelled = True
        outcome = self._describe(operation, subject, outcome_or_error, old_booking_id)
        with anyio.CancelScope(shield=True):
            await self._report(attrs.evolve(outcome, caller_cancelled=caller_cancelled))
        if caller_cancelled:
            if natively_cancelled:
                import asyncio

                raise asyncio.CancelledError
            await anyio.lowlevel.checkpoint_if_cancelled()
        if isinstance(outcome_or_error, BaseException):
            raise outcome_or_error
        value: T = outcome_or_error[0]
        return value

    def _describe(
        self,
        operation: str,
        subject: AppointmentBookingRequest | int,
        outcome_or_error: tuple[Any, BookingOutcome] | BaseException,
        old_booking_id: int | None,
    ) -> BookingOutcome:
        if not isinstance(outcome_or_error, BaseException):
            return outcome_or_error[1]
        error = outcome_or_error
        unknown = isinstance(error, BookingOutcomeUnknownError) or not isinstance(error, PerfectGymError)
        if operation == "cancel":
            assert isinstance(subject, int)
            kind = OutcomeKind.UNKNOWN if unknown else OutcomeKind.NOT_CANCELED
            return BookingOutcome(operation="cancel", kind=kind, booking_id=subject, error=error)
        assert isinstance(subject, AppointmentBookingRequest)
        # The flows' contract: once a booking may have been made, they end in a booking, in one
        # of the three errors below, or in an error that comes with proof that nothing was made.
        if isinstance(error, BookingIdUnknownError):
            kind = OutcomeKind.BOOKED_ID_UNKNOWN
        elif isinstance(error, RescheduleError):
            # The old booking was kept; the new one exists, or may (its outcome unknown).
            unclear = isinstance(error.cause, BookingOutcomeUnknownError)
            kind = OutcomeKind.UNKNOWN if unclear else OutcomeKind.BOTH_BOOKINGS
        elif unknown:
            kind = OutcomeKind.UNKNOWN
        else:
            kind = OutcomeKind.NOT_BOOKED
        booking_id = error.new_booking_id if isinstance(error, RescheduleError) else None
        outcome = self._outcome(operation, kind, subject, booking_id, ())
        return attrs.evolve(outcome, error=error, old_booking_id=old_booking_id)

    @staticmethod
    def _outcome(
        operation: str,
        kind: OutcomeKind,
        body: AppointmentBookingRequest,
        booking_id: int | None,
        canceled: tuple[int, ...],
    ) -> BookingOutcome:
        return BookingOutcome(
            operation=operation,
            kind=kind,
            booking_id=booking_id,
            customer_id=body.customer_id,
            bookable_appointment_id=body.bookable_appointment_id,
            start_date_time=body.start_date_time,
            end_date_time=body.end_date_time,
            canceled_booking_ids=canceled,
        )

    async def _report(self, outcome: BookingOutcome) -> None:
        noteworthy = outcome.caller_cancelled or outcome.kind in (
            OutcomeKind.BOOKED_ID_UNKNOWN,
            OutcomeKind.UNKNOWN,
            OutcomeKind.BOTH_BOOKINGS,
        )
        if noteworthy:
            logger.warning(
                "%s ended %s: booking %s, customer %s, slot %s%s%s",
                outcome.operation,
                outcome.kind,
                outcome.booking_id if outcome.booking_id is not None else "(id unknown)",
                outcome.customer_id if outcome.customer_id is not None else "-",
                outcome.start_date_time.isoformat() if outcome.start_date_time else "-",
                " (the caller was cancelled; the flow ran to its end)" if outcome.caller_cancelled else "",
                f"; canceled {list(outcome.canceled_booking_ids)}" if outcome.canceled_booking_ids else "",
            )
        if self._on_outcome is None:
            return
        try:
            reply = self._on_outcome(outcome)
            if inspect.isawaitable(reply):
                await reply
        except Exception:  # noqa: BLE001
            # The hook is the app's; its failure must not turn a booking into an error.
            logger.exception("on_booking_outcome raised for %s", outcome)


# -- what an error says about the request that failed -------------------------------------------------


def _never_arrived(exc: APIError) -> bool:
    """A 429, or a request that never left: the server did nothing, so sending again is safe."""
    if isinstance(exc, RateLimitError):
        return True
    return isinstance(exc, APIConnectionError) and not exc.may_have_reached_server


def _ambiguous(exc: BaseException) -> bool:
    """The request may have been carried out: no answer after sending, a 5xx, a 409 (concurrent
    modification), or a success status whose body cannot be read."""
    if isinstance(exc, APIConnectionError):
        return exc.may_have_reached_server
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or isinstance(exc, ConflictError)
    return isinstance(exc, ResponseValidationError)


def _refusal_status(exc: BaseException) -> ValidationStatus | None:
    """The ValidationStatus a 400 to a booking request names as its errorCode, if it names one."""
    if not isinstance(exc, BadRequestError):
        return None
    code = exc.error_code
    if code is not None and code in ValidationStatus.__members__:
        return ValidationStatus(code)
    for kind, value in exc.typed_args:
        if kind == "ENUM" and isinstance(value, str) and value in ValidationStatus.__members__:
            return ValidationStatus(value)
    return None


def _in_list_window(body: AppointmentBookingRequest, now: dt.datetime) -> bool:
    """Whether the bookings list (+/- 2 weeks around now) surely shows a booking of this slot."""
    earliest, latest = instant(now - LIST_WINDOW + LIST_MARGIN), instant(now + LIST_WINDOW - LIST_MARGIN)
    return instant(body.start_date_time) >= earliest and instant(body.end_date_time) <= latest


def _id_unknown(body: AppointmentBookingRequest, cause: APIError, detail: str) -> BookingIdUnknownError:
    visible_from = (body.end_date_time - LIST_WINDOW).astimezone(body.start_date_time.tzinfo).date()
    return BookingIdUnknownError(
        f"customer {body.customer_id} is booked on bookable appointment {body.bookable_appointment_id} at "
        f"{body.start_date_time.isoformat()} ({detail}), but the booking's id cannot be read yet: the "
        f"bookings list shows only two weeks ahead; list_bookings({body.customer_id}) shows it from "
        f"{visible_from.isoformat()} on. The request failed with: {cause}",
        customer_id=body.customer_id,
        bookable_appointment_id=body.bookable_appointment_id,
        start_date_time=body.start_date_time,
        end_date_time=body.end_date_time,
        visible_from=visible_from,
        cause=cause,
    )


def _id(booking: Booking) -> int:
    return booking.booking_id
