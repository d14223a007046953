"""A hostile (or broken) server cannot make a call hold unbounded memory, run unbounded time,
take the API key elsewhere, or retry what cannot heal; on both backends, over real sockets.

The shapes (benchmarks/hostile.py, served by benchmarks/loopback.py) are small here, a few times
the cap; ``python -m benchmarks.hostile`` measures them full size (a 4 GiB gzip bomb, 500 MiB
bodies, a byte a second) for memory and time. Here each call must end in its typed error; the
``fail_after`` is a guard against a hang, not a measurement.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import trustme
from fakeapi import httpx_abandons_its_body_generators

from benchmarks.hostile import (
    endless_chunked,
    gzip_bomb,
    gzip_bomb_bytes,
    huge_body,
    trickle_body,
    trickle_head,
)
from benchmarks.loopback import Answer, Handler, LoopbackServer, Request, always, reply
from perfectgym_appointments_client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AppointmentsClient,
    ConfigurationError,
    ResponseValidationError,
    RetryPolicy,
)
from perfectgym_appointments_client._constants import DEFAULT_MAX_RESPONSE_BYTES
from perfectgym_appointments_client._generated.api.appointments import get_bookable_appointment
from perfectgym_appointments_client._http import Timeouts
from perfectgym_appointments_client._request import Requester, Secret

pytestmark = pytest.mark.anyio

KEY = "hostile-secret-5d1e"
APPOINTMENT = {"id": 1, "title": "Appointment 1", "duration": 60}
CAP_MIB = DEFAULT_MAX_RESPONSE_BYTES >> 20
HANG_GUARD = 60  # seconds; every call here ends in a few


def client_for(url: str, http_backend: str, **kwargs: Any) -> AppointmentsClient:
    kwargs.setdefault("retry_policy", RetryPolicy(max_retries=0))
    return AppointmentsClient(
        api_key=KEY,
        base_url=url,
        http_backend=http_backend,
        rate_limit=None,
        booking_check_settle=0,
        **kwargs,
    )


async def call_against(handler: Handler, http_backend: str, **kwargs: Any) -> tuple[BaseException, int]:
    """The error a slot read ends in against ``handler``, and how many requests arrived."""
    async with httpx_abandons_its_body_generators():
        async with (
            LoopbackServer(handler) as server,
            client_for(server.url, http_backend, **kwargs) as client,
        ):
            with anyio.fail_after(HANG_GUARD), pytest.raises(Exception) as caught:  # noqa: PT011 - checked below
                await client.get_slots(1, customer_id=5, days_ahead=6)
        return caught.value, len(server.requests)


def assert_over_the_cap(exc: BaseException, cap: str = f"{CAP_MIB} MiB") -> None:
    assert isinstance(exc, ResponseValidationError), repr(exc)
    assert exc.operation == "getBookableAppointmentSlots"
    assert exc.field == "<body>"
    assert exc.status_code == 200
    assert f"larger than the {cap} cap (max_response_bytes)" in str(exc)
    assert str(exc).startswith("getBookableAppointmentSlots (GET /v1/appointments/bookable/1/slots)")


# -- answers too big ------------------------------------------------------------------------------


async def test_a_gzip_bomb_stops_at_the_cap(http_backend: str) -> None:
    # 64 KB of gzip, 4 times the cap once unpacked.
    assert len(gzip_bomb_bytes(4 * CAP_MIB)) < 100_000
    exc, requests = await call_against(gzip_bomb(4 * CAP_MIB), http_backend)
    assert_over_the_cap(exc)
    assert requests == 1


async def test_an_endless_chunked_stream_stops_at_the_cap(http_backend: str) -> None:
    exc, _ = await call_against(endless_chunked(), http_backend)
    assert_over_the_cap(exc)


async def test_a_body_declared_bigger_than_the_cap_is_refused(http_backend: str) -> None:
    exc, _ = await call_against(huge_body(2 * CAP_MIB, declared=True), http_backend)
    assert_over_the_cap(exc)


async def test_a_body_sized_by_closing_stops_at_the_cap(http_backend: str) -> None:
    exc, _ = await call_against(huge_body(2 * CAP_MIB, declared=False), http_backend)
    assert_over_the_cap(exc)


async def test_an_answer_over_the_cap_is_not_retried(http_backend: str) -> None:
    exc, requests = await call_against(
        huge_body(2 * CAP_MIB, declared=False),
        http_backend,
        retry_policy=RetryPolicy(max_retries=2, backoff_base=0),
    )
    assert_over_the_cap(exc)
    assert requests == 1  # an answer that big comes again as big


async def test_an_answer_just_under_the_cap_is_read() -> None:
    """The cap counts decoded bytes of the whole body: one byte under it parses (as JSON it is a
    string of spaces around an object)."""
    padding = DEFAULT_MAX_RESPONSE_BYTES - len(b'{"id": 1, "title": "x", "duration": 60}') - 1
    body = b" " * padding + b'{"id": 1, "title": "x", "duration": 60}'
    assert len(body) == DEFAULT_MAX_RESPONSE_BYTES - 1
    async with LoopbackServer(always(reply(200, body))) as server, client_for(server.url, "httpx") as client:
        appointment = await client.get_bookable_appointment(1)
    assert appointment.id == 1


# -- the cap is the Requester's (and the backends') to set ---------------------------------------------


def requester(url: str, http_backend: str, max_response_bytes: Any) -> Requester:
    return Requester(
        api_key=Secret(KEY),
        base_url=url,
        timeouts=Timeouts(connect=5, read=5, write=5, pool=5),
        retry_policy=RetryPolicy(max_retries=0),
        http_backend=http_backend,
        http_client=None,
        max_response_bytes=max_response_bytes,
    )


async def test_a_smaller_cap_is_kept_and_named(http_backend: str) -> None:
    padded = b'{"id": 1, "title": "' + b"x" * 2000 + b'", "duration": 60}'
    async with LoopbackServer(always(reply(200, padded))) as server:
        small = requester(server.url, http_backend, 1024)
        try:
            with pytest.raises(ResponseValidationError) as caught:
                await small.request(get_bookable_appointment, 1)
        finally:
            await small.aclose()
        roomy = requester(server.url, http_backend, 4096)
        try:
            appointment = await roomy.request(get_bookable_appointment, 1)
        finally:
            await roomy.aclose()
        unbounded = requester(server.url, http_backend, None)
        try:
            again = await unbounded.request(get_bookable_appointment, 1)
        finally:
            await unbounded.aclose()
    assert small.backend.max_response_bytes == 1024
    assert "larger than the 1 KiB cap (max_response_bytes)" in str(caught.value)
    assert caught.value.operation == "getBookableAppointment"
    assert appointment.title == "x" * 2000
    assert again.title == "x" * 2000


@pytest.mark.parametrize("cap", [0, -1, True, 1.5, "16MiB"])
def test_a_cap_that_is_no_whole_number_of_bytes_is_a_configuration_error(cap: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes must be a whole number"):
        requester("http://127.0.0.1:9", "httpx", cap)


# -- answers that never end -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["body", "head"])
async def test_a_trickling_answer_ends_in_a_timeout(http_backend: str, shape: str) -> None:
    """A byte every 50 ms never trips a 0.2 s read timeout; the attempt's bound (0.2 s for each
    of pool, connect and write, twice for the read: 1 s) ends it."""
    handler = trickle_body(0.05) if shape == "body" else trickle_head(0.05)
    exc, requests = await call_against(handler, http_backend, timeout=0.2)
    assert type(exc) is APITimeoutError, repr(exc)
    assert exc.may_have_reached_server is True
    assert exc.operation == "getBookableAppointmentSlots"
    assert "timed out: the whole answer did not arrive within 1 s" in str(exc)
    assert requests == 1


def test_one_attempt_is_bounded_by_every_steps_timeout_and_two_reads() -> None:
    assert Timeouts(connect=10, read=30, write=30, pool=30).total == 130
    assert Timeouts(connect=1, read=2, write=3, pool=4).total == 12
    # A step without a bound leaves the attempt without one (timeout=None means no bounds).
    assert Timeouts(connect=10, read=None, write=30, pool=30).total is None
    assert Timeouts(connect=10, read=30, write=30, pool=None).total is None


async def test_the_attempts_bound_follows_the_clients_timeouts() -> None:
    async with (
        client_for("http://127.0.0.1:9", "httpx") as default,
        client_for("http://127.0.0.1:9", "httpx", timeout=2) as two,
        client_for("http://127.0.0.1:9", "httpx", timeout=None) as unbounded,
        httpx.AsyncClient(timeout=httpx.Timeout(3, pool=1)) as own,
        client_for("http://127.0.0.1:9", "httpx", http_client=own) as through_own,
    ):
        assert default._api.backend.attempt_timeout == 130
        assert two._api.backend.attempt_timeout == 10
        assert unbounded._api.backend.attempt_timeout is None
        assert through_own._api.backend.attempt_timeout == 1 + 3 + 3 + 2 * 3


# -- redirects ------------------------------------------------------------------------------------


@pytest.fixture
async def following_client_kwargs(http_backend: str) -> AsyncIterator[dict[str, Any]]:
    """A caller's own client that follows redirects, where the library can be told to."""
    if http_backend == "httpx":
        async with httpx.AsyncClient(follow_redirects=True) as http_client:
            yield {"http_client": http_client}
    else:
        async with aiohttp.ClientSession() as session:  # aiohttp follows redirects by default
            yield {"http_client": session}


