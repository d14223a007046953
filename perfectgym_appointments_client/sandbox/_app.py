"""The sandbox's HTTP layer: the eight operations of openapi.yaml as a Starlette app.

It writes and reads the wire formats on its own (``_wire_datetime`` / ``_parse_datetime``)
instead of borrowing the client's, so a bug in the client's date-time handling shows up as a
failing test rather than being mirrored by the server.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._store import ZONE, ZONE_ID, Appointment, BookingRecord, RuleViolation, Store

__all__ = ["create_app"]

INT64_MAX = 2**63 - 1
MAX_DAYS_AHEAD = 92  # a quarter; a longer window is refused rather than computed

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


class _BadRequest(RuleViolation):
    def __init__(self, reference: str, message: str) -> None:
        super().__init__(400, "INVALID_PARAMETER", message, reference)


def _parse_datetime(value: object, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _BadRequest(field, f"{field} must be a date-time string")
    match = _DATETIME.match(value)
    if match is None:
        raise _BadRequest(
            field, f"{field} is not a date-time like 2022-06-22T08:00:00.000+02:00[Europe/Berlin]"
        )
    offset = match["offset"]
    try:
        # Python reads up to six fraction digits; Java may write nine.
        local = re.sub(r"(\.\d{6})\d+$", r"\1", match["local"])
        parsed = dt.datetime.fromisoformat(local + ("+00:00" if offset == "Z" else offset))
        if match["zone"]:
            ZoneInfo(match["zone"])
    # OSError: a key naming a folder of the zone database ("Europe") is not a zone either.
    except (ValueError, ZoneInfoNotFoundError, OSError):
        raise _BadRequest(field, f"{field} is not a valid date-time or zone: {value!r}") from None
    try:
        # The rules compare instants in UTC and the studio's zone; 0001-01-01T00:00+14:00 or
        # 9999-12-31T23:00-14:00 fall outside Python's years in one of them.
        parsed.astimezone(dt.UTC).astimezone(ZONE)
    except OverflowError:
        raise _BadRequest(field, f"{field} is out of range: {value!r}") from None
    return parsed


def _int_param(
    raw: str | None, field: str, *, low: int = 1, high: int = INT64_MAX, default: int | None = None
) -> int:
    if raw is None:
        if default is None:
            raise _BadRequest(field, f"{field} is required")
        return default
    try:
        number = int(raw)
    except ValueError:
        raise _BadRequest(field, f"{field} must be an integer") from None
    if not low <= number <= high:
        raise _BadRequest(field, f"{field} must be between {low} and {high}")
    return number


def _id_param(request: Request, field: str) -> int:
    # Ids that are numbers but name nothing are "not found", not "bad request".
    raw = request.path_params[field]
    try:
        number = int(raw)
    except ValueError:
        raise _BadRequest(field, f"{field} must be an integer") from None
    return number


def _error(status: int, message: str, code: str, reference: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "errorMessage": message,
        "errorCode": code,
        "traceId": secrets.token_hex(8),
        "reference": reference,
        "args": [reference] if reference else [],
        "typedArgs": [{"value": reference, "type": "STRING"}] if reference else [],
    }
    return JSONResponse(body, status_code=status)


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
        "description": appointment.description,
        "imgUrl": appointment.img_url,
        "appointmentStatus": "CANCELED" if canceled else "COMPLETED" if record.end <= now else "PLANNED",
        "participantStatus": "NOT_PARTICIPATING"
        if canceled
        else "UNSET"
        if record.status == "BOOKED_WITH_CONFIRMATION_REQUIRED"
        else "PARTICIPATING",
        "instructors": [store.instructors[record.instructor_id].to_json()],
    }
    if with_customer:
        body["customerId"] = record.customer_id
    return body


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise _BadRequest("body", "The request body is not JSON") from None
    except RecursionError:  # thousands of nested arrays or objects
        raise _BadRequest("body", "The request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise _BadRequest("body", "The request body must be a JSON object")
    return body


def _booking_request(body: dict[str, Any]) -> tuple[int, int, dt.datetime, dt.datetime, list[int] | None]:
    ids = []
    for field in ("customerId", "bookableAppointmentId"):
        value = body.get(field)
        if value is None:
            raise _BadRequest(field, f"{field} is required")
        if isinstance(value, bool) or not isinstance(value, int) or not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise _BadRequest(field, f"{field} must be a 64-bit integer")
        ids.append(value)
    for field in ("startDateTime", "endDateTime"):
        if body.get(field) is None:
            raise _BadRequest(field, f"{field} is required")
    start = _parse_datetime(body["startDateTime"], "startDateTime")
    end = _parse_datetime(body["endDateTime"], "endDateTime")
    wanted = body.get("instructorIds")
    if wanted is not None and (
        not isinstance(wanted, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in wanted)
    ):
        raise _BadRequest("instructorIds", "instructorIds must be a list of integers")
    return ids[0], ids[1], start, end, wanted or None


def create_app(store: Store, api_key: str) -> Starlette:
    """The API's routes over ``store``; requests must carry ``X-API-KEY: api_key``."""
    expected_key = api_key.encode()

    def endpoint(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            sent = request.headers.get("x-api-key", "").encode()
            if not hmac.compare_digest(sent, expected_key):
                return _error(401, "Unauthorized", "UNAUTHORIZED")
            try:
                answer = await handler(request)
            except RuleViolation as exc:
                return _error(exc.status, exc.message, exc.code, exc.reference)
            return JSONResponse(answer)

        return run

    async def list_bookable(request: Request) -> dict[str, Any]:
        query = request.query_params
        size = _int_param(query.get("sliceSize"), "sliceSize", low=1, high=100, default=50)
        offset = query.get("offset", "0")
        # ASCII digits only: str.isdigit() also accepts "³", which int() then refuses.
        if not (offset.isascii() and offset.isdigit()) or len(offset) > 19:
            raise _BadRequest("offset", "offset must be the id of the previous page's last item")
        items, has_next = store.appointment_page(int(offset), size)
        next_offset = str(items[-1].id) if items else offset
        return {"result": [a.to_json() for a in items], "hasNext": has_next, "offset": next_offset}

    async def get_bookable(request: Request) -> dict[str, Any]:
        appointment: Appointment = store.appointment(_id_param(request, "bookableAppointmentId"))
        return appointment.to_json()

    async def get_slots(request: Request) -> list[dict[str, Any]]:
        appointment_id = _id_param(request, "bookableAppointmentId")
        query = request.query_params
        days = _int_param(query.get("daysAhead"), "daysAhead", high=MAX_DAYS_AHEAD, default=7)
        customer = query.get("customerId")
        customer_id = _int_param(customer, "customerId", low=-INT64_MAX - 1) if customer is not None else None
        first = query.get("slotWindowStartDate")
        try:
            first_day = dt.date.fromisoformat(first) if first is not None else store.now().date()
        except ValueError:
            raise _BadRequest(
                "slotWindowStartDate", "slotWindowStartDate must be a date like 2022-06-22"
            ) from None
        if (dt.date.max - first_day).days < days - 1:
            raise _BadRequest("daysAhead", "The slot window must end by 9999-12-31")
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
        return _booking_json(store.book(customer_id, appointment_id, start, end, wanted), store)

    async def get_booking(request: Request) -> dict[str, Any]:
        return _booking_json(store.booking(_id_param(request, "bookingId")), store, with_customer=True)

    async def cancel_booking(request: Request) -> dict[str, Any]:
        record = store.cancel(_id_param(request, "bookingId"))
        return {"success": f"Booking {record.id} was canceled."}

    async def list_bookings(request: Request) -> list[dict[str, Any]]:
        customer_id = _int_param(request.query_params.get("customerId"), "customerId", low=-INT64_MAX - 1)
        return [_booking_json(b, store) for b in store.customer_bookings(customer_id)]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _error(status, f"No route for {request.method} {request.url.path}", "NOT_FOUND")

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, "Internal server error", "INTERNAL_ERROR")

    routes = [
        Route("/v1/appointments/bookable", endpoint(list_bookable), methods=["GET"]),
        Route("/v1/appointments/bookable/validate", endpoint(validate), methods=["POST"]),
        Route("/v1/appointments/bookable/{bookableAppointmentId}", endpoint(get_bookable), methods=["GET"]),
        Route(
            "/v1/appointments/bookable/{bookableAppointmentId}/slots", endpoint(get_slots), methods=["GET"]
        ),
        Route("/v1/appointments/booking/book", endpoint(book), methods=["POST"]),
        Route("/v1/appointments/booking", endpoint(list_bookings), methods=["GET"]),
        Route("/v1/appointments/booking/{bookingId}", endpoint(get_booking), methods=["GET"]),
        Route("/v1/appointments/booking/{bookingId}", endpoint(cancel_booking), methods=["DELETE"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found, Exception: server_error})
