"""A small stateful fake of the appointments API for facade tests, served via httpx.MockTransport.

It is deliberately simple (the real-socket sandbox is a separate piece); scripted faults let tests
produce the shapes a real server makes only by accident: a booking committed and then the
connection dropped, 503s, repeated cursors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import inspect
import json
import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import anyio.lowlevel
import httpx
import pytest

from benchmarks import loopback
from perfectgym_appointments_client import AppointmentsClient, BookingOutcome, RetryPolicy, Slot

KEY = "fake-key-7d1e"
BERLIN = ZoneInfo("Europe/Berlin")
# Three days ahead: inside the bookings list's window (+/- 2 weeks around now), as the real API
# lists it, so the booking check can use the list. FAR_DAY lies outside it.
DAY = (dt.datetime.now(BERLIN) + dt.timedelta(days=3)).date()
FAR_DAY = DAY + dt.timedelta(days=21)
BERLIN_DAY = DAY.isoformat()


def wire(hour: int, minute: int = 0, *, day: dt.date = DAY, millis: bool = True) -> str:
    """A Berlin date-time as the API writes it, with the offset that day really has."""
    local = dt.datetime.combine(day, dt.time(hour, minute), BERLIN)
    offset = local.strftime("%z")
    fraction = ":00.000" if millis else ""
    return f"{local:%Y-%m-%dT%H:%M}{fraction}{offset[:3]}:{offset[3:]}[Europe/Berlin]"


def slot_json(hour: int, instructors: list[int] | None = None, *, day: dt.date = DAY) -> dict[str, Any]:
    return {
        "startDateTime": wire(hour, day=day),
        "endDateTime": wire(hour + 1, day=day, millis=False),
        "instructors": [{"id": i, "firstName": f"I{i}", "lastName": "X"} for i in (instructors or [])],
    }


class FakeAPI:
    def __init__(self, appointments: int = 7) -> None:
        self.appointments = [
            {"id": i, "title": f"Appointment {i}", "duration": 60} for i in range(1, appointments + 1)
        ]
        self.slots: dict[int, list[dict[str, Any]]] = {1: [slot_json(h, [7]) for h in (8, 9, 10, 11)]}
        self.validation: dict[str, str] = {}  # startDateTime -> status (default AVAILABLE)
        self.booking_status = "BOOKED"
        self.bookings: dict[int, dict[str, Any]] = {}
        self.next_booking_id = 100
        self.requests: list[httpx.Request] = []
        self.faults: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.drop_after_commit = 0  # book requests to commit and then fail with a reset
        self.in_flight = 0
        self.max_in_flight = 0
        self.page_requested: dict[str, anyio.Event] = {}
        self.repeat_cursor = False
        self.gates: dict[tuple[str, str], Gate] = {}
        self.titles: dict[int, str] = {}  # bookable appointment id -> the title its bookings show

    def gate(self, method: str, path: str) -> Gate:
        """Hold the next request to ``method path`` at the server until the test opens the gate."""
        gate = self.gates[(method, path)] = Gate()
        return gate

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": KEY,
            **backend_kwargs(self.handle),
            # Nothing is ever still in progress here: the booking check need not wait.
            "booking_check_settle": 0,
            # The fake has no rate limit, and every test's client shares one key and tenant: one
            # process-wide budget would make later tests wait for earlier ones.
            "rate_limit": None,
        }

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("X-API-KEY") != KEY:
            return httpx.Response(401, json={"errorMessage": "Unauthorized", "errorCode": "UNAUTHORIZED"})
        for fault in list(self.faults):
            try:
                response = fault(request)
            except Exception:
                self.faults.remove(fault)
                raise
            if response is not None:
                self.faults.remove(fault)
                return response
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(3):  # let concurrent requests overlap
                await anyio.lowlevel.checkpoint()
            gate = self.gates.pop((request.method, request.url.path), None)
            if gate is not None:
                gate.arrived.set()
                await gate.opened.wait()
            return self.route(request)
        finally:
            self.in_flight -= 1

    def route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "HEAD":  # the API's key check: the key alone decides (checked above)
            return httpx.Response(200)
        if path == "/v1/appointments/bookable" and method == "GET":
            return self.page(request)
        if path == "/v1/appointments/bookable/validate":
            body = json.loads(request.content)
            # As the API does: a customer already booked at that time is in another booking.
            taken = any(
                b["startDateTime"] == body["startDateTime"] for b in self.live_bookings(body["customerId"])
            )
            default = "CUSTOMER_IN_OTHER_BOOKING" if taken else "AVAILABLE"
            return httpx.Response(
                200, json={"validationStatus": self.validation.get(body["startDateTime"], default)}
            )
        if path == "/v1/appointments/booking/book":
            return self.book(json.loads(request.content))
        if path == "/v1/appointments/booking" and method == "GET":
            customer = int(request.url.params["customerId"])
            return httpx.Response(
                200, json=[self.public(b) for b in self.bookings.values() if b["customerId"] == customer]
            )
        if parts[:3] == ["v1", "appointments", "bookable"] and len(parts) == 4:
            found = [a for a in self.appointments if a["id"] == int(parts[3])]
            return httpx.Response(200, json=found[0]) if found else self.not_found()
        if parts[:3] == ["v1", "appointments", "bookable"] and parts[-1] == "slots":
            return httpx.Response(200, json=self.slots.get(int(parts[3]), []))
        if parts[:3] == ["v1", "appointments", "booking"] and len(parts) == 4:
            booking = self.bookings.get(int(parts[3]))
            if booking is None:
                return self.not_found()
            if method == "DELETE":
                booking["bookingStatus"] = "CANCELED"
                return httpx.Response(200, json={"success": f"Booking {parts[3]} was canceled."})
            return httpx.Response(200, json=booking)
        return self.not_found()

    def page(self, request: httpx.Request) -> httpx.Response:
        offset = request.url.params.get("offset", "0")
        size = int(request.url.params.get("sliceSize", "50"))
        self.page_requested.setdefault(offset, anyio.Event()).set()
        rest = [a for a in self.appointments if a["id"] > int(offset)]
        chunk = rest[:size]
        has_next = len(rest) > size
        cursor = offset if self.repeat_cursor else str(chunk[-1]["id"] if chunk else offset)
        return httpx.Response(200, json={"result": chunk, "hasNext": has_next, "offset": cursor})

    def book(self, body: dict[str, Any]) -> httpx.Response:
        booking_id = self.next_booking_id
        self.next_booking_id += 1
        self.bookings[booking_id] = {
            "bookingId": booking_id,
            "customerId": body["customerId"],
            "bookingStatus": self.booking_status,
            "startDateTime": body["startDateTime"],
            "endDateTime": body["endDateTime"],
            "title": self.titles.get(
                body["bookableAppointmentId"], f"Appointment {body['bookableAppointmentId']}"
            ),
            "appointmentStatus": "PLANNED",
            "participantStatus": "UNSET",
            "instructors": [],
        }
        if self.drop_after_commit:
            self.drop_after_commit -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json=self.public(self.bookings[booking_id]))

    def live_bookings(self, customer_id: int) -> list[dict[str, Any]]:
        return [
            b
            for b in self.bookings.values()
            if b["customerId"] == customer_id and b["bookingStatus"] != "CANCELED"
        ]

    @staticmethod
    def public(booking: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in booking.items() if k != "customerId"}

    @staticmethod
    def not_found() -> httpx.Response:
        return httpx.Response(
            404, json={"errorMessage": "not found", "errorCode": "NOT_FOUND", "traceId": "t-404"}
        )


# -- the HTTP backend under test ---------------------------------------------------------------------
# tests/conftest.py's ``http_backend`` fixture sets this for the test running now.
BACKEND = {"name": "httpx"}
_SERVERS: list[Callable[[], Awaitable[None]]] = []


def backend_kwargs(handler: Callable[[httpx.Request], Any]) -> dict[str, Any]:
    """How a client of the backend under test reaches ``handler``: through httpx.MockTransport for
    httpx, over a real loopback socket (an aiohttp server in this loop) for aiohttp."""
    if BACKEND["name"] == "aiohttp":
        return {"base_url": serve_on_loopback(handler), "http_backend": "aiohttp"}
    return {
        "base_url": "https://tenant.example",
        "http_client": httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    }


def serve_on_loopback(handler: Callable[[httpx.Request], Any]) -> str:
    """Serve an httpx-style handler at ``http://127.0.0.1:PORT`` (benchmarks/loopback.py, in this
    asyncio loop) until the test ends. A handler that raises an httpx transport error drops the
    connection without an answer; one that raises anything else answers 500."""
    import asyncio

    async def answer(request: loopback.Request) -> loopback.Answer:
        outgoing = httpx.Request(
            request.method,
            f"http://{request.headers['host']}{request.target}",
            headers=list(request.headers.items()),
            content=request.body,
        )
        try:
            result = handler(outgoing)
            response = await result if inspect.isawaitable(result) else result
        except httpx.TransportError:
            return loopback.CUT
        except Exception:  # noqa: BLE001 - a fault of the fake, answered as a server would
            return loopback.reply(500, b"500 Internal Server Error")
        await response.aread()
        skip = {"content-length", "transfer-encoding", "content-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
        headers.append(("Content-Length", str(len(response.content))))
        body = b"" if request.method == "HEAD" else response.content
        return loopback.Answer(loopback.response_bytes(response.status_code, headers, body))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    stopping = asyncio.Event()

    async def run() -> None:
        async with loopback.LoopbackServer(answer, sock=sock):
            await stopping.wait()

    running = asyncio.get_running_loop().create_task(run())

    async def stop() -> None:
        stopping.set()
        await running

    _SERVERS.append(stop)
    return f"http://127.0.0.1:{port}"


async def stop_servers() -> None:
    while _SERVERS:
        await _SERVERS.pop()()


class Gate:
    """A request held at the server: ``arrived`` is set when it gets there, ``opened`` lets it go."""

    def __init__(self) -> None:
        self.arrived = anyio.Event()
        self.opened = anyio.Event()


def status_once(
    status: int, method: str, path: str, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response | None]:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == method and request.url.path == path:
            return httpx.Response(
                status, json={"errorMessage": f"fault {status}", "errorCode": "FAULT"}, headers=headers
            )
        return None

    return fault


def raise_once(exc: Exception, method: str, path: str) -> Callable[[httpx.Request], httpx.Response | None]:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == method and request.url.path == path:
            raise exc
        return None

    return fault


# -- what the booking tests share ----------------------------------------------------------------------

BOOK = "/v1/appointments/booking/book"
BOOKINGS = "/v1/appointments/booking"
VALIDATE = "/v1/appointments/bookable/validate"

# For a test in a module whose tests run on both HTTP backends (its ``pytestmark`` uses the
# ``http_backend`` fixture) that runs on httpx alone: the fixture's one value, given directly, so
# that the fixture itself (async) is not set up and a sync test can carry the mark too.
httpx_alone = pytest.mark.parametrize("http_backend", ["httpx"])


async def no_sleep(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


def make(api: FakeAPI, outcomes: list[BookingOutcome] | None = None, **kwargs: Any) -> AppointmentsClient:
    """A client of ``api`` that retries at once (``max_retries``, 2 unless given); with
    ``outcomes``, its booking-outcome hook appends each outcome to it."""
    policy = RetryPolicy(max_retries=kwargs.pop("max_retries", 2), sleep=no_sleep)
    hook = outcomes.append if outcomes is not None else None
    return AppointmentsClient(**api.client_kwargs(), retry_policy=policy, on_booking_outcome=hook, **kwargs)


async def first_slot(client: AppointmentsClient) -> Slot:
    return (await client.get_slots(1))[0]


def answer_once(method: str, path: str, status: int, body: dict[str, Any]) -> Any:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == method and request.url.path == path:
            return httpx.Response(status, json=body)
        return None

    return fault


def refusal(error_code: str, status: str) -> dict[str, Any]:
    """A 400's body refusing a booking: the status is the ENUM among its typedArgs."""
    return {
        "errorMessage": "The slot cannot be booked",
        "errorCode": error_code,
        "typedArgs": [{"value": "startDateTime", "type": "STRING"}, {"value": status, "type": "ENUM"}],
    }