async def test_a_redirect_to_another_origin_is_not_followed_with_the_key(
    http_backend: str, following_client_kwargs: dict[str, Any]
) -> None:
    async with LoopbackServer(always(reply(200, APPOINTMENT))) as elsewhere:
        redirect = reply(302, b"", headers={"Location": f"{elsewhere.url}/steal?from=tenant"})
        async with (
            LoopbackServer(always(redirect)) as tenant,
            client_for(tenant.url, http_backend, **following_client_kwargs) as client,
        ):
            with pytest.raises(APIStatusError) as caught:
                await client.get_bookable_appointment(1)
        assert elsewhere.requests == []
        assert tenant.requests[0].headers["x-api-key"] == KEY
    exc = caught.value
    assert exc.status_code == 302
    assert type(exc) is APIStatusError
    assert exc.error_message == (
        f"a redirect to {elsewhere.url}, not followed (the API key goes to base_url's origin only)"
    )
    assert "steal" not in str(exc)


async def test_a_redirect_within_the_origin_is_not_followed_either(
    http_backend: str, following_client_kwargs: dict[str, Any]
) -> None:
    async def handler(request: Request) -> Any:
        if request.path == "/v1/appointments/bookable/1":
            return reply(301, b"", headers={"Location": "/v2/appointments/bookable/1"})
        return reply(200, APPOINTMENT)

    async with (
        LoopbackServer(handler) as server,
        client_for(
            server.url, http_backend, retry_policy=RetryPolicy(max_retries=2), **following_client_kwargs
        ) as client,
    ):
        with pytest.raises(APIStatusError) as caught:
            await client.get_bookable_appointment(1)
        assert [r.path for r in server.requests] == ["/v1/appointments/bookable/1"]  # not retried
    assert caught.value.status_code == 301
    assert "a redirect elsewhere on the same origin, not followed" in str(caught.value)


