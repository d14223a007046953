"""Both HTTP backends (httpx, aiohttp) against real failure shapes over real loopback sockets.

The loopback server (benchmarks/loopback.py: anyio, so it runs under asyncio and trio) answers each
request as a test scripts it: an answer, a dropped connection, no answer at all, a truncated body. Each test
checks that the client maps what happens to the same typed error on both backends, that booking
and cancel requests are never repeated blindly, that the request on the wire is the same, and
that the API key shows up nowhere in what an error carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from fakeapi import BERLIN, DAY, wire

from benchmarks.loopback import CUT, Answer, Handler, LoopbackServer, Request, always, reply
from perfectgym_appointments_client import (
    APIConnectionError,
    APITimeoutError,
    AppointmentsClient,
    ConfigurationError,
    NotFoundError,
    PerfectGymError,
    ResponseValidationError,
    RetryPolicy,
    ServiceUnavailableError,
)
from perfectgym_appointments_client._booking._cancel import CANCELED
from perfectgym_appointments_client._http import HTTPResponse

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
KEY = "backend-secret-9f3c2e71"
CUSTOMER = 918273
BOOKING_ID = 4711
APPOINTMENT = {"id": 1, "title": "Appointment 1", "duration": 60}
BOOK_PATH = "/v1/appointments/booking/book"
BOOKING_PATH = f"/v1/appointments/booking/{BOOKING_ID}"
# A slot three days ahead: inside the bookings list's window, so the booking check reads the list.
SLOT = SimpleNamespace(
    start_date_time=dt.datetime.combine(DAY, dt.time(10), BERLIN),
    end_date_time=dt.datetime.combine(DAY, dt.time(11), BERLIN),
)
NO_WAIT = RetryPolicy(max_retries=0, backoff_base=0)
ONE_RETRY = RetryPolicy(max_retries=1, backoff_base=0)
TWO_RETRIES = RetryPolicy(max_retries=2, backoff_base=0)


# -- the server's side ------------------------------------------------------------------------------


async def hang(seen: Request) -> Answer:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def client_for(url: str, http_backend: str, **kwargs: Any) -> AppointmentsClient:
    kwargs.setdefault("retry_policy", NO_WAIT)
    return AppointmentsClient(
        api_key=KEY,
        base_url=url,
        http_backend=http_backend,
        rate_limit=None,
        booking_check_settle=0,
        **kwargs,
    )


def refused_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def booking_json(status: str = "BOOKED", *, customer: bool = False) -> dict[str, Any]:
    booking: dict[str, Any] = {
        "bookingId": BOOKING_ID,
        "bookingStatus": status,
        "startDateTime": wire(10),
        "endDateTime": wire(11, millis=False),
        "title": "Appointment 1",
        "appointmentStatus": "PLANNED",
        "participantStatus": "UNSET",
        "instructors": [],
    }
    if customer:
        booking["customerId"] = CUSTOMER
    return booking


def assert_key_nowhere(exc: BaseException) -> None:
    """The key is in no text an error gives: its str/repr, its traceback (also with each frame's
    locals, as Sentry records it), its response, the chain, their attributes."""
    texts = [
        str(exc),
        repr(exc),
        "".join(traceback.format_exception(exc)),
        "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format()),
    ]
    response = getattr(exc, "response", None)
    if response is not None:
        texts += [repr(response), repr(response.headers), repr(list(response.headers.items())), response.text]
    current: BaseException | None = exc
    for _ in range(20):
        if current is None:
            break
        texts += [repr(current), str(current), repr(current.args), repr(getattr(current, "__dict__", {}))]
        for value in getattr(current, "__dict__", {}).values():  # one level into what it holds
            texts += [repr(value), repr(getattr(value, "__dict__", None))]
        with contextlib.suppress(RuntimeError, AttributeError):  # httpx: .request unset raises
            request = current.request  # type: ignore[attr-defined]
            texts.append(repr(list(request.headers.items())))
        request_info = getattr(current, "request_info", None)  # aiohttp
        if request_info is not None:
            texts.append(repr(list(request_info.headers.items())))
        current = current.__cause__ or current.__context__
    for text in texts:
        assert KEY not in text


# -- failure shapes ---------------------------------------------------------------------------------


async def test_connection_refused_never_reached_the_server(http_backend: str) -> None:
    port = refused_port()
    async with client_for(f"http://127.0.0.1:{port}", http_backend) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.get_slots(1, customer_id=CUSTOMER, days_ahead=2)
    exc = caught.value
    assert type(exc) is APIConnectionError
    assert exc.may_have_reached_server is False
    assert exc.host == f"http://127.0.0.1:{port}"
    assert exc.operation == "getBookableAppointmentSlots"
    message = str(exc)
    assert message.startswith("getBookableAppointmentSlots (GET http://127.0.0.1:")
    assert f"http://127.0.0.1:{port}/v1/appointments/bookable/1/slots" in message
    assert "?" not in message
    assert str(CUSTOMER) not in message
    assert "customerId" not in message
    assert_key_nowhere(exc)


async def test_refused_read_names_its_operation(http_backend: str) -> None:
    async with client_for(f"http://127.0.0.1:{refused_port()}", http_backend) as client:
        with pytest.raises(APIConnectionError, match=r"^getBookableAppointment \(GET ") as caught:
            await client.get_bookable_appointment(1)
    assert caught.value.may_have_reached_server is False


async def test_dropped_read_is_retried_and_reached_the_server(http_backend: str) -> None:
    async with LoopbackServer(always(CUT)) as server:
        async with client_for(server.url, http_backend, retry_policy=ONE_RETRY) as client:
            with pytest.raises(APIConnectionError) as caught:
                await client.get_bookable_appointment(1)
        # One attempt and one retry; no hidden repeat by the HTTP library on top.
        assert server.count("GET", "/v1/appointments/bookable/1") == 2
        assert len(server.requests) == 2
    exc = caught.value
    assert type(exc) is APIConnectionError
    assert exc.may_have_reached_server is True
    assert exc.host == server.url
    assert_key_nowhere(exc)


async def test_dropped_booking_request_is_checked_not_repeated(http_backend: str) -> None:
    """The server commits the booking, then drops the connection: the check finds it in the list."""
    committed: list[Request] = []

    async def handler(seen: Request) -> Answer:
        if seen.method == "POST" and seen.path == "/v1/appointments/bookable/validate":
            return reply(200, {"validationStatus": "AVAILABLE"})
        if seen.method == "POST" and seen.path == BOOK_PATH:
            committed.append(seen)
            return CUT
        if seen.method == "GET" and seen.path == "/v1/appointments/booking":
            assert seen.query == f"customerId={CUSTOMER}"
            return reply(200, [booking_json()] if committed else [])
        return reply(404, {"errorMessage": "not found"})

    async with LoopbackServer(handler) as server:
        async with client_for(server.url, http_backend, retry_policy=TWO_RETRIES) as client:
            booking = await client.book(customer_id=CUSTOMER, bookable_appointment_id=1, slot=SLOT)
        assert server.count("POST", BOOK_PATH) == 1
        assert server.count("GET", "/v1/appointments/booking") == 1  # the check read the list
    assert booking.booking_id == BOOKING_ID
    assert booking.customer_id == CUSTOMER


async def test_read_timeout_may_have_reached_the_server(http_backend: str) -> None:
    async with LoopbackServer(hang) as server:
        async with client_for(server.url, http_backend, timeout=0.3) as client:
            with pytest.raises(APITimeoutError) as caught:
                await client.get_bookable_appointment(1)
        assert server.count("GET") == 1
    exc = caught.value
    assert exc.may_have_reached_server is True
    assert exc.operation == "getBookableAppointment"
    assert " timed out: " in str(exc)
    assert_key_nowhere(exc)


def _idle_protocols(client: AppointmentsClient) -> list[Any]:
    """The kept-alive connections' protocols of an aiohttp client (aiohttp's pool: key -> deque
    of (protocol, released at))."""
    connector = client._api.backend._session.connector  # type: ignore[attr-defined]
    return [protocol for queue in connector._conns.values() for protocol, _ in queue]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp runs on asyncio only
async def test_aiohttps_read_timer_left_armed_after_an_answer_times_nothing_out() -> None:
    """On aiohttp the read timeout (sock_read) is one timer per connection that each chunk only
    moves on (_aiohttp_backend._ReadTimer): after an answer it stays armed with nothing to time
    out. Fired then, it leaves the kept-alive connection alone, and the next call reuses it; once
    the connection closes, its timer is cancelled."""
    async with LoopbackServer(always(reply(200, APPOINTMENT))) as server:
        async with client_for(server.url, "aiohttp", timeout=5) as client:
            assert (await client.get_bookable_appointment(1)).id == 1
            [protocol] = _idle_protocols(client)
            assert type(protocol).__name__ == "_ReadTimer"  # this aiohttp has what it overrides
            assert protocol._read_deadline is None  # the answer was read whole
            armed = protocol._read_timeout_handle
            assert armed is not None
            assert not armed.cancelled()  # not cancelled at the answer's end: it would fire later
            armed.cancel()
            protocol._read_timer_fired()  # as the loop would have, 5 s on
            assert protocol.is_connected()
            assert (await client.get_bookable_appointment(1)).id == 1
            assert _idle_protocols(client) == [protocol]
            assert protocol._read_timeout_handle is not None  # armed again for that answer
        assert server.count("GET") == 2
    assert protocol._read_timeout_handle is None  # closed with the client: no timer outlives it


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp runs on asyncio only
async def test_aiohttps_read_timer_still_ends_a_stalled_answer_after_one_that_ended() -> None:
    """The timer armed for a first answer, moved on by the second answer's start, times out that
    second answer when it stalls (the server holds it): the deadline is the stall's own."""
    release = anyio.Event()
    answered = 0

    async def handler(seen: Request) -> Answer:
        nonlocal answered
        answered += 1
        if answered > 1:
            await release.wait()
        return reply(200, APPOINTMENT)

    async with (
        LoopbackServer(handler) as server,
        client_for(server.url, "aiohttp", timeout=0.3) as client,
    ):
        assert (await client.get_bookable_appointment(1)).id == 1
        with pytest.raises(APITimeoutError) as caught:
            await client.get_bookable_appointment(1)
        release.set()
    assert caught.value.may_have_reached_server is True
    # The read timeout's own error (aiohttp's), not the attempt's bound (1.5 s here).
    assert "timed out: SocketTimeoutError: Timeout on reading data from socket" in str(caught.value)


