"""The sandbox's HTTP layer: the eight operations of openapi.yaml as a Starlette app.

Around the store's rules it does what the API's gateway does: the key and its scopes (401, 403),
the rate limit per endpoint (429), HEAD as a key check, parameter validation (400 with the
API's translation keys as ``errorCode``), and error messages in the ``Accept-Language`` asked for.

It writes and reads the wire formats on its own (``_wire_datetime`` / ``_parse_datetime``)
instead of borrowing the client's, so a bug in the client's date-time handling shows up as a
failing test rather than being mirrored by the server.
"""

from __future__ import annotations

import datetime as dt
import hmac
import inspect
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._i18n import content_language, negotiate, text
from ._limits import RateLimiter
from ._store import ZONE, ZONE_ID, BookingRecord, RuleViolation, Store

__all__ = [
    "APPOINTMENTS_READ",
    "APPOINTMENTS_WRITE",
    "BOOKABLE_APPOINTMENTS_READ",
    "DAYS_AHEAD",
    "FULL_SCOPES",
    "READ_ONLY_SCOPES",
    "SLICE_SIZE",
    "RequestHook",
    "checked_limit",
    "create_app",
]

# The key scopes the API knows for appointments, and what each operation needs.
BOOKABLE_APPOINTMENTS_READ = "BOOKABLE_APPOINTMENTS_READ"
APPOINTMENTS_WRITE = "APPOINTMENTS_WRITE"
APPOINTMENTS_READ = "APPOINTMENTS_READ"
FULL_SCOPES = frozenset({BOOKABLE_APPOINTMENTS_READ, APPOINTMENTS_WRITE, APPOINTMENTS_READ})
READ_ONLY_SCOPES = frozenset({BOOKABLE_APPOINTMENTS_READ, APPOINTMENTS_READ})

# (lowest, highest, default) of the bounded query parameters, as the API documents them. A studio
# may be stricter: its own highest (``max_slice_size``, ``max_days_ahead``) between the two.
SLICE_SIZE = (10, 100, 50)
DAYS_AHEAD = (1, 6, 1)

RequestHook = Callable[[str, str, str], Awaitable[None] | None]
"""``hook(phase, method, path)``, awaited in the server's event loop (see :func:`create_app`)."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,25}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"^(?P<local>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"(?P<offset>Z|[+-]\d{2}:\d{2}(?::\d{2})?)(?:\[(?P<zone>[A-Za-z0-9._+\-/]+)\])?$"
)


def _wire_datetime(value: dt.datetime) -> str:
    """Java's ``ZonedDateTime.toString()`` as the API prints it: millis, offset, zone id."""
    local = value.astimezone(ZONE)
    offset = local.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return (
        f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}"
        f"{sign}{minutes // 60:02d}:{minutes % 60:02d}[{ZONE_ID}]"
    )


# -- errors -------------------------------------------------------------------------------------
def _bad(reference: str, code: str = "errormessage.validation.invalid") -> RuleViolation:
    return RuleViolation(400, code, reference)


def _out_of_bounds(reference: str, kind: str, bound: int, *, with_bound: bool = True) -> RuleViolation:
    """``errormessage.validation.min`` / ``.max``: the bound in ``args`` and ``typedArgs``, or
    (``with_bound=False``, as some tenants answer) in neither."""
    if not with_bound:
        return RuleViolation(400, f"errormessage.validation.{kind}", reference)
    return RuleViolation(
        400,
        f"errormessage.validation.{kind}",
        reference,
        error_args=[{kind: bound}],
        typed_args=[{"value": bound, "type": "INTEGER"}],
    )


def _no_privilege(scope: str) -> RuleViolation:
    return RuleViolation(
        403,
        "errormessage.no.privilege",
        error_args=[{"permissions": [scope]}],
        typed_args=[{"value": [scope], "type": "PERMISSION_LIST"}],
    )


def _trace_id() -> str:
    return secrets.token_hex(16)