async def test_a_redirect_without_a_location_says_so(http_backend: str) -> None:
    async with (
        LoopbackServer(always(reply(307, b""))) as server,
        client_for(server.url, http_backend) as client,
    ):
        with pytest.raises(APIStatusError, match="a redirect without a Location, not followed"):
            await client.get_bookable_appointment(1)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1 from a CA nobody trusts, and a client
    context that trusts that CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def trusting(http_backend: str, context: ssl.SSLContext) -> Any:
    if http_backend == "httpx":
        return httpx.AsyncClient(verify=context)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


async def test_a_rejected_certificate_is_not_retried(
    http_backend: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(max_retries=2, backoff_base=0, sleep=record)
    async with LoopbackServer(always(reply(200, APPOINTMENT)), ssl_context=server_context) as server:
        async with client_for(server.url, http_backend, retry_policy=policy) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(APIConnectionError) as caught:
                await client.get_bookable_appointment(1)
        # The server works for a client that trusts its CA: the rejection is the certificate's.
        async with trusting(http_backend, client_context) as http_client:
            trusted = client_for(server.url, http_backend, http_client=http_client)
            assert (await trusted.get_bookable_appointment(1)).id == 1
            await trusted.aclose()
        assert len(server.requests) == 1  # the trusted one
    exc = caught.value
    assert type(exc) is APIConnectionError
    assert exc.certificate_rejected is True
    assert exc.may_have_reached_server is False
    assert "certificate" in str(exc).lower()
    assert waits == []  # no retry was even waited for
    assert RetryPolicy().is_retryable(exc) is False


async def test_a_booking_through_a_rejected_certificate_is_not_sent_again(
    http_backend: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """A failed handshake never reached the server, so a repeat could not double-book; it is not
    made all the same, since it would fail the same way."""
    from perfectgym_appointments_client import Slot

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    slot = Slot.from_dict(
        {
            "startDateTime": "2026-03-23T08:00:00.000+01:00[Europe/Berlin]",
            "endDateTime": "2026-03-23T09:00:00.000+01:00[Europe/Berlin]",
        }
    )
    policy = RetryPolicy(max_retries=2, backoff_base=0, sleep=record)
    async with (
        LoopbackServer(always(reply(200, APPOINTMENT)), ssl_context=tls[0]) as server,
        client_for(server.url, http_backend, retry_policy=policy) as client,
    ):
        with anyio.fail_after(HANG_GUARD), pytest.raises(APIConnectionError) as caught:
            await client.book(customer_id=5, bookable_appointment_id=1, slot=slot, validate=False)
    assert caught.value.certificate_rejected is True
    assert caught.value.operation == "bookAppointmentBooking"
    assert waits == []


async def test_connection_errors_that_can_heal_are_not_marked_as_rejected_certificates(
    http_backend: str,
) -> None:
    async with (
        LoopbackServer(trickle_head(0.05)) as server,
        client_for(server.url, http_backend, timeout=0.1) as client,
    ):
        with pytest.raises(APITimeoutError) as caught:
            await client.get_bookable_appointment(1)
    assert caught.value.certificate_rejected is False
    assert RetryPolicy().is_retryable(caught.value) is True


async def test_the_clients_answer_cap_is_the_one_it_was_given() -> None:
    async def huge(seen: Request) -> Answer:
        return reply(200, [{"id": 1, "title": "x" * 4_000}])

    async with (
        LoopbackServer(huge) as server,
        AppointmentsClient(api_key="k", base_url=server.url, max_response_bytes=1_024) as client,
    ):
        with pytest.raises(ResponseValidationError, match="cap"):
            await client.get_bookable_appointment(1)
    with pytest.raises(ConfigurationError):
        AppointmentsClient(api_key="k", base_url="https://studio.example", max_response_bytes=0)