def answer_200(api: FakeAPI, method: str, *, carried_out: bool = True, **response: Any) -> Any:
    """Every ``method`` request to a booking is carried out (unless ``carried_out`` is False), then
    answered 200 with ``response`` (httpx.Response's ``json=``, ``content=``, ``headers=``)."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != method or not request.url.path.startswith(BOOKINGS):
            return None
        if carried_out:
            api.route(request)
        return httpx.Response(200, **response)

    return fault


def commit_then_garble(api: FakeAPI, method: str) -> Any:
    """The server carries the request out, then answers 200 with a body nobody can read."""
    return answer_200(api, method, content=b"<html>proxy error</html>", headers={"Content-Type": "text/html"})


def mock_client(handler: Any, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client whose every request ``handler`` answers (httpx.MockTransport)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)


def one_appointment(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": 1, "title": "Yoga"})


@contextlib.asynccontextmanager
async def httpx_abandons_its_body_generators() -> AsyncIterator[None]:
    """httpx reads a body through a chain of async generators (``Response.aiter_raw``,
    ``BoundAsyncStream.__aiter__``, httpcore's streams over a socket) and leaves them unexhausted
    when its decoder fails (``DecodingError``) or an answer is left unfinished (over the cap); trio warns when the garbage collector finds one
    (ResourceWarning), then closes it in a task of its own, which frees the next one down the
    chain. httpx's, not the client's: encode/httpx#3686 (open fix: #3777). Here those warnings are
    recorded, not raised, and the chain is collected to its end before the block is left."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.filterwarnings("always", r"Async generator 'http(x|core)\._", ResourceWarning)
        yield
        while True:
            before = len(seen)
            gc.collect()
            await anyio.wait_all_tasks_blocked()  # trio's closing tasks have run
            if len(seen) == before:
                break