# A client of one connection waits this long for it, while the server holds a request on it.
POOL_TIMEOUT = httpx.Timeout(connect=5, read=10, write=5, pool=0.3)


def held_until(release: anyio.Event) -> Handler:
    """Each request is answered (the appointment) once ``release`` is set."""

    async def handler(seen: Request) -> Answer:
        await release.wait()
        return reply(200, APPOINTMENT)

    return handler


async def test_pool_timeout_never_reached_the_server(http_backend: str) -> None:
    """One connection, held at the server: a second call waits for it, then gives up unsent."""
    release = anyio.Event()
    first: list[Any] = []
    async with LoopbackServer(held_until(release)) as server:
        async with (
            client_for(server.url, http_backend, timeout=POOL_TIMEOUT, max_connections=1) as client,
            anyio.create_task_group() as tg,
        ):

            async def hold() -> None:
                first.append(await client.get_bookable_appointment(1))

            tg.start_soon(hold)
            await server.arrived.wait()
            try:
                with pytest.raises(APITimeoutError) as caught:
                    await client.get_slots(2, customer_id=CUSTOMER)
            finally:
                release.set()
        assert [r.path for r in server.requests] == ["/v1/appointments/bookable/1"]
    assert first[0].id == 1
    exc = caught.value
    assert exc.may_have_reached_server is False
    assert exc.operation == "getBookableAppointmentSlots"
    assert exc.host == server.url
    assert_key_nowhere(exc)


