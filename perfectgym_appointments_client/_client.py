"""AppointmentsClient: the one object users hold, and the list of operations they call.

The client composes the two layers below it and hands each call to one of them: the reads and
validation to ``Operations`` (``_operations.py``: argument checks, then a generated operation
through ``Requester.request``), the booking flows (``book``, ``cancel_booking``, ``reschedule``,
``book_first_available``) to ``BookingFlows`` (``_booking/``, where their safety rules are written
down), which read through the same ``Operations``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
import ssl
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

import anyio
import attrs
import httpx

from ._arguments import booking_request, check_slot, require_id, require_int
from ._breaker import CircuitBreaker
from ._call_options import CallOptions, bounded
from ._configuration import NOT_GIVEN, clean_api_key, clean_base_url, timeouts_for
from ._constants import (
    DEFAULT_BOOKING_CHECK_SETTLE,
    DEFAULT_HTTP_BACKEND,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_SEARCH_CONCURRENCY,
    DEFAULT_SLICE_SIZE,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    MAX_CONNECTIONS,
)
from ._exceptions import ConfigurationError
from ._operations import Operations
from ._request import Requester, Secret, logger
from ._retry import RetryPolicy
from ._throttling import RateLimit, Throttle
from ._version import API_VERSION

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ._booking import BookingFlows, BookingOutcome, OutcomeHook
    from ._journal import Journal
    from ._models import BookableAppointment, Booking, Slot, SlotLike, ValidationStatus
    from ._pagination import AsyncPaginator
    from ._telemetry import Telemetry

__all__ = ["AppointmentsClient"]


P = ParamSpec("P")
R = TypeVar("R")


def _per_call(
    method: Callable[Concatenate[AppointmentsClient, P], Awaitable[R]],
) -> Callable[Concatenate[AppointmentsClient, P], Coroutine[Any, Any, R]]:
    """The public call runs under this client's per-call bounds (``max_rate_limit_wait``, ``deadline``)."""

    name = method.__name__

    @functools.wraps(method)
    async def call(self: AppointmentsClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        options = self._options
        if options.max_rate_limit_wait is None and options.deadline is None and self._telemetry is None:
            return await method(self, *args, **kwargs)  # nothing to bound or trace: most calls
        with bounded(options):
            if self._telemetry is None:
                return await method(self, *args, **kwargs)
            with self._telemetry.call(name):
                return await method(self, *args, **kwargs)

    return call


@functools.cache
def _languages() -> frozenset[str]:
    """The languages the API knows (the generated enum, loaded when a client asks for one)."""
    from ._generated.models import Language

    return frozenset(language.value for language in Language)


class AppointmentsClient:
    """Async client for the PerfectGym Next appointment endpoints.

    ``AppointmentsClient()`` reads ``PERFECTGYM_BASE_URL`` and ``PERFECTGYM_API_KEY``. Use it as
    ``async with AppointmentsClient(...) as client:`` so connections are closed and listings can
    fetch their next page in the background; plain calls also work without ``async with``.
    A custom ``http_client`` (transport, proxies, event hooks) is used as given and not closed.
    Otherwise at most ``max_connections`` requests (default 16) are in flight at once, each
    connection kept alive for reuse; more concurrent calls wait for a free connection.

    ``http_backend="aiohttp"`` sends through aiohttp (the ``[aiohttp]`` extra; asyncio only): a
    fifth of httpx's client CPU per request with 100 tasks, a third from one. ``http_client``
    is then an ``aiohttp.ClientSession``. Errors, retries, limits and the booking check are the
    same on both.

    An answer larger than ``max_response_bytes`` (16 MiB decoded by default; None: no cap) is a
    :class:`ResponseValidationError`, and one attempt's whole exchange is bounded by the client's
    timeouts (pool + connect + write + twice the read), so a server that trickles ends in
    :class:`APITimeoutError`.

    ``max_rate_limit_wait`` and ``deadline`` bound each call (see :class:`CallOptions`; a copy
    with others: :meth:`with_options`): a web handler can fail fast with :class:`RateLimitError`
    instead of waiting for the limit, and give up on a call past its deadline
    (:class:`APITimeoutError`). A booking or cancel request, once it may be sent, runs to its
    own end whatever they say.

    Many studios (each its own ``base_url`` and key) are served by one client and the studio
    clients :meth:`for_studio` derives from it: one connection pool and TLS context for all,
    at most ``max_connections`` requests in flight across them and at most
    ``max_connections_per_studio`` for one studio (default: a quarter of them once more than
    one studio shares the pool), handed to waiting studios in turn. Clients made one by one
    the obvious way are cheap too: the TLS context is the process's (``ssl_context`` to give
    your own) and connections are opened on the first request. Each studio has a circuit
    breaker (``circuit_breaker``, :class:`CircuitBreaker`; None switches it off): after
    consecutive failures that say it is down, its calls fail at once with
    :class:`CircuitOpenError` until a probe finds it back. A studio that refuses a
    ``daysAhead`` or ``sliceSize`` within the documented bounds teaches the client its own.

    ``telemetry=Telemetry()`` traces each public call and each HTTP attempt and records metrics
    with OpenTelemetry (the ``[otel]`` extra; see :class:`Telemetry` for the span names,
    attributes and metrics). Without it (the default) nothing is traced and ``opentelemetry`` is
    not imported. ``Telemetry(propagate=True)`` sends the W3C ``traceparent`` with each request.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = NOT_GIVEN,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | Any | None = None,
        retry_policy: RetryPolicy | None = None,
        max_connections: int | None = None,
        accept_language: str | None = None,
        on_booking_outcome: OutcomeHook | None = None,
        booking_check_settle: float = DEFAULT_BOOKING_CHECK_SETTLE,
        rate_limit: RateLimit | None = NOT_GIVEN,
        http_backend: str = DEFAULT_HTTP_BACKEND,
        max_rate_limit_wait: float | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        telemetry: Telemetry | None = None,
        circuit_breaker: CircuitBreaker | None = NOT_GIVEN,
        ssl_context: ssl.SSLContext | None = None,
        max_connections_per_studio: int | None = None,
        journal: str | None = None,
    ) -> None:
        """Every setting is checked here, so that a wrong one is a :class:`ConfigurationError` now
        rather than a strange failure on the first call.

        The API key loses surrounding whitespace (a key read from a file ends in a newline); inner
        whitespace, control or non-ASCII characters, which no HTTP header carries, are refused,
        in a message that never shows the key. ``base_url`` likewise loses surrounding whitespace;
        it is ``http://`` or ``https://`` with a host, and is refused with whitespace or control
        characters inside, a ``user:password@`` (the key authenticates; a password there would
        show in every log of the URL), a query or a fragment (the request paths are appended to
        it). A plain ``http://`` URL to anything but loopback (127.0.0.0/8, ::1, localhost) is
        allowed but logs a WARNING on the ``perfectgym_appointments_client`` logger: the key
        would cross the network in clear text. ``timeout`` is seconds > 0 and finite (None: no
        limit), also in each field of an ``httpx.Timeout``.
        """
        # Key and URL are held masked from the first line on, their plain names deleted: error
        # reporters record each frame's locals, and a URL may hold a password (or be the key,
        # the two positional arguments swapped).
        key = Secret(api_key if api_key is not None else os.environ.get(ENV_API_KEY, ""))
        url = Secret(base_url if base_url is not None else os.environ.get(ENV_BASE_URL, ""))
        del api_key, base_url
        if not url.reveal() and isinstance(http_client, httpx.AsyncClient) and str(http_client.base_url):
            url = Secret(str(http_client.base_url))
        key = clean_api_key(key)
        base_url = clean_base_url(url, key_looks_like_a_url=key.reveal().lower().startswith("http"))
        if max_connections is not None:
            if http_client is not None:
                raise ConfigurationError(
                    "pass max_connections or http_client (which has its own limits), not both"
                )
            _setting(require_int, "max_connections", max_connections, low=1, high=MAX_CONNECTIONS)
        if (
            isinstance(booking_check_settle, bool)
            or not isinstance(booking_check_settle, (int, float))
            or not (0 <= booking_check_settle <= 60)
        ):
            raise ConfigurationError(
                f"booking_check_settle must be 0 to 60 seconds, got {booking_check_settle!r}"
            )
        if accept_language is not None and accept_language not in _languages():
            raise ConfigurationError(
                f"accept_language must be one the API knows ({', '.join(sorted(_languages()))}), "
                f"got {accept_language!r}"
            )
        if telemetry is not None:
            # Loaded only by a client given a Telemetry: importing the client stays cheap.
            from ._telemetry import Telemetry

            if not isinstance(telemetry, Telemetry):
                raise TypeError(f"telemetry must be a Telemetry or None, got {type(telemetry).__name__}")
        if circuit_breaker is NOT_GIVEN:
            circuit_breaker = CircuitBreaker()
        elif circuit_breaker is not None and not isinstance(circuit_breaker, CircuitBreaker):
            raise TypeError(
                f"circuit_breaker must be a CircuitBreaker or None, got {type(circuit_breaker).__name__}"
            )
        if ssl_context is not None:
            if not isinstance(ssl_context, ssl.SSLContext):
                raise TypeError(
                    f"ssl_context must be an ssl.SSLContext or None, got {type(ssl_context).__name__}"
                )
            if http_client is not None:
                raise ConfigurationError("pass ssl_context or http_client (which has its own), not both")
        if max_connections_per_studio is not None:
            _setting(
                require_int,
                "max_connections_per_studio",
                max_connections_per_studio,
                low=1,
                high=MAX_CONNECTIONS,
            )
        if retry_policy is None:
            retry_policy = RetryPolicy(max_retries=max_retries)
        elif max_retries != DEFAULT_MAX_RETRIES and max_retries != retry_policy.max_retries:
            raise ConfigurationError("pass max_retries or retry_policy, not both")
        self._api = Requester(
            api_key=key,
            base_url=base_url,
            timeouts=timeouts_for(timeout, given_client=http_client is not None),
            retry_policy=retry_policy,
            http_backend=http_backend,
            http_client=http_client,
            max_connections=DEFAULT_MAX_CONNECTIONS if max_connections is None else max_connections,
            accept_language=accept_language,
            max_response_bytes=max_response_bytes,
            ssl_context=ssl_context,
            max_connections_per_studio=max_connections_per_studio,
            circuit_breaker=circuit_breaker,
        )
        # OpenTelemetry only when asked for: otherwise it is never imported.
        self._telemetry = None
        if telemetry is not None:
            from ._telemetry import Instruments

            self._telemetry = Instruments(telemetry, self._api.base_url)
        if rate_limit is NOT_GIVEN:
            rate_limit = RateLimit()
        self._set_up(key, rate_limit)
        self._options = CallOptions(max_rate_limit_wait=max_rate_limit_wait, deadline=deadline)
        # The booking journal (_journal/), opened now: one that cannot be opened is a
        # ConfigurationError here, not a failure at the first booking.
        self._journal: Journal | None = None
        if journal is not None:
            from ._journal import open_journal

            self._journal = open_journal(journal, logger=logger)
        # The booking flows (_booking/) are imported and set up on the first booking call: a
        # client that only reads never pays for them.
        self._flows_settings = (booking_check_settle, on_booking_outcome)
        # The booking flows of the studio clients derived from this one (for_studio), and of
        # their copies, which aclose waits for; weak: a studio client dropped with no flow
        # running is forgotten.
        self._studio_flows: weakref.WeakSet[BookingFlows] = weakref.WeakSet()
        self._root = self

    def _set_up(self, key: Secret, rate_limit: RateLimit | None) -> None:
        """What each studio client has of its own over its requester: its throttle, telemetry, operations."""
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit or None, got {type(rate_limit).__name__}")
        self._rate_limit = rate_limit
        self._api.telemetry = self._telemetry
        if self._api.breaker is not None:
            self._api.breaker.telemetry = self._telemetry
        if rate_limit is not None:
            self._api.throttle = Throttle(
                rate_limit, api_key=key.reveal(), base_url=self._api.base_url, logger=logger
            )
            self._api.throttle.telemetry = self._telemetry
        self._ops = Operations(self._api)
        self._task_group: TaskGroup | None = None

    def for_studio(self, base_url: str, api_key: str, *, rate_limit: RateLimit | None = NOT_GIVEN) -> Self:
        """A client for another studio (its own base URL and key) that shares this one's
        connections (one pool, one TLS context, the total ``max_connections`` cap with each
        studio's fair share), settings (timeouts, retries, circuit breaker, per-call bounds,
        backend), rate-limit storage, telemetry and booking-outcome hook. Cheap: nothing is
        opened. ``rate_limit`` gives the studio a budget of its own (e.g. a studio with a lower
        limit); by default it has this client's, counted per studio.

        What the studio learns (its circuit breaker, a stricter ``daysAhead`` or ``sliceSize``)
        is its own. Closing the studio client closes nothing it shares (it then sends nothing
        more); closing this client waits for every studio client's booking flows, then closes
        the connections, after which no studio client sends anything.
        """
        # Masked before anything can fail, as in the constructor: a traceback's locals show no key.
        given_key, given_url = Secret(api_key), Secret(base_url)
        del api_key, base_url
        key = clean_api_key(given_key)
        url = clean_base_url(given_url, key_looks_like_a_url=key.reveal().lower().startswith("http"))
        child = copy.copy(self)
        child._api = self._api.derive(api_key=key, base_url=url)
        child._telemetry = (
            None if self._telemetry is None else self._telemetry.for_base_url(child._api.base_url)
        )
        child._set_up(key, self._rate_limit if rate_limit is NOT_GIVEN else rate_limit)
        vars(child).pop("_flows", None)  # its own booking flows, made on first use
        return child

    if TYPE_CHECKING:
        _flows: BookingFlows

    async def recover(self) -> list[BookingOutcome]:
        """Resolve the bookings a process that died left unreported (with a ``journal``).

        Every entry of this client's studio whose process is gone (on this host), or that is
        older than a flow may run (150 s by default; the only test for another host's process),
        is resolved by evidence: the booking id the journal holds, read back; else the bookings
        list (inside its two weeks) or the validation recorded before the request (outside
        them). "Made" counts at once; "not made" only once the intent is older than a flow may
        run, since the request may still be at the server: until then it stays pending. Each is
        reported once through ``on_booking_outcome`` (``recovered=True``), also when several
        processes recover at once (a claim in the journal), and returned. What cannot be proven
        stays pending (:meth:`pending_bookings`), never guessed.

        Call it when a service starts (a web app's lifespan), after the client is made, and
        again every minute or few; opening the client does not do it. Without a journal it
        returns ``[]``. For many studios, call it on each studio's client (``for_studio``):
        evidence is read from the entry's studio.
        """
        with bounded(self._options):
            return await self._flows.recover()

    async def pending_bookings(self) -> list[BookingOutcome]:
        """The flows of this studio the journal shows started but not ended: running now, or left
        by a process that died and not yet proven by :meth:`recover`; as outcomes of kind
        ``UNKNOWN``. ``[]`` without a journal."""
        return await self._flows.pending()

    def __getattr__(self, name: str) -> Any:
        # Called only for what is not set: the booking flows, made on first use, then a plain
        # attribute (so a booking call does not pass through here again).
        if name != "_flows" or "_flows_settings" not in vars(self):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        from ._booking import BookingFlows

        settle, hook = self._flows_settings
        self._flows = BookingFlows(
            self._ops, settle=settle, on_outcome=hook, run_bound=_run_bound(self._api.read_timeout),
            telemetry=self._telemetry, journal=self._journal,
        )  # fmt: skip
        if self._root is not self:
            self._root._studio_flows.add(self._flows)
        return self._flows

    def __repr__(self) -> str:
        api = vars(self).get("_api")
        if api is None:  # refused while being made: a traceback's locals show the constructor's self
            return "AppointmentsClient(<not set up>)"
        return (
            f"AppointmentsClient(base_url={api.base_url!r}, api_key='***', "
            f"max_retries={api.retry_policy.max_retries}, http_backend={api.backend.name!r})"
        )

    def with_options(
        self, *, max_rate_limit_wait: float | None = NOT_GIVEN, deadline: float | None = NOT_GIVEN
    ) -> Self:
        """A copy whose calls take these bounds (those not given stay as this client's), e.g.
        ``await client.with_options(max_rate_limit_wait=2, deadline=5).get_slots(...)``.

        The copy shares this client's connections, rate limit, booking flows and hook; it is
        cheap to make per request. Close this client, not its copies.
        """
        changes = {
            name: value
            for name, value in (("max_rate_limit_wait", max_rate_limit_wait), ("deadline", deadline))
            if value is not NOT_GIVEN
        }
        options = attrs.evolve(self._options, **changes)
        _ = self._flows  # made now, so that the copy shares them: their claims and the flows in flight
        twin = copy.copy(self)
        twin._options = options
        return twin

    @property
    def options(self) -> CallOptions:
        """The per-call bounds this client's calls take."""
        return self._options

    @property
    def base_url(self) -> str:
        """The tenant's base URL, e.g. ``https://studio.open-api.perfectgym.com``."""
        return self._api.base_url

    @property
    def api_version(self) -> str:
        """The API version this client was generated for (openapi.yaml's ``info.version``)."""
        return API_VERSION

    async def __aenter__(self) -> Self:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = self._ops.task_group = task_group
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task_group, self._task_group = self._task_group, None
        self._ops.task_group = None
        try:
            if task_group is not None:
                task_group.cancel_scope.cancel()  # abandon page prefetches nobody will read
                # The body's own exception is not handed to the task group: it would come back
                # wrapped in an ExceptionGroup and `except NotFoundError` would stop matching.
                # Python re-raises it as is once we return.
                await task_group.__aexit__(None, None, None)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (only those of an HTTP client we created).

        Booking flows still running (their caller was cancelled: a browser that went away, a
        server shutting down) are waited for first, each at most as long as a flow may run (four
        times the client's timeout plus 30 s: 150 s by default), so their outcomes reach
        ``on_booking_outcome`` before the connections close. A flow still running then is
        reported ``unknown`` by its own bound. Afterwards a client that made its own connections
        sends nothing more (:class:`APIConnectionError`, nothing sent); one given an
        ``http_client`` stays usable, as that client does.
        """
        own = vars(self).get("_flows")
        everyone = [own] if own is not None else []
        if self._root is self:
            everyone += [flows for flows in list(self._studio_flows) if flows is not own]
        for flows in everyone:
            running = await flows.drain()
            if running:
                logger.warning("closing the client while %d booking flow(s) still run", running)
        if self._journal is not None and self._root is self:
            await self._journal.close()  # its children share it: only the parent closes it
        await self._api.aclose()

    @_per_call
    async def check_api_key(self) -> bool:
        """Check the API key: ``HEAD`` answered 200 (True) or 401 (False).

        The key alone is checked, not its scopes. Other failures (no connection, 5xx) raise.
        """
        return await self._ops.check_api_key()

    # -- bookable appointments ------------------------------------------------------------------
    def bookable_appointments(
        self, slice_size: int = DEFAULT_SLICE_SIZE, *, limit: int | None = None
    ) -> AsyncPaginator[BookableAppointment]:
        """List bookable appointments: all of them, ``slice_size`` per request (10 to 100, the API's bounds).

        ``async for appt in ...`` item by item, ``async for page in ....pages()`` page by page.
        """
        return self._ops.bookable_appointments(slice_size, limit, self._options)

    @_per_call
    async def get_bookable_appointment(self, bookable_appointment_id: int) -> BookableAppointment:
        """Get one bookable appointment."""
        return await self._ops.get_bookable_appointment(bookable_appointment_id)

    @_per_call
    async def get_slots(
        self,
        bookable_appointment_id: int,
        *,
        customer_id: int | None = None,
        days_ahead: int | None = None,
        start_date: dt.date | None = None,
    ) -> list[Slot]:
        """List the free slots of a bookable appointment, earliest first.

        ``start_date`` is the window's first (studio-local) day.

        Without ``days_ahead`` the API's default applies (1 day); at most 366 (``ValueError``
        beyond). The API answers at most 6 days per request; a longer window is asked for as
        consecutive windows of at most 6 days (their rate-limit turns all taken before the first),
        concurrently, and merged into one list in time order (duplicates at the edges dropped).
        """
        return await self._ops.get_slots(bookable_appointment_id, customer_id, days_ahead, start_date)

    @_per_call
    async def search_slots(
        self,
        bookable_appointment_ids: Iterable[int],
        *,
        customer_id: int | None = None,
        days_ahead: int | None = None,
        start_date: dt.date | None = None,
        concurrency: int = DEFAULT_SEARCH_CONCURRENCY,
    ) -> dict[int, list[Slot]]:
        """List the free slots of many bookable appointments, at most ``concurrency`` requests at a time."""
        return await self._ops.search_slots(
            bookable_appointment_ids, customer_id, days_ahead, start_date, concurrency
        )

    # -- validation and booking -----------------------------------------------------------------
    @_per_call
    async def validate_slot(
        self,
        *,
        customer_id: int,
        bookable_appointment_id: int,
        slot: SlotLike,
        instructor_ids: Sequence[int] | None = None,
    ) -> ValidationStatus:
        """Check whether a customer may book a slot. Safe to repeat, so it is retried like a read."""
        return await self._ops.validate(
            booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
        )

    @_per_call
    async def book(
        self,
        *,
        customer_id: int,
        bookable_appointment_id: int,
        slot: SlotLike,
        validate: bool = True,
        instructor_ids: Sequence[int] | None = None,
    ) -> Booking:
        """Book a slot for a customer; at most one booking is ever kept by one call.

        With ``validate`` the slot is validated first and :class:`SlotNotBookableError` raised
        (nothing booked) unless it is AVAILABLE. The booking request is repeated only on
        evidence that the first made nothing; a booking a failed request did make is returned.
        :class:`BookingIdUnknownError`: booked (proven) but its id cannot be read yet;
        :class:`BookingOutcomeUnknownError`: nothing proves either way. The safety rules are
        listed in the guide "Booking and its safety rules" (docs/guides/booking.md). A
        ``BOOKED_WITH_CONFIRMATION_REQUIRED`` answer is returned as such (``needs_confirmation``). When the customer already holds an active booking of this
        appointment at this instant (a resubmit after a lost answer, a second tab), that booking
        is returned with ``already_existed=True`` and nothing is booked; this works within the
        bookings list's two weeks, beyond them the refusal stands (:class:`SlotNotBookableError`).
        """
        body = booking_request(customer_id, bookable_appointment_id, slot, instructor_ids)
        return await self._flows.book(body, validate=validate)

    @_per_call
    async def book_first_available(
        self,
        *,
        customer_id: int,
        bookable_appointment_id: int,
        start_date: dt.date | None = None,
        days_ahead: int = 7,
        earliest: dt.datetime | dt.time | None = None,
        latest: dt.datetime | dt.time | None = None,
        instructor_id: int | None = None,
        concurrency: int = 8,
    ) -> Booking:
        """Book the earliest slot the customer may book, in the window and filters given.

        ``earliest``/``latest`` bound the slot's start: an aware datetime, or a time of day in
        the studio's zone. Up to ``concurrency`` candidates are validated at once; candidates
        are decided strictly in time order, and exactly one booking is made (or
        :class:`NoSlotAvailableError`). An answer no other slot can change (NO_CONTINGENT,
        BOOKING_LIMIT_REACHED, ...) ends the search.
        """
        return await self._flows.book_first_available(
            customer_id, bookable_appointment_id, start_date, days_ahead, earliest, latest, instructor_id,
            concurrency,
        )  # fmt: skip

    @_per_call
    async def reschedule(
        self,
        booking_id: int,
        new_slot: SlotLike,
        *,
        bookable_appointment_id: int | None = None,
        validate: bool = True,
    ) -> Booking:
        """Move a booking: book ``new_slot`` first, then cancel the old booking.

        It never ends with neither booking. If the cancel fails, or the new booking's outcome is
        unclear, :class:`RescheduleError` names both ids. ``bookable_appointment_id`` defaults to
        the one whose title matches the booking's.
        """
        require_id("booking_id", booking_id)
        check_slot(new_slot)
        if bookable_appointment_id is not None:
            require_id("bookable_appointment_id", bookable_appointment_id)
        return await self._flows.reschedule(
            booking_id, new_slot, bookable_appointment_id=bookable_appointment_id, validate=validate
        )

    # -- bookings -------------------------------------------------------------------------------
    @_per_call
    async def get_booking(self, booking_id: int) -> Booking:
        """Get one appointment booking (with the customer it belongs to)."""
        return await self._ops.get_booking(booking_id)

    @_per_call
    async def list_bookings(self, customer_id: int) -> list[Booking]:
        """List a customer's appointment bookings: those that start and end within two weeks before
        or after now (the API shows no others); canceled ones are listed with their status."""
        return await self._ops.list_bookings(customer_id)

    @_per_call
    async def cancel_booking(self, booking_id: int) -> str:
        """Cancel an appointment booking. Returning at all means the booking is canceled now
        (a failure raises); the string says how, for a log or a message to a member: the
        server's confirmation text, or a constant. Test it against :data:`ALREADY_CANCELED`
        (``result == ALREADY_CANCELED``) to tell a booking canceled before this call; never
        parse the server's text, which is the studio's language and wording.

        The text is the answer's ``success`` when it has one (the API may leave it out: ``{}``
        is a valid answer). Without one the return is ``"canceled"`` (``CANCELED``), also when
        the answer was lost or was no confirmation (an error's body with a 200) and the booking
        read back canceled; a booking already canceled (by an earlier call, a resubmit, the
        studio) returns ``"already canceled"`` (``ALREADY_CANCELED``) instead of the API's 400.
        The client never makes up text that reads like the server's.

        Repeated only when the request surely did not arrive; after an ambiguous failure or a
        409 (another request changed the booking) it is read back, and canceled counts as done.
        A booking that has started is still a :class:`BadRequestError`.
        """
        require_id("booking_id", booking_id)
        return await self._flows.cancel(booking_id)


def _setting(check: Callable[..., object], name: str, value: object, **bounds: int) -> None:
    """An argument check of the constructor's, its ValueError a ConfigurationError: every setting
    refused when the client is made is one type (itself a ValueError)."""
    try:
        check(name, value, **bounds)
    except TypeError:
        raise
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _run_bound(read_timeout: float | None) -> float:
    """How long a booking flow may run on after its caller is cancelled: the request and its check,
    each within the client's timeout, with the retries the policy allows."""
    return 4 * (read_timeout or DEFAULT_TIMEOUT) + 30.0