def _error(error: RuleViolation, language: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "errorMessage": error.message_in(language),
        "errorCode": error.code,
        "traceId": _trace_id(),
    }
    if error.reference is not None:
        body["reference"] = error.reference
    body["args"] = error.error_args
    body["typedArgs"] = error.typed_args
    return JSONResponse(
        body,
        status_code=error.status,
        headers={"Content-Language": content_language(language), **(headers or {})},
    )


def _rate_limited(language: str) -> JSONResponse:
    # The API documents no Retry-After (nor X-RateLimit-*) headers: clients must back off on their own.
    body = {
        "errorMessage": text("errormessage.rate.limit.exceeded", language),
        "errorCode": "errormessage.rate.limit.exceeded",
        "traceId": _trace_id(),
    }
    return JSONResponse(body, status_code=429, headers={"Content-Language": content_language(language)})


# -- reading requests ---------------------------------------------------------------------------
def _integer(raw: str, reference: str) -> int:
    """A whole number as Java reads a long: ASCII digits, an optional sign, 64 bits."""
    if not _INTEGER.fullmatch(raw):
        raise _bad(reference, "errormessage.validation.number")
    number = int(raw)
    if not INT64_MIN <= number <= INT64_MAX:
        raise _bad(reference, "errormessage.validation.number")
    return number


def _int_param(
    raw: str | None, reference: str, bounds: tuple[int, int, int] | None = None, *, with_bound: bool = True
) -> int:
    """A query parameter; with ``bounds`` (lowest, highest, default) optional and range-checked
    (``with_bound``: the bound in the refusal's ``args`` and ``typedArgs``)."""
    if raw is None:
        if bounds is None:
            raise _bad(reference, "errormessage.validation.required")
        return bounds[2]
    number = _integer(raw, reference)
    if bounds is not None:
        low, high, _ = bounds
        # Refused, never clamped: a caller asking for 500 must learn it cannot have them.
        if number < low:
            raise _out_of_bounds(reference, "min", low, with_bound=with_bound)
        if number > high:
            raise _out_of_bounds(reference, "max", high, with_bound=with_bound)
    return number


def checked_limit(name: str, value: int, documented: tuple[int, int, int]) -> int:
    """A studio's own highest value of a bounded parameter: a whole number from the documented
    lowest to the documented highest (``max_days_ahead`` 1 to 6, ``max_slice_size`` 10 to 100)."""
    low, high, _ = documented
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _bounded(request: Request, reference: str, documented: tuple[int, int, int], highest: str) -> int:
    """A bounded query parameter under the studio's own highest (``app.state.<highest>``): the
    documented (lowest, highest, default), with the highest, and a default above it, brought down."""
    state = request.app.state
    low, _, default = documented
    limit: int = getattr(state, highest)
    raw = request.query_params.get(reference)
    return _int_param(
        raw, reference, (low, limit, min(default, limit)), with_bound=state.limits_in_typed_args
    )


def _id_param(request: Request, reference: str) -> int:
    # Ids that are numbers but name nothing are "not found" (404), not "bad request".
    return _integer(request.path_params[reference], reference)