async def test_pool_timeout_message_has_no_query_string(http_backend: str) -> None:
    """As for every connection error, the query (customer ids) stays out of the message."""
    release = anyio.Event()
    async with (
        LoopbackServer(held_until(release)) as server,
        client_for(server.url, http_backend, timeout=POOL_TIMEOUT, max_connections=1) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get_bookable_appointment, 1)
        await server.arrived.wait()
        try:
            with pytest.raises(APITimeoutError) as caught:
                await client.get_slots(2, customer_id=CUSTOMER)
        finally:
            release.set()
    message = str(caught.value)
    assert str(CUSTOMER) not in message, message
    assert "customerId" not in message


async def test_truncated_body_is_a_connection_error(http_backend: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    truncated = always(Answer(head + b'{"id": 1, "title"', close=True))
    async with LoopbackServer(truncated) as server, client_for(server.url, http_backend) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.get_bookable_appointment(1)
    exc = caught.value
    assert type(exc) is APIConnectionError  # not a timeout
    assert not isinstance(exc, ResponseValidationError)
    assert exc.may_have_reached_server is True
    assert_key_nowhere(exc)


# -- status errors and the key -------------------------------------------------------------------


async def test_status_error_carries_the_response_not_the_key(http_backend: str) -> None:
    body = {"errorMessage": "database busy", "errorCode": "DB_LOAD", "traceId": "t-503"}
    answer = reply(503, body, reason="Service Unavailable", headers={"Retry-After": "7", "X-Echo": "plain"})
    async with LoopbackServer(always(answer)) as server:
        async with client_for(server.url, http_backend) as client:
            with pytest.raises(ServiceUnavailableError) as caught:
                await client.get_bookable_appointment(1)
        assert server.requests[0].headers["x-api-key"] == KEY  # it was sent, and is shown nowhere
    exc = caught.value
    response = exc.response
    assert isinstance(response, HTTPResponse)
    assert response.status_code == 503
    assert response.reason_phrase == "Service Unavailable"
    assert response.headers.get("retry-after") == "7"
    assert response.headers.get("RETRY-AFTER") == "7"
    assert response.headers["x-echo"] == "plain"
    assert response.json() == body
    assert json.loads(response.content) == body
    assert exc.retry_after == 7.0
    assert exc.error_code == "DB_LOAD"
    assert exc.trace_id == "t-503"
    assert_key_nowhere(exc)


async def test_html_status_error_carries_the_body(http_backend: str) -> None:
    page = b"<html><body><h1>Not here</h1></body></html>"
    not_found = always(reply(404, page, reason="Not Found", headers={"Content-Type": "text/html"}))
    async with LoopbackServer(not_found) as server, client_for(server.url, http_backend) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get_bookable_appointment(1)
    exc = caught.value
    assert isinstance(exc.response, HTTPResponse)
    assert exc.response.content == page
    assert exc.response.headers.get("content-type") == "text/html"
    assert exc.error_message == "Not here"
    assert_key_nowhere(exc)


async def test_sent_request_failure_shows_no_key(http_backend: str) -> None:
    """A failure after the request was written (its headers, key included, were built)."""
    async with LoopbackServer(always(CUT)) as server, client_for(server.url, http_backend) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.validate_slot(customer_id=CUSTOMER, bookable_appointment_id=1, slot=SLOT)
    assert caught.value.__cause__ is not None or caught.value.__context__ is not None
    assert_key_nowhere(caught.value)


# -- the request on the wire ----------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_request_on_the_wire_is_the_same_on_both_backends() -> None:
    async def handler(seen: Request) -> Answer:
        if seen.path == "/v1/appointments/bookable/1/slots":
            return reply(200, [])
        if seen.path == BOOK_PATH:
            return reply(200, booking_json())
        return reply(404, {"errorMessage": "not found"})

    compared = ("host", "x-api-key", "user-agent", "content-type", "accept-language", "content-length")
    wire_by_backend: dict[str, list[tuple[Any, ...]]] = {}
    async with LoopbackServer(handler) as server:
        for backend in ("httpx", "aiohttp"):
            start = len(server.requests)
            async with client_for(server.url, backend, accept_language="de") as client:
                await client.get_slots(1, customer_id=CUSTOMER, days_ahead=3, start_date=DAY)
                booking = await client.book(
                    customer_id=CUSTOMER,
                    bookable_appointment_id=1,
                    slot=SLOT,
                    validate=False,
                    instructor_ids=[7],
                )
            assert booking.booking_id == BOOKING_ID
            wire_by_backend[backend] = [
                (
                    r.method,
                    r.target,
                    {name: r.headers.get(name) for name in compared},
                    json.loads(r.body) if r.body else None,
                )
                for r in server.requests[start:]
            ]
    httpx_wire, aiohttp_wire = wire_by_backend["httpx"], wire_by_backend["aiohttp"]
    assert httpx_wire == aiohttp_wire
    (get_method, get_target, get_headers, get_body), (post_method, post_target, post_headers, post_body) = (
        httpx_wire
    )
    assert (get_method, get_target, get_body) == (
        "GET",
        f"/v1/appointments/bookable/1/slots?customerId={CUSTOMER}&daysAhead=3&slotWindowStartDate={DAY.isoformat()}",
        None,
    )
    assert (post_method, post_target) == ("POST", BOOK_PATH)
    for headers in (get_headers, post_headers):
        assert headers["x-api-key"] == KEY
        assert headers["user-agent"].startswith("perfectgym-appointments-client/")
        assert headers["accept-language"] == "de"
    assert get_headers["content-length"] in (None, "0")
    assert post_headers["content-type"] == "application/json"
    assert post_body["customerId"] == CUSTOMER
    assert post_body["bookableAppointmentId"] == 1
    assert post_body["instructorIds"] == [7]
    assert post_body["startDateTime"] == wire(10)
    assert post_body["endDateTime"] == wire(11)
    assert post_headers["content-length"] == str(len(json.dumps(post_body, ensure_ascii=False).encode()))


# -- construction and configuration ---------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_aiohttp_under_trio_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AppointmentsClient(
            api_key=KEY, base_url="http://127.0.0.1:9", http_backend="aiohttp", rate_limit=None
        )
    message = str(caught.value)
    assert "asyncio" in message
    assert "\n" not in message


