"""The bad-input sweep: malformed answers against every operation.

Each answer shape (truncated JSON, HTML, an empty body, wrong types, missing required fields, null
lists, unknown enums, extra fields, bad date-times, huge pages, broken encodings, odd statuses...)
is served to each of the eight operations in place of its real answer: these are shapes a real
server makes only by accident. Every other request (the reads a booking flow makes to check what
happened) gets a valid answer.

Each case runs on both HTTP backends, from the same bytes (:class:`Answer`: status, headers as on
the wire, body): on httpx through ``httpx.MockTransport``, the body handed over undecoded so httpx
reads it as it would off a socket; on aiohttp (asyncio only; it has no mock transport) over a real
loopback socket, :class:`LoopbackServer` (benchmarks/loopback.py) writing the status line, headers and body byte for byte.

Some answers go on after their first bytes (``Bad.more``): a body far over the client's cap
(declared, or sized by closing), an endless chunked stream, a trickle of a byte at a time; with
a gzip bomb they must end in a typed error too, and end (benchmarks/hostile.py measures what
they cost at full size).

Every shape says what the client must do with it: raise a typed error (and which one, naming the
operation and field), or parse tolerantly. Nothing may escape as a bare exception.
``tests/test_bad_input_sweep.py`` runs every body, status, size, encoding and pace shape on both
backends, and a shape that only spoils a field or item of a well-formed answer on httpx (on
aiohttp for each operation's first typed error and first tolerant parse: past the answer's bytes
the parse is shared code); ``scripts/soak`` runs every case on both and prints the counts per
backend.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import anyio
import attrs
import httpx

from perfectgym_appointments_client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AppointmentsClient,
    AppointmentStatus,
    AuthenticationError,
    BadRequestError,
    BookingStatus,
    InternalServerError,
    NotFoundError,
    ParticipantStatus,
    PerfectGymError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    ServiceUnavailableError,
    Slot,
    ValidationStatus,
)
from perfectgym_appointments_client._booking._cancel import CANCELED
from perfectgym_appointments_client._constants import DEFAULT_MAX_RESPONSE_BYTES
from perfectgym_appointments_client._constants import HTTP_BACKENDS as HTTP_BACKENDS

from . import loopback
from .hostile import gzip_bomb_bytes

KEY = "sweep-key"
BASE = "https://tenant.example"
CUSTOMER = 5
APPOINTMENT = 1
BOOKING_ID = 100
HUGE = 20_000
OPEN_ENUMS = (ValidationStatus, BookingStatus, AppointmentStatus, ParticipantStatus)

APPOINTMENT_JSON = {"id": APPOINTMENT, "title": "Yoga", "duration": 60, "category": "Fitness"}
INSTRUCTOR_JSON = {"id": 7, "firstName": "Anna", "lastName": "Schmidt", "publicName": "Coach Anna"}
SLOT_JSON = {
    "startDateTime": "2026-03-23T08:00:00.000+01:00[Europe/Berlin]",
    "endDateTime": "2026-03-23T09:00:00.000+01:00[Europe/Berlin]",
    "instructors": [INSTRUCTOR_JSON],
}
# Another hour than the slot we book: a booking-flow check finds no booking of ours in it.
BOOKING_JSON = {
    "bookingId": BOOKING_ID,
    "bookingStatus": "BOOKED",
    "startDateTime": "2026-03-23T10:00:00.000+01:00[Europe/Berlin]",
    "endDateTime": "2026-03-23T11:00:00.000+01:00[Europe/Berlin]",
    "title": "Yoga",
    "duration": 60,
    "appointmentStatus": "PLANNED",
    "participantStatus": "UNSET",
    "instructors": [],
}

# An enum value none of the API's enums lists (as generated from the spec): the
# first of RESOURCE_NOT_AVAILABLE_V2, _V3, ... so that a spec adding one leaves it unknown.
UNKNOWN_ENUM_VALUE = next(
    value
    for value in (f"RESOURCE_NOT_AVAILABLE_V{n}" for n in itertools.count(2))
    if not any(value in {member.value for member in enum} for enum in OPEN_ENUMS)
)

Path = tuple[str | int, ...]


@attrs.frozen
class Operation:
    """One API operation, with a valid answer to spoil and where its parts sit in that answer."""

    name: str
    method: str
    path: str
    answer: Any
    call: Callable[[AppointmentsClient], Awaitable[Any]]
    target: Path  # the main object inside the answer
    required: tuple[str, ...]  # its required fields
    int_field: str | None = None
    datetime_field: str | None = None
    enum_field: str | None = None
    optional_str: str | None = None
    items: Path | None = None  # where the answer's list of items is, if it has one
    # The facade returns its own value (a Booking, a Page, a status, a text), not the generated
    # model, so the answer's extra fields are not there to check.
    wraps: bool = False
    # Shapes the official schema allows here after all, and what the call must return for them.
    lenient: frozenset[str] = frozenset()
    lenient_check: Callable[[Any], bool] | None = None


async def _pages(client: AppointmentsClient) -> Any:
    return [page async for page in client.bookable_appointments(slice_size=50).pages()]


def _slot() -> Slot:
    return Slot.from_dict(SLOT_JSON)


OPERATIONS = (
    Operation(
        "getBookableAppointments", "GET", "/v1/appointments/bookable",
        {"result": [APPOINTMENT_JSON], "hasNext": False, "offset": "1"}, _pages,
        target=(), required=("result", "hasNext", "offset"), items=("result",), wraps=True,
    ),
    Operation(
        "getBookableAppointment", "GET", f"/v1/appointments/bookable/{APPOINTMENT}", APPOINTMENT_JSON,
        lambda c: c.get_bookable_appointment(APPOINTMENT),
        target=(), required=("id",), int_field="id", optional_str="title",
    ),
    Operation(
        "getBookableAppointmentSlots", "GET", f"/v1/appointments/bookable/{APPOINTMENT}/slots", [SLOT_JSON],
        lambda c: c.get_slots(APPOINTMENT, customer_id=CUSTOMER, days_ahead=6),
        target=(0,), required=("startDateTime", "endDateTime"), datetime_field="startDateTime", items=(),
    ),
    Operation(
        "validateForAppointmentBooking", "POST", "/v1/appointments/bookable/validate",
        {"validationStatus": "AVAILABLE"}, lambda c: c.validate_slot(customer_id=CUSTOMER, bookable_appointment_id=APPOINTMENT, slot=_slot()),
        target=(), required=("validationStatus",), enum_field="validationStatus", wraps=True,
    ),
    Operation(
        "bookAppointmentBooking", "POST", "/v1/appointments/booking/book",
        {**BOOKING_JSON, "bookingId": 101, "startDateTime": SLOT_JSON["startDateTime"],
         "endDateTime": SLOT_JSON["endDateTime"]},
        lambda c: c.book(customer_id=CUSTOMER, bookable_appointment_id=APPOINTMENT, slot=_slot(), validate=False),
        target=(), required=("bookingId", "bookingStatus", "startDateTime", "endDateTime",
                             "appointmentStatus", "participantStatus"),
        int_field="bookingId", datetime_field="startDateTime", enum_field="bookingStatus",
        optional_str="title", wraps=True,
    ),
    Operation(
        "getAppointmentBooking", "GET", f"/v1/appointments/booking/{BOOKING_ID}",
        {**BOOKING_JSON, "customerId": CUSTOMER}, lambda c: c.get_booking(BOOKING_ID),
        target=(), required=("bookingId", "customerId", "bookingStatus", "startDateTime", "endDateTime",
                             "appointmentStatus", "participantStatus"),
        int_field="bookingId", datetime_field="endDateTime", enum_field="participantStatus",
        optional_str="title", wraps=True,
    ),
    Operation(
        "deleteAppointmentBooking", "DELETE", f"/v1/appointments/booking/{BOOKING_ID}",
        {"success": f"Booking {BOOKING_ID} was canceled."}, lambda c: c.cancel_booking(BOOKING_ID),
        target=(), required=("success",), wraps=True,
        # The official VoidResult requires nothing: a 200 without a text is the cancel done, and
        # the call says so without making a text up (a text of another type is refused).
        lenient=frozenset({"empty-object", "missing-success", "null-success"}),
        lenient_check=lambda result: result == CANCELED,
    ),
    Operation(
        "getAppointmentBookings", "GET", "/v1/appointments/booking", [BOOKING_JSON],
        lambda c: c.list_bookings(CUSTOMER),
        target=(0,), required=("bookingId", "bookingStatus", "startDateTime", "endDateTime",
                               "appointmentStatus", "participantStatus"),
        int_field="bookingId", datetime_field="startDateTime", enum_field="appointmentStatus",
        optional_str="title", items=(), wraps=True,
    ),
)  # fmt: skip
VALID = {(op.method, op.path): op.answer for op in OPERATIONS}


# -- what a case serves, and what it expects ----------------------------------------------------------


@attrs.frozen
class Bad:
    """A malformed answer and the client's duty: ``error`` of that type, or a tolerant parse."""

    status: int
    content: bytes
    headers: dict[str, str] = attrs.field(factory=lambda: {"Content-Type": "application/json"})
    error: type[PerfectGymError] | None = ResponseValidationError  # None: must parse
    field: str | None = None  # the field a ResponseValidationError must name
    detail: str | None = None  # what its message must say, if anything in particular
    check: Callable[[Any], bool] | None = None  # for a tolerant parse: is the value right?
    # The body after ``content``, as it arrives (pieces, maybe slow, maybe endless); framed as
    # chunks on the wire if the headers say chunked, else sized by Content-Length or by closing.
    more: Callable[[], AsyncGenerator[bytes, None]] | None = None
    timeout: float | None = None  # the client's, if not its default