def _parse_datetime(value: object, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _bad(field, "errormessage.validation.datetime")
    match = _DATETIME.match(value)
    if match is None:
        raise _bad(field, "errormessage.validation.datetime")
    offset = match["offset"]
    try:
        # Python reads up to six fraction digits; Java may write nine.
        local = re.sub(r"(\.\d{6})\d+$", r"\1", match["local"])
        parsed = dt.datetime.fromisoformat(local + ("+00:00" if offset == "Z" else offset))
        if match["zone"]:
            ZoneInfo(match["zone"])
    # OSError: a key naming a folder of the zone database ("Europe") is not a zone either.
    except (ValueError, ZoneInfoNotFoundError, OSError):
        raise _bad(field, "errormessage.validation.datetime") from None
    try:
        # The rules compare instants in UTC and the studio's zone; 0001-01-01T00:00+14:00 or
        # 9999-12-31T23:00-14:00 fall outside Python's years in one of them.
        parsed.astimezone(dt.UTC).astimezone(ZONE)
    except OverflowError:
        raise _bad(field) from None
    return parsed


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _bad("body", "errormessage.request.body.invalid") from None
    except RecursionError:  # thousands of nested arrays or objects
        raise _bad("body", "errormessage.request.body.invalid") from None
    if not isinstance(body, dict):
        raise _bad("body", "errormessage.request.body.invalid")
    return body


def _json_long(value: object, reference: str) -> int:
    # JSON true is not 1, and 1.0 is not a long.
    if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise _bad(reference, "errormessage.validation.number")
    return value


def _booking_request(body: dict[str, Any]) -> tuple[int, int, dt.datetime, dt.datetime, list[int] | None]:
    fields = ("customerId", "bookableAppointmentId", "startDateTime", "endDateTime")
    for field in fields:
        if body.get(field) is None:
            raise _bad(field, "errormessage.validation.required")
    customer = _json_long(body["customerId"], "customerId")
    appointment = _json_long(body["bookableAppointmentId"], "bookableAppointmentId")
    start = _parse_datetime(body["startDateTime"], "startDateTime")
    end = _parse_datetime(body["endDateTime"], "endDateTime")
    wanted = body.get("instructorIds")
    if wanted is not None:
        if not isinstance(wanted, list):
            raise _bad("instructorIds")
        wanted = [_json_long(i, "instructorIds") for i in wanted]
    return customer, appointment, start, end, wanted or None


def _booking_json(record: BookingRecord, store: Store, *, with_customer: bool = False) -> dict[str, Any]:
    appointment = store.appointments[record.appointment_id]
    now = store.now()
    canceled = record.status == "CANCELED"
    body: dict[str, Any] = {
        "bookingId": record.id,
        "bookingStatus": record.status,
        "startDateTime": _wire_datetime(record.start),
        "endDateTime": _wire_datetime(record.end),
        "title": appointment.title,
        "duration": appointment.duration,
        "category": appointment.category,
        "appointmentStatus": "CANCELED"
        if canceled
        else "COMPLETED"
        if record.end.astimezone(dt.UTC) <= now.astimezone(dt.UTC)
        else "PLANNED",
        "participantStatus": "NOT_PARTICIPATING"
        if canceled
        else "UNSET"
        if record.status == "BOOKED_WITH_CONFIRMATION_REQUIRED"
        else "PARTICIPATING",
        "instructors": [store.instructors[record.instructor_id].to_json()],
    }
    # Absent rather than null: the API's schemas are not nullable.
    if appointment.description is not None:
        body["description"] = appointment.description
    if appointment.img_url is not None:
        body["imgUrl"] = appointment.img_url
    if with_customer:
        body["customerId"] = record.customer_id
    return body


class _KeyCheckOnHead:
    """HEAD on any API path checks the key alone (API 1.9.0): 200 if valid, 401 if not, no body,
    whatever the path's ids and whatever the key's scopes."""

    def __init__(self, app: ASGIApp, is_valid: Callable[[str], bool]) -> None:
        self.app = app
        self.is_valid = is_valid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        sent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-api-key"), None)
        status = 200 if sent is not None and self.is_valid(sent) else 401
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def create_app(
    store: Store,
    api_key: str,
    *,
    read_only_api_key: str | None = None,
    rate_limiter: RateLimiter | None = None,
    on_request: RequestHook | None = None,
    max_days_ahead: int = DAYS_AHEAD[1],
    max_slice_size: int = SLICE_SIZE[1],
    limits_in_typed_args: bool = True,
) -> Starlette:
    """The API's routes over ``store``.

    Requests must carry ``X-API-KEY``: ``api_key`` may do everything, ``read_only_api_key`` (if
    given) only read (BOOKABLE_APPOINTMENTS_READ and APPOINTMENTS_READ). ``rate_limiter`` counts
    and limits requests per endpoint; without one nothing is limited.

    A studio may be stricter than the API's documented bounds: ``max_days_ahead`` (1 to 6) and
    ``max_slice_size`` (10 to 100) are its highest ``daysAhead`` and ``sliceSize``; past them
    400 ``errormessage.validation.max`` with the studio's bound in ``args`` and ``typedArgs``
    (``limits_in_typed_args=False``: ``args`` and ``typedArgs`` empty, as some tenants answer).
    A ``sliceSize`` left out is 50, or the studio's highest if lower. All three are in
    ``app.state`` and may be changed while serving.

    ``on_request(phase, method, path)`` (``app.state.on_request``, may be replaced while serving)
    is called, and awaited if it returns an awaitable, in the server's event loop: ``"received"``
    once a request has passed the key, rate limit and scope checks, before the operation runs;
    ``"committed"`` once a booking was made or a booking canceled in the store, before the answer
    is sent. Tests use it to see a request at the server and to hold it there. An exception from
    it answers the request 500 (after ``"committed"``: the change stays made).
    """
    checked_limit("max_days_ahead", max_days_ahead, DAYS_AHEAD)
    checked_limit("max_slice_size", max_slice_size, SLICE_SIZE)
    keys = {api_key.encode(): FULL_SCOPES}
    if read_only_api_key is not None:
        keys[read_only_api_key.encode()] = READ_ONLY_SCOPES
    limiter = rate_limiter if rate_limiter is not None else RateLimiter(None)

    async def tell(phase: str, request: Request) -> None:
        hook: RequestHook | None = request.app.state.on_request
        if hook is not None:
            reply = hook(phase, request.method, request.url.path)
            if inspect.isawaitable(reply):
                await reply

    def scopes_of(sent: str) -> frozenset[str] | None:
        found = None
        raw = sent.encode()
        for key, scopes in keys.items():  # every key compared, in constant time each
            if hmac.compare_digest(raw, key):
                found = scopes
        return found

    def endpoint(
        method: str, template: str, scope: str, handler: Callable[[Request], Awaitable[Any]]
    ) -> Route:
        name = f"{method} {template}"  # the rate limit's counter: one per endpoint, whatever the ids

        async def run(request: Request) -> Response:
            language = negotiate(request.headers.get("accept-language"))
            limiter.count(name)
            try:
                sent = request.headers.get("x-api-key", "")
                scopes = scopes_of(sent)
                if scopes is None:
                    raise RuleViolation(401, "errormessage.unauthorized")
                if not limiter.admit(sent, name):
                    return _rate_limited(language)
                if scope not in scopes:
                    raise _no_privilege(scope)
                await tell("received", request)
                answer = await handler(request)
            except RuleViolation as exc:
                return _error(exc, language)
            return JSONResponse(answer)

        return Route(template, run, methods=[method])

    async def list_bookable(request: Request) -> dict[str, Any]:
        query = request.query_params
        size = _bounded(request, "sliceSize", SLICE_SIZE, "max_slice_size")
        offset = query.get("offset", "0")
        # ASCII digits only: str.isdigit() also accepts "³", which int() then refuses.
        if not (offset.isascii() and offset.isdigit()) or len(offset) > 19:
            raise _bad("offset")
        items, has_next = store.appointment_page(int(offset), size)
        next_offset = str(items[-1].id) if items else offset
        return {"result": [a.to_json() for a in items], "hasNext": has_next, "offset": next_offset}

    async def get_bookable(request: Request) -> dict[str, Any]:
        return store.appointment(_id_param(request, "bookableAppointmentId")).to_json()

    async def get_slots(request: Request) -> list[dict[str, Any]]:
        appointment_id = _id_param(request, "bookableAppointmentId")
        query = request.query_params
        days = _bounded(request, "daysAhead", DAYS_AHEAD, "max_days_ahead")
        customer = query.get("customerId")
        customer_id = _integer(customer, "customerId") if customer is not None else None
        first = query.get("slotWindowStartDate")
        if first is None:
            first_day = store.now().date()
        else:
            try:
                # fromisoformat alone would also take 20220622 and week dates; the API wants 2022-06-22.
                if not _DATE.fullmatch(first):
                    raise ValueError(first)
                first_day = dt.date.fromisoformat(first)
            except ValueError:
                raise _bad("slotWindowStartDate", "errormessage.validation.date") from None
        if (dt.date.max - first_day).days < days - 1:
            raise _bad("slotWindowStartDate")  # the window would run past 9999-12-31
        slots = store.slots(appointment_id, first_day, days, customer_id)
        return [
            {
                "startDateTime": _wire_datetime(start),
                "endDateTime": _wire_datetime(end),
                "instructors": [i.to_json() for i in instructors],
            }
            for start, end, instructors in slots
        ]

    async def validate(request: Request) -> dict[str, Any]:
        customer_id, appointment_id, start, end, wanted = _booking_request(await _json_body(request))
        return {"validationStatus": store.validate(customer_id, appointment_id, start, end, wanted)}

    async def book(request: Request) -> dict[str, Any]:
        customer_id, appointment_id, start, end, wanted = _booking_request(await _json_body(request))
        record = store.book(customer_id, appointment_id, start, end, wanted)
        await tell("committed", request)
        return _booking_json(record, store)

    async def get_booking(request: Request) -> dict[str, Any]:
        return _booking_json(store.booking(_id_param(request, "bookingId")), store, with_customer=True)

    async def cancel_booking(request: Request) -> dict[str, Any]:
        booking_id = _id_param(request, "bookingId")
        with store.modifying(booking_id):
            # The write's own time: a second change of this booking meanwhile gets 409.
            await anyio.sleep(store.write_latency)
            record = store.cancel(booking_id)
        await tell("committed", request)
        return {"success": f"Booking {record.id} was canceled."}

    async def list_bookings(request: Request) -> list[dict[str, Any]]:
        customer_id = _int_param(request.query_params.get("customerId"), "customerId")
        return [_booking_json(b, store) for b in store.customer_bookings(customer_id)]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        code = "errormessage.method.not.allowed" if status == 405 else "errormessage.route.not.found"
        error = RuleViolation(status, code, params={"method": request.method, "path": request.url.path})
        headers = exc.headers if isinstance(exc, HTTPException) and exc.headers else None
        return _error(error, negotiate(request.headers.get("accept-language")), headers)

    async def gone(request: Request, exc: Exception) -> Response:
        # The client left while sending its body (a cancelled call): nobody reads an answer,
        # and it is no server error to log.
        return Response(status_code=499)

    async def server_error(request: Request, exc: Exception) -> Response:
        error = RuleViolation(500, "errormessage.internal.error")
        return _error(error, negotiate(request.headers.get("accept-language")))

    bookable, booking = "/v1/appointments/bookable", "/v1/appointments/booking"
    routes = [
        endpoint("GET", bookable, BOOKABLE_APPOINTMENTS_READ, list_bookable),
        endpoint("POST", f"{bookable}/validate", BOOKABLE_APPOINTMENTS_READ, validate),
        endpoint("GET", f"{bookable}/{{bookableAppointmentId}}", BOOKABLE_APPOINTMENTS_READ, get_bookable),
        endpoint("GET", f"{bookable}/{{bookableAppointmentId}}/slots", BOOKABLE_APPOINTMENTS_READ, get_slots),
        endpoint("POST", f"{booking}/book", APPOINTMENTS_WRITE, book),
        endpoint("GET", booking, APPOINTMENTS_READ, list_bookings),
        endpoint("GET", f"{booking}/{{bookingId}}", APPOINTMENTS_READ, get_booking),
        endpoint("DELETE", f"{booking}/{{bookingId}}", APPOINTMENTS_WRITE, cancel_booking),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_KeyCheckOnHead, is_valid=lambda sent: scopes_of(sent) is not None)],
        exception_handlers={HTTPException: http_error, ClientDisconnect: gone, Exception: server_error},
    )
    app.state.on_request = on_request
    app.state.max_days_ahead = max_days_ahead
    app.state.max_slice_size = max_slice_size
    app.state.limits_in_typed_args = limits_in_typed_args
    return app