def test_aiohttp_made_outside_a_loop_works_in_asyncio_later() -> None:
    sock = socket.socket()  # bound first: the client is made before any loop (or server) runs
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        client = client_for(f"http://127.0.0.1:{port}", "aiohttp")
    except BaseException:
        sock.close()
        raise
    assert client._api.backend._session is None  # type: ignore[attr-defined]

    async def main() -> tuple[Any, int]:
        async with LoopbackServer(always(reply(200, APPOINTMENT)), sock=sock) as server:
            try:
                appointment = await client.get_bookable_appointment(1)
            finally:
                await client.aclose()
            return appointment, server.count("GET", "/v1/appointments/bookable/1")

    appointment, requests = asyncio.run(main())
    assert appointment.id == 1
    assert appointment.title == "Appointment 1"
    assert requests == 1


def test_unknown_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"http_backend must be one of httpx, aiohttp, got 'curl'"):
        AppointmentsClient(api_key=KEY, base_url="http://127.0.0.1:9", http_backend="curl", rate_limit=None)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_http_client_of_the_other_library_is_a_configuration_error() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match=r"httpx\.AsyncClient.*got ClientSession"):
            AppointmentsClient(
                api_key=KEY, base_url="http://127.0.0.1:9", http_client=session, rate_limit=None
            )
    async with httpx.AsyncClient() as http_client:
        with pytest.raises(ConfigurationError, match=r"aiohttp\.ClientSession.*got AsyncClient"):
            AppointmentsClient(
                api_key=KEY,
                base_url="http://127.0.0.1:9",
                http_client=http_client,
                http_backend="aiohttp",
                rate_limit=None,
            )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_users_aiohttp_session_is_used_and_not_closed() -> None:
    import aiohttp

    async with LoopbackServer(always(reply(200, APPOINTMENT))) as server:
        async with aiohttp.ClientSession(headers={"X-Session": "mine"}) as session:
            client = AppointmentsClient(
                api_key=KEY, base_url=server.url, http_client=session, http_backend="aiohttp", rate_limit=None
            )
            assert (await client.get_bookable_appointment(1)).id == 1
            await client.aclose()
            assert not session.closed
            assert (await client.get_bookable_appointment(1)).id == 1  # still usable
            assert client._api.backend._session is session  # type: ignore[attr-defined]
        assert [r.headers.get("x-session") for r in server.requests] == ["mine", "mine"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_own_aiohttp_session_is_closed_by_aclose() -> None:
    async with LoopbackServer(always(reply(200, APPOINTMENT))) as server:
        client = client_for(server.url, "aiohttp")
        assert (await client.get_bookable_appointment(1)).id == 1
        session = client._api.backend._session  # type: ignore[attr-defined]
        assert session is not None
        assert not session.closed
        await client.aclose()
        assert session.closed
        assert client._api.backend._session is None  # type: ignore[attr-defined]
        await client.aclose()  # twice is fine


def test_without_aiohttp_httpx_works_and_aiohttp_is_a_configuration_error() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["aiohttp"] = None  # import aiohttp now raises ImportError

        import asyncio

        import perfectgym_appointments_client as pg
        from benchmarks.loopback import LoopbackServer, always, reply

        async def main():
            answer = reply(200, {"id": 1, "title": "Appointment 1", "duration": 60})
            async with (
                LoopbackServer(always(answer)) as server,
                pg.AppointmentsClient(api_key="k", base_url=server.url, rate_limit=None) as client,
            ):
                return server.url, (await client.get_bookable_appointment(1)).title

        url, title = asyncio.run(main())
        print("httpx:", title)
        for attempt in (1, 2):
            try:
                pg.AppointmentsClient(api_key="k", base_url=url, http_backend="aiohttp", rate_limit=None)
            except pg.ConfigurationError as exc:
                print("aiohttp:", exc)
            else:
                print("aiohttp: no error")
        """
    )
    result = subprocess.run(  # from the repository's root: the script imports benchmarks.loopback
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "httpx: Appointment 1"
    assert len(lines) == 3
    for line in lines[1:]:
        assert line.startswith("aiohttp: ")
        assert "[aiohttp]" in line
        assert "no error" not in line


# -- cancel is not repeated by the HTTP library -----------------------------------------------------


def cancel_server() -> tuple[Handler, list[str]]:
    """DELETE commits the cancel and drops the connection; GET reads the booking back."""
    state = {"status": "BOOKED"}
    log: list[str] = []

    async def handler(seen: Request) -> Answer:
        log.append(f"{seen.method} {seen.target}")
        if seen.path != BOOKING_PATH:
            return reply(404, {"errorMessage": "not found"})
        if seen.method == "DELETE":
            if state["status"] == "CANCELED":
                return reply(400, {"errorMessage": "already canceled", "errorCode": "ALREADY_CANCELED"})
            state["status"] = "CANCELED"
            return CUT
        return reply(200, booking_json(state["status"], customer=True))

    return handler, log


async def test_dropped_cancel_is_read_back_not_repeated(http_backend: str) -> None:
    handler, log = cancel_server()
    async with (
        LoopbackServer(handler) as server,
        client_for(server.url, http_backend, retry_policy=TWO_RETRIES) as client,
    ):
        # A kept-alive connection first: the DELETE goes over a reused connection.
        assert (await client.get_booking(BOOKING_ID)).booking_status == "BOOKED"
        message = await client.cancel_booking(BOOKING_ID)
    assert message == CANCELED  # read back canceled: the constant, the answer was lost
    assert log == [f"GET {BOOKING_PATH}", f"DELETE {BOOKING_PATH}", f"GET {BOOKING_PATH}"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_dropped_cancel_through_a_users_aiohttp_session_is_not_repeated() -> None:
    import aiohttp

    handler, log = cancel_server()
    async with LoopbackServer(handler) as server, aiohttp.ClientSession() as session:
        client = AppointmentsClient(
            api_key=KEY,
            base_url=server.url,
            http_client=session,
            http_backend="aiohttp",
            rate_limit=None,
            booking_check_settle=0,
            retry_policy=TWO_RETRIES,
        )
        try:
            outcome: object = await client.cancel_booking(BOOKING_ID)
        except PerfectGymError as exc:  # the repeat's "already canceled"
            outcome = exc
        finally:
            await client.aclose()
    assert log == [f"DELETE {BOOKING_PATH}", f"GET {BOOKING_PATH}"], outcome
    assert outcome == CANCELED


def test_a_protocol_errors_description_drops_aiohttps_own_code() -> None:
    """aiohttp prints its protocol errors as "400, message:\\n  <why>": 400 is aiohttp's code, not
    the answer's status, and the message goes on one line."""
    import aiohttp
    from aiohttp.http_exceptions import ContentEncodingError

    from perfectgym_appointments_client._http import describe

    cause = ContentEncodingError("Can not decode content-encoding: gzip")
    assert describe(aiohttp.ClientPayloadError(str(cause))) == (
        "ClientPayloadError: Can not decode content-encoding: gzip"
    )
    assert describe(cause) == "ContentEncodingError: Can not decode content-encoding: gzip"


@pytest.mark.parametrize("bypassed", [False, True], ids=["through the proxy", "NO_PROXY"])
async def test_the_environments_proxy_is_used_as_httpx_uses_it(
    http_backend: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY and NO_PROXY count on both backends (aiohttp's are read once, not per request).
    The tenant's host does not resolve: only a proxy can answer for it."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with LoopbackServer(always(reply(200, APPOINTMENT))) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "tenant.invalid" if bypassed else "")
        async with client_for("http://tenant.invalid", http_backend, retry_policy=NO_WAIT) as client:
            if bypassed:
                with pytest.raises(APIConnectionError) as info:
                    await client.get_bookable_appointment(1)
                assert info.value.may_have_reached_server is False
                assert proxy.requests == []
            else:
                appointment = await client.get_bookable_appointment(1)
                assert appointment.id == 1
                assert [r.target for r in proxy.requests] == [
                    "http://tenant.invalid/v1/appointments/bookable/1"
                ]


# -- the key in connection errors' chains and tracebacks --------------------------------------------


@contextlib.asynccontextmanager
async def failing_url(shape: str) -> Any:
    """A URL where a call fails as ``shape`` says: refused, reset (the request read, the
    connection cut), timeout (the request read, no answer), tls (a certificate nobody trusts)."""
    if shape == "refused":
        yield f"http://127.0.0.1:{refused_port()}"
        return
    ssl_context = None
    if shape == "tls":
        import ssl

        import trustme

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(ssl_context)
    async with LoopbackServer(hang if shape == "timeout" else always(CUT), ssl_context=ssl_context) as server:
        yield server.url


@pytest.mark.parametrize("shape", ["refused", "reset", "timeout", "tls"])
async def test_a_connection_errors_chain_and_locals_hold_no_key(http_backend: str, shape: str) -> None:
    """aiohttp's frames hold the request's headers (its CIMultiDict, key included) and its
    exceptions their request_info: nothing of aiohttp's is chained. httpx's request is masked."""
    async with failing_url(shape) as url, client_for(url, http_backend, timeout=0.3) as client:
        with pytest.raises(APIConnectionError) as read:
            await client.get_bookable_appointment(1)
        with pytest.raises(APIConnectionError) as posted:
            await client.validate_slot(customer_id=CUSTOMER, bookable_appointment_id=1, slot=SLOT)
    for exc in (read.value, posted.value):
        assert isinstance(exc, APITimeoutError) is (shape == "timeout")
        assert_key_nowhere(exc)
        if http_backend == "aiohttp":
            chain: list[BaseException] = []
            current: BaseException | None = exc
            while current is not None:
                chain.append(current)
                current = current.__cause__ or current.__context__
            assert not any(type(e).__module__.startswith("aiohttp") for e in chain), chain


# -- compressed answers -------------------------------------------------------------------------------


def compressed(body: bytes, encoding: str) -> bytes:
    import gzip
    import zlib

    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":  # as RFC 9110 means it: zlib's format
        return zlib.compress(body)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as some servers send it
    return compressor.compress(body) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("size", ["small", "several MiB"])
async def test_compressed_answers_are_read_whole(http_backend: str, encoding: str, size: str) -> None:
    """httpx's answers are decoded here a MiB at a time (_httpx_backend.py), aiohttp's by aiohttp:
    the same appointment either way, also from a body that unpacks to many pieces."""
    appointment = {**APPOINTMENT, "title": "x" * (5_000_000 if size == "several MiB" else 10)}
    body = json.dumps(appointment).encode()
    wire_encoding = "deflate" if encoding == "raw-deflate" else encoding
    answer = reply(200, compressed(body, encoding), headers={"Content-Encoding": wire_encoding})
    async with LoopbackServer(always(answer)) as server, client_for(server.url, http_backend) as client:
        got = await client.get_bookable_appointment(1)
    assert got.title == appointment["title"]
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"
