"""AppointmentsClient: the one object users hold.

Each method checks its arguments (before any request), then calls the generated endpoint through
``BaseClient.call`` (build -> send with retries -> typed errors -> parse). The booking flows
(``book``, ``reschedule``, ``book_first_available``) are here too, because their safety rules are
what users need to read: a booking request is never repeated unless we know the first one made
nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
from anyio.abc import TaskGroup

from ._base_client import DEFAULT_MAX_CONNECTIONS, BaseClient, logger
from ._exceptions import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
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
from ._generated.api.appointments import (
    book_appointment_booking,
    check_api_key,
    delete_appointment_booking,
    get_appointment_booking,
    get_appointment_bookings,
    get_bookable_appointment,
    get_bookable_appointment_slots,
    get_bookable_appointments,
    validate_for_appointment_booking,
)
from ._generated.models import (
    AppointmentBooking,
    AppointmentBookingRequest,
    BookableAppointmentSlice,
    CancelResult,
    CustomerAppointmentBooking,
    Language,
    ValidationResult,
)
from ._generated.types import UNSET
from ._models import BookableAppointment, Booking, Page, Slot, SlotLike, ValidationStatus
from ._pagination import AsyncPaginator
from ._retry import RetryPolicy
from ._zoned import require_aware

__all__ = ["AppointmentsClient"]

ENV_BASE_URL = "PERFECTGYM_BASE_URL"
ENV_API_KEY = "PERFECTGYM_API_KEY"
# The API's own bounds (openapi.yaml): outside them a tenant answers 400.
MIN_SLICE_SIZE = 10
MAX_SLICE_SIZE = 100
MAX_DAYS_PER_REQUEST = 6
# Validation answers about the customer or the appointment, not the slot: once one comes back,
# no other slot of the same appointment can validate AVAILABLE for this customer.
# CUSTOMER_IDLE is not one of them: an idle period ends on a date, so a later slot may be fine.
_CUSTOMER_WIDE_STATUSES = frozenset(
    {
        ValidationStatus.NO_CONTINGENT,
        ValidationStatus.BOOKING_LIMIT_REACHED,
        ValidationStatus.BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED,
        ValidationStatus.NOT_AVAILABLE,
    }
)
_NOT_GIVEN: Any = object()
_LANGUAGES = frozenset(language.value for language in Language)


class AppointmentsClient:
    """Async client for the PerfectGym Next appointment endpoints.

    ``AppointmentsClient()`` reads ``PERFECTGYM_BASE_URL`` and ``PERFECTGYM_API_KEY``. Use it as
    ``async with AppointmentsClient(...) as client:`` so connections are closed and listings can
    fetch their next page in the background; plain calls also work without ``async with``.
    A custom ``http_client`` (transport, proxies, event hooks) is used as given and not closed.
    Otherwise at most ``max_connections`` requests (default 16) are in flight at once, each
    connection kept alive for reuse; more concurrent calls wait for a free connection.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = _NOT_GIVEN,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        max_connections: int | None = None,
        accept_language: str | None = None,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        base_url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL)
        if not base_url and http_client is not None and str(http_client.base_url):
            base_url = str(http_client.base_url)
        if not api_key:
            raise ConfigurationError(f"no API key: pass api_key=... or set {ENV_API_KEY}")
        if not base_url:
            raise ConfigurationError(f"no base URL: pass base_url=... or set {ENV_BASE_URL}")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {base_url!r}")
        if max_connections is not None:
            if http_client is not None:
                raise ConfigurationError(
                    "pass max_connections or http_client (which has its own limits), not both"
                )
            _require_int("max_connections", max_connections, low=1)
        if accept_language is not None and accept_language not in _LANGUAGES:
            raise ConfigurationError(
                f"accept_language must be one the API knows ({', '.join(sorted(_LANGUAGES))}), "
                f"got {accept_language!r}"
            )
        if retry_policy is None:
            retry_policy = RetryPolicy(max_retries=max_retries)
        elif max_retries != 2 and max_retries != retry_policy.max_retries:
            raise ConfigurationError("pass max_retries or retry_policy, not both")
        if timeout is _NOT_GIVEN:
            resolved_timeout: httpx.Timeout | None = None
        elif timeout is None or isinstance(timeout, httpx.Timeout):
            resolved_timeout = timeout or httpx.Timeout(None)
        else:
            resolved_timeout = httpx.Timeout(float(timeout))
        self._api = BaseClient(
            api_key=api_key,
            base_url=base_url,
            timeout=resolved_timeout,
            retry_policy=retry_policy,
            http_client=http_client,
            max_connections=DEFAULT_MAX_CONNECTIONS if max_connections is None else max_connections,
            accept_language=accept_language,
        )
        self._task_group: TaskGroup | None = None
        self._appointment_titles: dict[int, str | None] = {}

    def __repr__(self) -> str:
        return (
            f"AppointmentsClient(base_url={self._api.base_url!r}, api_key='***', "
            f"max_retries={self._api.retry_policy.max_retries})"
        )

    @property
    def base_url(self) -> str:
        return self._api.base_url

    async def __aenter__(self) -> Self:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                task_group.cancel_scope.cancel()  # abandon page prefetches nobody will read
                # The body's own exception is not handed to the task group: it would come back
                # wrapped in an ExceptionGroup and `except NotFoundError` would stop matching.
                # Python re-raises it as is once we return.
                await task_group.__aexit__(None, None, None)
        finally:
            await self._api.aclose()

    async def aclose(self) -> None:
        """Close the connections (only those of an HTTP client we created)."""
        await self._api.aclose()

    async def check_api_key(self) -> bool:
        """Whether the API accepts the key: ``HEAD`` answered 200 (True) or 401 (False).

        The key alone is checked, not its scopes. Other failures (no connection, 5xx) raise.
        """
        try:
            await self._api.send("checkApiKey", check_api_key._get_kwargs(), retry=True)
        except AuthenticationError:
            return False
        return True

    # -- bookable appointments ------------------------------------------------------------------
    def bookable_appointments(
        self, slice_size: int = 50, *, limit: int | None = None
    ) -> AsyncPaginator[BookableAppointment]:
        """All bookable appointments, ``slice_size`` per request (10 to 100, the API's bounds).

        ``async for appt in ...`` item by item, ``async for page in ....pages()`` page by page.
        """
        _require_int("slice_size", slice_size, low=MIN_SLICE_SIZE, high=MAX_SLICE_SIZE)
        if limit is not None:
            _require_int("limit", limit, low=1)

        async def fetch(offset: str, number: int) -> Page[BookableAppointment]:
            page = self._api.expect(
                await self._api.call(
                    get_bookable_appointments, offset=offset, slice_size=slice_size, retry=True
                ),
                BookableAppointmentSlice,
                "getBookableAppointments",
            )
            return Page(items=page.result, has_next=page.has_next, offset=page.offset, number=number)

        return AsyncPaginator(fetch, operation="getBookableAppointments", limit=limit, spawn=self._spawner())

    def _spawner(self) -> Callable[[Callable[[], Coroutine[Any, Any, None]]], None] | None:
        """Background tasks (page prefetch) run in the task group of ``async with client``."""
        task_group = self._task_group
        if task_group is None:
            return None

        def spawn(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
            task_group.start_soon(job)

        return spawn

    async def get_bookable_appointment(self, bookable_appointment_id: int) -> BookableAppointment:
        _require_id("bookable_appointment_id", bookable_appointment_id)
        result = await self._api.call(get_bookable_appointment, bookable_appointment_id, retry=True)
        return self._api.expect(result, BookableAppointment, "getBookableAppointment")

    async def get_slots(
        self,
        bookable_appointment_id: int,
        customer_id: int | None = None,
        days_ahead: int | None = None,
        start_date: dt.date | None = None,
    ) -> list[Slot]:
        """Free slots, earliest first. ``start_date`` is the window's first (studio-local) day.

        Without ``days_ahead`` the API's default applies (1 day). The API answers at most 6 days
        per request; a longer window is asked for as consecutive windows of at most 6 days,
        concurrently, and merged into one list in time order (duplicates at the edges dropped).
        """
        _require_id("bookable_appointment_id", bookable_appointment_id)
        if customer_id is not None:
            _require_id("customer_id", customer_id)
        if days_ahead is not None:
            _require_int("days_ahead", days_ahead, low=1)
        if start_date is not None:
            if isinstance(start_date, dt.datetime):
                start_date = require_aware(start_date, "start_date").date()
            elif not isinstance(start_date, dt.date):
                raise TypeError(f"start_date must be a datetime.date, got {type(start_date).__name__}")
        if days_ahead is None or days_ahead <= MAX_DAYS_PER_REQUEST:
            return await self._slots_window(bookable_appointment_id, customer_id, days_ahead, start_date)
        return await self._slots_windows(bookable_appointment_id, customer_id, days_ahead, start_date)

    async def _slots_window(
        self, appointment_id: int, customer_id: int | None, days: int | None, first_day: dt.date | None
    ) -> list[Slot]:
        result = await self._api.call(
            get_bookable_appointment_slots,
            appointment_id,
            customer_id=UNSET if customer_id is None else customer_id,
            days_ahead=UNSET if days is None else days,
            slot_window_start_date=UNSET if first_day is None else first_day,
            retry=True,
        )
        return _expect_list(self._api, result, Slot, "getBookableAppointmentSlots")

    async def _slots_windows(
        self, appointment_id: int, customer_id: int | None, days: int, start_date: dt.date | None
    ) -> list[Slot]:
        found: list[Slot] = []
        trim_after: int | None = None
        if start_date is None:
            # "Today" is the studio's, and only its answers say which zone that is: the first
            # window goes without a date, and its slots name the zone for the rest.
            found = await self._slots_window(appointment_id, customer_id, MAX_DAYS_PER_REQUEST, None)
            if found:
                start_date = dt.datetime.now(found[0].start_date_time.tzinfo).date()
            else:
                # No slot, no zone. The studio's today is within a day of UTC's: starting a day
                # early and ending a day late leaves no gap after the first window, and each
                # slot is then trimmed by its own zone's today.
                start_date = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
                trim_after, days = days, days + 2
            windows = range(MAX_DAYS_PER_REQUEST, days, MAX_DAYS_PER_REQUEST)
        else:
            windows = range(0, days, MAX_DAYS_PER_REQUEST)
        answers: dict[int, list[Slot]] = {}

        async def window(offset: int) -> None:
            assert start_date is not None
            answers[offset] = await self._slots_window(
                appointment_id,
                customer_id,
                min(MAX_DAYS_PER_REQUEST, days - offset),
                start_date + dt.timedelta(days=offset),
            )

        async with anyio.create_task_group() as tg:
            for offset in windows:
                tg.start_soon(window, offset)
        for offset in windows:
            found.extend(answers[offset])
        if trim_after is not None:
            ends: dict[Any, dt.date] = {}
            for slot in found:
                zone = slot.start_date_time.tzinfo
                if zone not in ends:
                    ends[zone] = dt.datetime.now(zone).date() + dt.timedelta(days=trim_after)
            found = [s for s in found if s.start_date_time.date() < ends[s.start_date_time.tzinfo]]
        return _merge_slots(found)

    async def search_slots(
        self,
        bookable_appointment_ids: Iterable[int],
        *,
        customer_id: int | None = None,
        days_ahead: int | None = None,
        start_date: dt.date | None = None,
        concurrency: int = 16,
    ) -> dict[int, list[Slot]]:
        """Slots of many bookable appointments, at most ``concurrency`` requests at a time."""
        ids = list(bookable_appointment_ids)
        for appointment_id in ids:
            _require_id("bookable_appointment_ids[]", appointment_id)
        _require_int("concurrency", concurrency, low=1)
        unique = list(dict.fromkeys(ids))
        found: dict[int, list[Slot]] = {}
        limiter = anyio.CapacityLimiter(concurrency)

        async def one(appointment_id: int) -> None:
            async with limiter:
                found[appointment_id] = await self.get_slots(
                    appointment_id, customer_id, days_ahead, start_date
                )

        async with anyio.create_task_group() as tg:
            for appointment_id in unique:
                tg.start_soon(one, appointment_id)
        return {appointment_id: found[appointment_id] for appointment_id in unique}

    # -- validation and booking -----------------------------------------------------------------
    async def validate_slot(
        self,
        customer_id: int,
        bookable_appointment_id: int,
        slot: SlotLike,
        *,
        instructor_ids: Sequence[int] | None = None,
    ) -> ValidationStatus:
        """Whether the customer may book the slot. Safe to repeat, so it is retried like a read."""
        body = _booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
        return await self._validate(body)

    async def _validate(self, body: AppointmentBookingRequest) -> ValidationStatus:
        result = await self._api.call(validate_for_appointment_booking, body=body, retry=True)
        return self._api.expect(result, ValidationResult, "validateForAppointmentBooking").validation_status

    async def book(
        self,
        customer_id: int,
        bookable_appointment_id: int,
        slot: SlotLike,
        validate: bool = True,
        *,
        instructor_ids: Sequence[int] | None = None,
    ) -> Booking:
        """Book ``slot`` for the customer; at most one booking is ever made by one call.

        With ``validate`` the slot is validated first and :class:`SlotNotBookableError` raised
        (nothing booked) unless it is AVAILABLE. The booking request itself is repeated only when
        it surely made nothing: after a 429 or a failure to connect; after an ambiguous failure
        (timeout, reset, 5xx) the customer's bookings are listed first, and a booking the server
        did make is returned. If even that cannot be checked, :class:`BookingOutcomeUnknownError`.
        A ``BOOKED_WITH_CONFIRMATION_REQUIRED`` answer is returned as such (``needs_confirmation``).
        """
        body = _booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
        if validate:
            status = await self._validate(body)
            if status is not ValidationStatus.AVAILABLE:
                raise SlotNotBookableError(
                    status, customer_id=customer_id, bookable_appointment_id=bookable_appointment_id
                )
        return await self._book(body)

    async def _book(self, body: AppointmentBookingRequest) -> Booking:
        policy = self._api.retry_policy
        for retry_number in range(policy.max_retries + 1):
            last_try = retry_number == policy.max_retries
            try:
                result = await self._api.call(book_appointment_booking, body=body, retry=False)
                raw = self._api.expect(result, AppointmentBooking, "bookAppointmentBooking")
                return Booking.from_api(raw, customer_id=body.customer_id)
            except BadRequestError as exc:
                # The studio's rules refused the slot (errorCode is the ValidationStatus): nothing
                # was booked, and the caller gets the same error as from a failed validation.
                refused = _refusal_status(exc)
                if refused is None:
                    raise
                raise SlotNotBookableError(
                    refused,
                    customer_id=body.customer_id,
                    bookable_appointment_id=body.bookable_appointment_id,
                ) from exc
            except ResponseValidationError as exc:
                # A success status whose body we cannot read: the booking was most likely made.
                # Return it if the customer's bookings show it; never book again.
                made = await self._find_booking(body, exc)
                if made is None:
                    raise
                logger.warning(
                    "bookAppointment answered malformed (%s); the server made booking %s, returning it",
                    exc, made.booking_id,
                )  # fmt: skip
                return made
            except (RateLimitError, APIConnectionError, InternalServerError, ConflictError) as exc:
                # 409 (concurrent modification) is as ambiguous as a 5xx: the booking may exist.
                if _surely_not_booked(exc):
                    if last_try or not policy.is_retryable(exc):
                        raise
                else:
                    made = await self._find_booking(body, exc)
                    if made is not None:
                        logger.warning(
                            "bookAppointment failed ambiguously (%s) but the server made booking %s; returning it",
                            exc, made.booking_id,
                        )  # fmt: skip
                        return made
                    # Checked: nothing was made, so another attempt cannot double-book.
                    if last_try or not (policy.is_retryable(exc) or isinstance(exc, ConflictError)):
                        raise
                await policy.sleep(policy.delay(exc, retry_number))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_booking(self, body: AppointmentBookingRequest, cause: APIError) -> Booking | None:
        """After an ambiguous booking failure: the booking the server made for this request, if any."""
        try:
            bookings = await self.list_bookings(body.customer_id)
            title = await self._appointment_title(body.bookable_appointment_id)
        except PerfectGymError as exc:
            raise BookingOutcomeUnknownError(
                f"booking for customer {body.customer_id} failed ambiguously ({cause}) and checking "
                f"whether it was made failed too ({exc}); list the customer's bookings before retrying",
                customer_id=body.customer_id,
                cause=cause,
            ) from exc
        matches = [
            b
            for b in bookings
            if not b.is_canceled
            and b.start_date_time == body.start_date_time
            and b.end_date_time == body.end_date_time
            and (title is None or b.title is None or b.title == title)
        ]
        return max(matches, key=lambda b: b.booking_id) if matches else None

    async def _appointment_title(self, bookable_appointment_id: int) -> str | None:
        if bookable_appointment_id not in self._appointment_titles:
            appointment = await self.get_bookable_appointment(bookable_appointment_id)
            title = appointment.title if isinstance(appointment.title, str) else None
            self._appointment_titles[bookable_appointment_id] = title
        return self._appointment_titles[bookable_appointment_id]

    async def book_first_available(
        self,
        customer_id: int,
        bookable_appointment_id: int,
        start_date: dt.date | None = None,
        days_ahead: int = 7,
        earliest: dt.datetime | dt.time | None = None,
        latest: dt.datetime | dt.time | None = None,
        instructor_id: int | None = None,
        *,
        concurrency: int = 8,
    ) -> Booking:
        """Book the earliest slot the customer may book, in the window and filters given.

        ``earliest``/``latest`` bound the slot's start: an aware datetime, or a time of day in
        the studio's zone. Up to ``concurrency`` candidates are validated at once; candidates
        are decided strictly in time order, and exactly one booking is made (or
        :class:`NoSlotAvailableError`).
        """
        _require_id("customer_id", customer_id)
        _require_id("bookable_appointment_id", bookable_appointment_id)
        _require_int("days_ahead", days_ahead, low=1)
        _require_int("concurrency", concurrency, low=1)
        if instructor_id is not None:
            _require_id("instructor_id", instructor_id)
        starts_ok = _start_filter(earliest, latest)
        slots = await self.get_slots(bookable_appointment_id, customer_id, days_ahead, start_date)
        candidates = sorted(
            (
                s
                for s in slots
                if starts_ok(s.start_date_time)
                and (instructor_id is None or any(i.id == instructor_id for i in s.instructors or ()))
            ),
            key=lambda s: s.start_date_time,
        )
        instructor_ids = None if instructor_id is None else [instructor_id]
        statuses: Counter[str] = Counter()
        first_error: BaseException | None = None
        checked = 0
        async for slot, outcome in self._validate_in_order(
            customer_id, bookable_appointment_id, candidates, instructor_ids, concurrency
        ):
            checked += 1
            if isinstance(outcome, BaseException):
                statuses["ERROR"] += 1
                first_error = first_error or outcome
                continue
            if outcome is not ValidationStatus.AVAILABLE:
                statuses[str(outcome)] += 1
                if outcome in _CUSTOMER_WIDE_STATUSES:
                    break  # no other slot can answer differently: stop validating
                continue
            try:
                return await self.book(
                    customer_id, bookable_appointment_id, slot, validate=False, instructor_ids=instructor_ids
                )
            except SlotNotBookableError as exc:  # taken meanwhile: try the next one
                statuses["TAKEN_MEANWHILE"] += 1
                first_error = first_error or exc
                if exc.status in _CUSTOMER_WIDE_STATUSES:
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
    ) -> Any:
        """Yield (slot, status or error) in candidate order, validating ``concurrency`` ahead.

        Works in windows so that no task group stays open across a ``yield``.
        """
        for start in range(0, len(candidates), concurrency):
            window = candidates[start : start + concurrency]
            outcomes: list[ValidationStatus | BaseException | None] = [None] * len(window)

            async def check(outcomes: list[Any], index: int, slot: Slot) -> None:
                try:
                    outcomes[index] = await self.validate_slot(
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

    async def reschedule(
        self,
        booking_id: int,
        new_slot: SlotLike,
        *,
        bookable_appointment_id: int | None = None,
        validate: bool = True,
    ) -> Booking:
        """Move a booking: book ``new_slot`` first, then cancel the old booking.

        If the cancel fails, the new booking stays and :class:`RescheduleError` names both ids.
        ``bookable_appointment_id`` defaults to the one whose title matches the booking's.
        """
        _require_id("booking_id", booking_id)
        _check_slot(new_slot)
        if bookable_appointment_id is not None:
            _require_id("bookable_appointment_id", bookable_appointment_id)
        old = await self.get_booking(booking_id)
        if old.customer_id is None:  # pragma: no cover - getAppointmentBooking requires customerId
            raise ConfigurationError(f"booking {booking_id} has no customer id")
        if bookable_appointment_id is None:
            bookable_appointment_id = await self._appointment_id_for(old)
        new = await self.book(old.customer_id, bookable_appointment_id, new_slot, validate=validate)
        try:
            await self.cancel_booking(booking_id)
        except PerfectGymError as exc:
            raise RescheduleError(
                f"booked {new.booking_id} but could not cancel the old booking {booking_id} ({exc}); "
                "both bookings exist now",
                old_booking_id=booking_id,
                new_booking_id=new.booking_id,
                cause=exc,
            ) from exc
        return new

    async def _appointment_id_for(self, booking: Booking) -> int:
        matches = [
            a.id
            async for a in self.bookable_appointments(slice_size=MAX_SLICE_SIZE)
            if a.title == booking.title
        ]
        if len(matches) != 1:
            raise ConfigurationError(
                f"cannot tell which bookable appointment booking {booking.booking_id} ({booking.title!r}) "
                f"belongs to ({len(matches)} match its title): pass bookable_appointment_id=..."
            )
        return matches[0]

    # -- bookings -------------------------------------------------------------------------------
    async def get_booking(self, booking_id: int) -> Booking:
        _require_id("booking_id", booking_id)
        result = await self._api.call(get_appointment_booking, booking_id, retry=True)
        return Booking.from_api(self._api.expect(result, CustomerAppointmentBooking, "getAppointmentBooking"))

    async def list_bookings(self, customer_id: int) -> list[Booking]:
        _require_id("customer_id", customer_id)
        result = await self._api.call(get_appointment_bookings, customer_id=customer_id, retry=True)
        raw = _expect_list(self._api, result, AppointmentBooking, "getAppointmentBookings")
        return [Booking.from_api(b, customer_id=customer_id) for b in raw]

    async def cancel_booking(self, booking_id: int) -> str:
        """Cancel a booking; returns the server's confirmation text.

        Repeated only when the request surely did not arrive; after an ambiguous failure the
        booking is read back, and a booking that is canceled by then counts as success.
        """
        _require_id("booking_id", booking_id)
        policy = self._api.retry_policy
        for retry_number in range(policy.max_retries + 1):
            last_try = retry_number == policy.max_retries
            try:
                result = await self._api.call(delete_appointment_booking, booking_id, retry=False)
                return self._api.expect(result, CancelResult, "deleteAppointmentBooking").success
            except ResponseValidationError as exc:
                # A success status with an unreadable body: believe it only once the booking reads back canceled.
                if (await self.get_booking(booking_id)).is_canceled:
                    return f"Booking {booking_id} was canceled."
                raise exc from None
            except (RateLimitError, APIConnectionError, InternalServerError, ConflictError) as exc:
                # After a 409 another request changed the booking meanwhile (a racing cancel,
                # say): canceled by whoever, it is done; otherwise our cancel made no change.
                if not _surely_not_booked(exc):
                    try:
                        if (await self.get_booking(booking_id)).is_canceled:
                            return f"Booking {booking_id} was canceled."
                    except NotFoundError:
                        raise exc from None
                if last_try or not (policy.is_retryable(exc) or isinstance(exc, ConflictError)):
                    raise
                await policy.sleep(policy.delay(exc, retry_number))
        raise AssertionError("unreachable")  # pragma: no cover


# -- argument checks: every one runs before any request -----------------------------------------


def _require_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def _require_id(name: str, value: object) -> int:
    return _require_int(name, value, low=1)


def _check_slot(slot: object) -> tuple[dt.datetime, dt.datetime]:
    try:
        start = slot.start_date_time  # type: ignore[attr-defined]
        end = slot.end_date_time  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            f"slot must have start_date_time and end_date_time (a Slot from get_slots), got {type(slot).__name__}"
        ) from None
    require_aware(start, "slot.start_date_time")
    require_aware(end, "slot.end_date_time")
    if end <= start:
        raise ValueError(f"slot ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return start, end


def _booking_request(
    customer_id: int, bookable_appointment_id: int, slot: SlotLike, instructor_ids: Sequence[int] | None
) -> AppointmentBookingRequest:
    _require_id("customer_id", customer_id)
    _require_id("bookable_appointment_id", bookable_appointment_id)
    start, end = _check_slot(slot)
    if instructor_ids is None:
        instructors = getattr(slot, "instructors", None)
        ids = (
            [i if isinstance(i, int) else i.id for i in instructors]
            if isinstance(instructors, (list, tuple))
            else []
        )
    else:
        ids = [_require_id("instructor_ids[]", i) for i in instructor_ids]
    return AppointmentBookingRequest(
        customer_id=customer_id,
        bookable_appointment_id=bookable_appointment_id,
        start_date_time=start,
        end_date_time=end,
        instructor_ids=ids if ids else UNSET,
    )


def _start_filter(
    earliest: dt.datetime | dt.time | None, latest: dt.datetime | dt.time | None
) -> Callable[[dt.datetime], bool]:
    for name, bound in (("earliest", earliest), ("latest", latest)):
        if isinstance(bound, dt.datetime):
            require_aware(bound, name)
        elif bound is not None and not isinstance(bound, dt.time):
            raise TypeError(f"{name} must be an aware datetime or a time of day, got {type(bound).__name__}")

    def ok(start: dt.datetime) -> bool:
        for bound, after in ((earliest, True), (latest, False)):
            if bound is None:
                continue
            value: Any = start if isinstance(bound, dt.datetime) else start.time()
            bound_value: Any = bound if isinstance(bound, dt.datetime) else bound.replace(tzinfo=None)
            if (value < bound_value) if after else (value > bound_value):
                return False
        return True

    return ok


def _refusal_status(exc: BadRequestError) -> ValidationStatus | None:
    """The ValidationStatus a 400 to a booking request names as its errorCode, if it names one."""
    code = exc.error_code
    if code is not None and code in ValidationStatus.__members__:
        return ValidationStatus(code)
    for kind, value in exc.typed_args:
        if kind == "ENUM" and isinstance(value, str) and value in ValidationStatus.__members__:
            return ValidationStatus(value)
    return None


def _surely_not_booked(exc: APIError) -> bool:
    """A 429, or a request that never left: the server did nothing, so trying again is safe."""
    if isinstance(exc, RateLimitError):
        return True
    return isinstance(exc, APIConnectionError) and not exc.may_have_reached_server


def _merge_slots(slots: list[Slot]) -> list[Slot]:
    """One list in time order (by instant), each slot once: windows may overlap at their edges."""
    unique: dict[tuple[float, float], Slot] = {}
    for slot in slots:
        key = (slot.start_date_time.timestamp(), slot.end_date_time.timestamp())
        unique.setdefault(key, slot)
    return [unique[key] for key in sorted(unique)]


def _expect_list(api: BaseClient, value: Any, item: type[Any], operation: str) -> list[Any]:
    items = api.expect(value, list, operation)
    for index, element in enumerate(items):
        if not isinstance(element, item):  # the field name is formatted only for the error
            api.expect(element, item, operation, f"[{index}]")
    return items