def _json(value: Any, status: int = 200, **kwargs: Any) -> Bad:
    return Bad(status, json.dumps(value).encode(), **kwargs)


def _raw(content: bytes, content_type: str = "application/json", status: int = 200, **kwargs: Any) -> Bad:
    return Bad(status, content, {"Content-Type": content_type}, **kwargs)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _at(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


def _with(op: Operation, field: str, value: Any) -> Any:
    """The valid answer with the main object's ``field`` set to ``value``."""
    answer = _copy(op.answer)
    _at(answer, op.target)[field] = value
    return answer


def _without(op: Operation, field: str) -> Any:
    answer = _copy(op.answer)
    del _at(answer, op.target)[field]
    return answer


def _with_items(op: Operation, items: Any) -> Any:
    if op.items == ():
        return items
    answer = _copy(op.answer)
    assert op.items is not None
    _at(answer, op.items[:-1])[op.items[-1]] = items
    return answer


def _path(op: Operation, field: str) -> str:
    """How an error names ``field`` of the main object: ``[0].startDateTime`` in a list answer."""
    steps = "".join(f"[{step}]" if isinstance(step, int) else f"{step}." for step in op.target)
    return f"{steps}.{field}" if steps.endswith("]") else f"{steps}{field}"


def _is_list_answer(op: Operation) -> bool:
    return isinstance(op.answer, list)


def _is_pages(result: Any) -> bool:
    """What the listing operation returns here: a list of Page objects."""
    return isinstance(result, list) and bool(result) and hasattr(result[0], "has_next")


def _first(result: Any) -> Any:
    """The parsed main object, whatever the operation returns."""
    if _is_pages(result):
        return result[0].items[0]
    return result[0] if isinstance(result, list) else result


def _field_value(result: Any, field: str) -> Any:
    snake = "".join("_" + c.lower() if c.isupper() else c for c in field)
    return getattr(_first(result), snake)


def _datetime_case(
    value: Any, parse: bool, check: Callable[[Any], bool] | None = None
) -> Callable[[Operation], Iterator[Bad]]:
    def make(op: Operation) -> Iterator[Bad]:
        if op.datetime_field is None:
            return
        field = op.datetime_field
        if parse:
            yield _json(
                _with(op, field, value),
                error=None,
                check=check and (lambda r: check(_field_value(r, field))),
            )
        else:
            yield _json(_with(op, field, value), field=_path(op, field))

    return make


_CAP = DEFAULT_MAX_RESPONSE_BYTES
_MIB = 1 << 20


def _blocks(total: int) -> Callable[[], AsyncGenerator[bytes, None]]:
    async def more() -> AsyncGenerator[bytes, None]:
        for _ in range(total // _MIB):
            yield b" " * _MIB

    return more


async def _endless() -> AsyncGenerator[bytes, None]:
    piece = b"0," * 32_768
    while True:
        yield piece


async def _trickle() -> AsyncGenerator[bytes, None]:
    for _ in range(1000):
        await anyio.sleep(0.02)
        yield b" "


def _hostile_cases() -> Iterator[tuple[str, Bad]]:
    """Answers too big to hold or too slow to wait for."""
    over = f"answer larger than the {_CAP >> 20} MiB cap"
    yield (
        "gzip-bomb",
        Bad(
            200,
            gzip_bomb_bytes(4 * _CAP >> 20),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            field="<body>",
            detail=over,
        ),
    )
    yield (
        "endless-chunked",
        Bad(
            200,
            b"[",
            {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            field="<body>",
            more=_endless,
            detail=over,
        ),
    )
    yield (
        "huge-body-declared",
        Bad(
            200,
            b"",
            {"Content-Type": "application/json", "Content-Length": str(2 * _CAP)},
            field="<body>",
            more=_blocks(2 * _CAP),
            detail=over,
        ),
    )
    yield (
        "huge-body-until-close",
        Bad(
            200,
            b"",
            {"Content-Type": "application/json", "Connection": "close"},
            field="<body>",
            more=_blocks(2 * _CAP),
            detail=over,
        ),
    )
    # A byte every 20 ms trips no 0.1 s read timeout; the attempt's bound (0.5 s) ends it.
    yield (
        "trickle",
        Bad(200, b"", {"Content-Type": "application/json", "Content-Length": "1000"}, error=APITimeoutError,
            more=_trickle, timeout=0.1),
    )  # fmt: skip


def _body_cases(op: Operation) -> Iterator[tuple[str, Bad]]:
    """Answers that are wrong as a whole."""
    good = json.dumps(op.answer).encode()
    yield "empty-body", _raw(b"", field="<body>")
    yield "truncated-json", _raw(good[: len(good) // 2], field="<body>")
    yield (
        "html-page",
        _raw(b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", field="<body>"),
    )
    yield "plain-text", _raw(b"OK", "text/plain", field="<body>")
    yield "json-null", _raw(b"null")
    yield "json-number", _raw(b"42")
    yield "json-string", _raw(b'"booked"')
    yield "json-true", _raw(b"true")
    yield "empty-object", _json({})
    if _is_list_answer(op):
        yield "empty-list", _json([], error=None, check=lambda r: r == [])
    else:
        yield "empty-list", _json([])
    yield "wrapped-in-a-list", _json([op.answer])
    yield "invalid-utf8", _raw(b'{"id": "\xff\xfe\xfa"}', field="<body>")
    yield "utf8-bom", _raw(codecs.BOM_UTF8 + good, error=None)
    yield "deeply-nested", _raw(b"[" * 100_000 + b"]" * 100_000, field="<body>")
    yield "error-body-with-200", _json({"errorMessage": "Database timeout", "errorCode": "INTERNAL"})
    yield "json-as-text-plain", _raw(good, "text/plain", error=None)
    yield "status-201", _raw(good, field="<status>", status=201)
    yield "status-204-no-body", _raw(b"", field="<status>", status=204)
    # Content-Encoding says gzip, the body is not: neither httpx nor aiohttp can decode it, so
    # there is no answer.
    yield (
        "bad-gzip",
        Bad(
            200,
            good,
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            error=APIConnectionError,
        ),
    )
    yield from _hostile_cases()


def _field_cases(op: Operation) -> Iterator[tuple[str, Bad]]:
    """The main object with one field spoiled."""
    for field in op.required:
        yield f"missing-{field}", _json(_without(op, field), field=_path(op, field))
        yield f"null-{field}", _json(_with(op, field, None), field=_path(op, field))
        current = _at(op.answer, op.target)[field]
        wrong: Any = "a string" if isinstance(current, list) else [1, 2]
        yield f"wrong-type-{field}", _json(_with(op, field, wrong), field=_path(op, field))
    first = op.required[0]
    yield "object-for-a-value", _json(_with(op, first, {"value": 1}), field=_path(op, first))
    yield "extra-fields", _json(
        _with(op, "addedInApi2", {"nested": [1, None]}), error=None,
        check=lambda r: op.wraps or _first(r)["addedInApi2"] == {"nested": [1, None]},
    )  # fmt: skip
    if op.int_field is not None:
        i = op.int_field
        yield "int-as-string", _json(_with(op, i, "123"), field=_path(op, i))
        yield "int-as-bool", _json(_with(op, i, True), field=_path(op, i))
        yield "int-as-float", _json(_with(op, i, 1.5), field=_path(op, i))
        # Python's json reads NaN and 1e400 (infinity): neither is an id.
        yield "int-nan", _raw(json.dumps(_with(op, i, float("nan"))).encode(), field=_path(op, i))
        yield (
            "int-overflow",
            _raw(json.dumps(_with(op, i, 10)).replace(": 10", ": 1e400", 1).encode(), field=_path(op, i)),
        )
        yield (
            "int-huge",
            _json(_with(op, i, 10**30), error=None, check=lambda r: _field_value(r, i) == 10**30),
        )
    if op.enum_field is not None:
        e = op.enum_field

        def unknown(raw: str) -> Callable[[Any], bool]:
            def check(result: Any) -> bool:
                value = result if op.name == "validateForAppointmentBooking" else _field_value(result, e)
                return str(value) == raw and not value.is_known

            return check

        yield (
            "enum-unknown",
            _json(_with(op, e, UNKNOWN_ENUM_VALUE), error=None, check=unknown(UNKNOWN_ENUM_VALUE)),
        )
        yield "enum-lowercase", _json(_with(op, e, "booked"), error=None, check=unknown("booked"))
        yield "enum-number", _json(_with(op, e, 3), field=_path(op, e))
        yield "enum-empty", _json(_with(op, e, ""), error=None, check=unknown(""))
    if op.optional_str is not None:
        o = op.optional_str
        yield (
            "optional-null",
            _json(_with(op, o, None), error=None, check=lambda r: _field_value(r, o) is None),
        )
        yield (
            "optional-absent",
            _json(_without(op, o), error=None, check=lambda r: not isinstance(_field_value(r, o), str)),
        )
        yield (
            "long-string",
            _json(
                _with(op, o, "x" * 1_000_000),
                error=None,
                check=lambda r: len(_field_value(r, o)) == 1_000_000,
            ),
        )
    for name, make in (
        ("datetime-garbage", _datetime_case("not a date", parse=False)),
        ("datetime-naive", _datetime_case("2026-03-23T08:00:00", parse=False)),
        ("datetime-unknown-zone", _datetime_case("2026-03-23T08:00:00.000+01:00[Mars/Olympus]", parse=False)),
        ("datetime-month-13", _datetime_case("2026-13-23T08:00:00.000+01:00[Europe/Berlin]", parse=False)),
        ("datetime-unclosed-zone", _datetime_case("2026-03-23T08:00:00.000+01:00[Europe/Berlin", parse=False)),
        ("datetime-epoch-number", _datetime_case(1774249200, parse=False)),
        ("datetime-offset-only", _datetime_case(
            "2026-03-23T08:00:00.000+01:00", parse=True, check=lambda v: v.utcoffset().total_seconds() == 3600)),
        ("datetime-nanoseconds", _datetime_case(
            "2026-03-23T08:00:00.123456789+01:00[Europe/Berlin]", parse=True,
            check=lambda v: v.microsecond == 123456 and str(v.tzinfo) == "Europe/Berlin")),
        ("datetime-zulu", _datetime_case("2026-03-23T07:00:00Z", parse=True, check=lambda v: v.hour == 7)),
    ):  # fmt: skip
        for bad in make(op):
            yield name, bad


def _list_cases(op: Operation) -> Iterator[tuple[str, Bad]]:
    """The answer's list of items spoiled."""
    if op.items is None:
        return
    item = _at(op.answer, op.items)[0]
    list_field = "<body>" if op.items == () else str(op.items[-1])
    if op.items != ():
        yield "null-list", _json(_with_items(op, None), field=list_field)
    where = "" if op.items == () else str(op.items[-1])
    yield "null-item", _json(_with_items(op, [None]), field=f"{where}[0]")
    yield "number-item", _json(_with_items(op, [item, 5]), field=f"{where}[1]")
    first_key = next(iter(item))  # a required field in every item shape here
    broken = {k: v for k, v in item.items() if k != first_key}
    yield "bad-third-item", _json(_with_items(op, [item, item, broken]), field=f"{where}[2].{first_key}")
    yield "huge-page", _json(_with_items(op, [item] * HUGE), error=None, check=lambda r: _count(r) == HUGE)


def _count(result: Any) -> int:
    if _is_pages(result):
        return sum(len(page.items) for page in result)
    return len(result)


def _status_cases(op: Operation) -> Iterator[tuple[str, Bad]]:
    """Error statuses with bodies a proxy or a struggling server sends."""
    yield (
        "500-html",
        _raw(b"<html><body>Internal Server Error</body></html>", "text/html", 500, error=InternalServerError),
    )
    yield "503-garbled-retry-after", Bad(503, b"", {"Retry-After": "soon"}, error=ServiceUnavailableError)
    yield (
        "429-error-message-not-text",
        _json({"errorMessage": 5, "errorCode": ["x"]}, 429, error=RateLimitError),
    )
    yield "404-empty-body", _raw(b"", status=404, error=NotFoundError)
    yield (
        "400-truncated-error",
        _raw(b'{"errorMessage": "customerId is req', status=400, error=BadRequestError),
    )
    yield "401-error-as-list", _json([{"errorMessage": "no"}], 401, error=AuthenticationError)
    yield "418-unknown-status", _json({"errorMessage": "teapot"}, 418, error=APIStatusError)
    yield "500-deeply-nested", _raw(b"[" * 100_000 + b"]" * 100_000, status=500, error=InternalServerError)
    yield "302-redirect", Bad(302, b"", {"Location": "https://login.example/"}, error=APIStatusError)


def cases() -> list[tuple[Operation, str, Bad]]:
    """Every (operation, shape, answer): the sweep."""
    found: list[tuple[Operation, str, Bad]] = []
    for op in OPERATIONS:
        for family in (_body_cases, _field_cases, _list_cases, _status_cases):
            for name, bad in family(op):
                if name in op.lenient:
                    bad = attrs.evolve(bad, error=None, field=None, check=op.lenient_check)
                found.append((op, name, bad))
    return found


# -- the bytes of an answer, and a server for them ----------------------------------------------------

# Statuses whose answers have no body: they carry no Content-Length (RFC 9110, 8.6).
_NO_BODY = frozenset({204, 304})


class _Pieces(httpx.AsyncByteStream, httpx.SyncByteStream):
    """A body for httpx.MockTransport that arrives as a socket's would: in reads of 64 KiB at
    most (httpcore's), then what ``more`` makes. An iterator, not an async generator, so that a
    body the client leaves early (a decoding error, the cap) leaves nothing for the GC to close;
    ``more``'s generator is closed with the answer (httpx closes the stream)."""

    def __init__(self, body: bytes, more: Callable[[], AsyncGenerator[bytes, None]] | None) -> None:
        self._reads = [body[start : start + 65_536] for start in range(0, len(body), 65_536)]
        self._more = None if more is None else more()

    def __aiter__(self) -> Self:
        return self

    def __iter__(self) -> Iterator[bytes]:  # Response.read() in the harness's own test
        if self._more is not None:
            raise RuntimeError("a body that goes on is read asynchronously")
        yield from self._reads

    async def __anext__(self) -> bytes:
        if self._reads:
            return self._reads.pop(0)
        if self._more is None:
            raise StopAsyncIteration
        return await anext(self._more)

    async def aclose(self) -> None:
        if self._more is not None:
            await self._more.aclose()


@attrs.frozen
class Answer:
    """An answer as it goes on the wire: the status, the headers in order, the body bytes (and
    those ``more`` makes after them).

    Both backends get exactly these: the one framing header a server adds, Content-Length, is
    added here for both (httpx.MockTransport needs none, a socket does; the 204 gets none, nor
    a body whose headers frame it already).
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    more: Callable[[], AsyncGenerator[bytes, None]] | None = None

    @classmethod
    def of(
        cls,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        more: Callable[[], AsyncGenerator[bytes, None]] | None = None,
    ) -> Answer:
        framed = list(headers.items())
        if status in _NO_BODY or status < 200:
            if body:
                raise ValueError(f"a {status} answer has no body")
        elif not {"content-length", "transfer-encoding", "connection"} & {name.lower() for name in headers}:
            framed.append(("Content-Length", str(len(body))))
        return cls(status, tuple(framed), body, more)

    def _says(self, name: str, value: str) -> bool:
        return (name, value) in {(k.lower(), v.lower()) for k, v in self.headers}

    def to_httpx(self) -> httpx.Response:
        # ``stream=``, not ``content=``: httpx.Response(content=...) decodes its body (and adds
        # headers) when it is made, so a bad gzip body would fail in the mock, not in the client.
        # No chunk framing: a transport hands httpx the body without it.
        return httpx.Response(self.status, headers=list(self.headers), stream=_Pieces(self.body, self.more))

    def to_wire(self) -> loopback.Answer:
        if not self._says("transfer-encoding", "chunked"):
            head_and_body = loopback.response_bytes(self.status, self.headers, self.body)
            return loopback.Answer(head_and_body, close=self._says("connection", "close"), more=self.more)
        body, more = self.body, self.more

        async def framed() -> AsyncGenerator[bytes, None]:
            if body:
                yield f"{len(body):x}\r\n".encode() + body + b"\r\n"
            if more is not None:
                async with contextlib.aclosing(more()) as pieces:
                    async for piece in pieces:
                        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            yield b"0\r\n\r\n"

        return loopback.Answer(loopback.response_bytes(self.status, self.headers), more=framed)


class Exchange:
    """One case's conversation: the first request to the operation gets the malformed answer,
    every other request a valid one. ``failure``: what went wrong making an answer (a request the
    sweep has no answer for), which makes the case a bare exception on either backend."""

    def __init__(self, op: Operation, bad: Bad) -> None:
        self.op, self.bad = op, bad
        self.served = False
        self.requests = 0
        self.failure: BaseException | None = None

    def respond(self, method: str, path: str) -> Answer:
        self.requests += 1
        if not self.served and (method, path) == (self.op.method, self.op.path):
            self.served = True
            return Answer.of(self.bad.status, self.bad.headers, self.bad.content, self.bad.more)
        try:
            valid = VALID[(method, path)]
        except KeyError as exc:
            self.failure = exc
            raise
        return Answer.of(200, {"Content-Type": "application/json"}, json.dumps(valid).encode())


class LoopbackServer:
    """``async with LoopbackServer() as server``: the loopback server (benchmarks/loopback.py) on
    127.0.0.1, kept alive across cases; it answers each request from ``server.exchange`` with
    :meth:`Answer.to_wire`'s bytes and nothing else (no Date, no Server header). A request it
    cannot answer (one the sweep has no answer for, one it cannot read) gets its connection cut,
    and the failure is the case's (``exchange.failure``: a bare exception, whatever the client
    made of the cut); one that arrives between cases too, and leaving ``async with`` raises."""

    def __init__(self) -> None:
        self.exchange: Exchange | None = None
        self.base_url = ""
        self.stray: list[BaseException] = []  # failures that came between cases
        self._server = loopback.LoopbackServer(self._answer, on_error=self._failed)

    async def __aenter__(self) -> Self:
        await self._server.__aenter__()
        self.base_url = self._server.url
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._server.__aexit__(exc_type, exc, tb)
        if self.stray and exc is None:
            raise RuntimeError(f"requests arrived between cases: {self.stray}")

    def _failed(self, exc: Exception) -> None:
        exchange = self.exchange
        if exchange is None:
            self.stray.append(exc)
        elif exchange.failure is None:
            exchange.failure = exc

    async def _answer(self, request: loopback.Request) -> loopback.Answer:
        if self.exchange is None:
            raise RuntimeError(f"{request.method} {request.target} arrived between cases")
        return self.exchange.respond(request.method, urlsplit(request.target).path).to_wire()


# -- running one ------------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    kind: str  # "ok", "typed" (a PerfectGymError) or "bare" (anything else: a bug)
    value: Any = None
    error: BaseException | None = None
    requests: int = 0


async def run_case(
    op: Operation, bad: Bad, backend: str = "httpx", server: LoopbackServer | None = None
) -> Outcome:
    """Serve ``bad`` to ``op`` through a client on ``backend``: httpx through httpx.MockTransport;
    aiohttp (asyncio only) over ``server``'s loopback socket (one made for this case if none)."""
    exchange = Exchange(op, bad)
    if backend == "httpx":
        # A failure in handle() is raised in the client; Exchange records it all the same.

        def handle(request: httpx.Request) -> httpx.Response:
            return exchange.respond(request.method, request.url.path).to_httpx()

        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            return await _call(exchange, base_url=BASE, http_client=http)
    if backend != "aiohttp":
        raise ValueError(f"backend must be one of {', '.join(HTTP_BACKENDS)}, got {backend!r}")
    if server is None:
        async with LoopbackServer() as own:
            return await run_case(op, bad, backend, own)
    server.exchange = exchange
    try:
        return await _call(exchange, base_url=server.base_url, http_backend="aiohttp")
    finally:
        server.exchange = None


async def _call(exchange: Exchange, **client: Any) -> Outcome:
    backend = client.get("http_backend", "httpx")
    if exchange.bad.timeout is not None:
        client["timeout"] = exchange.bad.timeout
    try:
        async with AppointmentsClient(
            api_key=KEY,
            retry_policy=RetryPolicy(max_retries=0),
            booking_check_settle=0,  # the answers come at once: nothing is ever still in progress
            rate_limit=None,  # a 429 case would lock the endpoint for the cases after it
            **client,
        ) as appointments:
            if appointments._api.backend.name != backend:
                raise RuntimeError(
                    f"the sweep asked for {backend}, the client runs {appointments._api.backend.name}"
                )
            value = await exchange.op.call(appointments)
    except PerfectGymError as exc:
        outcome = Outcome("typed", error=exc, requests=exchange.requests)
    except Exception as exc:  # noqa: BLE001 - what the sweep exists to find
        outcome = Outcome("bare", error=exc, requests=exchange.requests)
    else:
        outcome = Outcome("ok", value=value, requests=exchange.requests)
    if exchange.failure is not None:  # the sweep's own gap, whatever the client made of the cut
        return Outcome("bare", error=exchange.failure, requests=exchange.requests)
    return outcome


def problem(op: Operation, bad: Bad, outcome: Outcome) -> str | None:
    """What is wrong with the outcome, or None when the client did its duty."""
    if outcome.kind == "bare":
        return f"bare {type(outcome.error).__name__}: {outcome.error}"
    if bad.error is None:
        if outcome.kind != "ok":
            return f"expected a tolerant parse, got {type(outcome.error).__name__}: {outcome.error}"
        try:
            right = bad.check is None or bad.check(outcome.value)
        except Exception as exc:  # noqa: BLE001 - a check that trips is a wrong parse
            right, outcome = False, attrs.evolve(outcome, error=exc)
        if not right:
            return f"parsed, but wrongly ({outcome.error!r}): {outcome.value!r}"[:500]
        return None
    if outcome.kind != "typed" or not isinstance(outcome.error, bad.error):
        got = type(outcome.error).__name__ if outcome.error else f"a value {outcome.value!r}"[:300]
        return f"expected {bad.error.__name__}, got {got}"
    error = outcome.error
    if isinstance(error, ResponseValidationError):
        if error.operation != op.name or op.name not in str(error):
            return f"error does not name the operation {op.name}: {error}"
        if bad.field is not None and (error.field != bad.field or bad.field not in str(error)):
            return f"error names field {error.field!r}, expected {bad.field!r}: {error}"
    if bad.detail is not None and bad.detail not in str(error):
        return f"error does not say {bad.detail!r}: {error}"
    return None


async def sweep(
    backends: Sequence[str] = HTTP_BACKENDS, selected: Sequence[tuple[Operation, str, Bad]] | None = None
) -> dict[str, tuple[Counter[str], list[str]]]:
    """Run every case (or the ``selected`` ones) on each backend (on asyncio: aiohttp runs on
    nothing else); per backend the counts by outcome, and a line per case the client got wrong."""
    results = {}
    for backend in backends:
        counts: Counter[str] = Counter()
        wrong = []
        # One server for the whole sweep: each case's client connects to it afresh.
        async with LoopbackServer() if backend == "aiohttp" else contextlib.nullcontext() as server:
            for op, name, bad in cases() if selected is None else selected:
                outcome = await run_case(op, bad, backend, server)
                counts[outcome.kind] += 1
                issue = problem(op, bad, outcome)
                if issue is not None:
                    wrong.append(f"{op.name} / {name}: {issue}")
        results[backend] = (counts, wrong)
    return results
