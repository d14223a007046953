"""What AppointmentsClient(...) refuses when it is made, not on the first call: an API key no header
can carry, a base URL requests cannot be appended to, timeouts that are no number of seconds; what
it warns about (the key in clear text); and ids past the API's int64, refused before any request.

No message shows the key (nor a URL that may hold a password or be the key): each test uses a
distinctive key and looks for it, and for its pieces, in everything the error shows.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakeapi import FakeAPI, first_slot, make

from perfectgym_appointments_client import AppointmentsClient, ConfigurationError, NotFoundError
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio

HEAD, TAIL = "PGK-q7Zr4v", "CONFIG-S3CRET"
KEY = HEAD + TAIL
TENANT = "https://tenant.example"
PACKAGE = "perfectgym_appointments_client"


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)


def shown(exc: BaseException) -> list[str]:
    """Everything an error shows: message, repr, traceback, and the locals of the package's frames
    (error reporters record them; the caller's own frames hold what the caller passed)."""
    with_locals = traceback.TracebackException.from_exception(exc, capture_locals=True)
    ours = [frame for frame in with_locals.stack if f"/{PACKAGE}/" in frame.filename]
    assert ours, "the error comes from the package"
    return [
        str(exc),
        repr(exc),
        "".join(traceback.format_exception(exc)),
        *(repr(frame.locals) for frame in ours),
    ]


def assert_no_key(exc: BaseException, *pieces: str) -> None:
    for text in shown(exc):
        for piece in (KEY, *pieces):
            assert piece not in text


# -- the API key -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "kind"),
    [
        (" ", "whitespace"),
        ("\t", "whitespace"),
        ("\r\n", "a line break"),
        ("\n", "a line break"),
        ("\r\nX-Injected: 1\r\n", "a line break"),
        ("\x00", "an invisible or control character"),
        ("\x7f", "an invisible or control character"),
        ("\x1b", "an invisible or control character"),
        ("\u200b", "an invisible or control character"),  # zero-width space, pasted from a web page
        ("\u00a0", "whitespace"),  # no-break space
        ("é", "a non-ASCII character"),
        ("\u2013", "a non-ASCII character"),  # an en dash a word processor made of "-"
    ],
)
def test_a_key_no_header_can_carry_is_refused_without_showing_it(inner: str, kind: str) -> None:
    with pytest.raises(ConfigurationError, match="the API key holds") as caught:
        AppointmentsClient(api_key=HEAD + inner + TAIL, base_url=TENANT)
    message = str(caught.value)
    assert kind in message
    assert f"character {len(HEAD) + 1} of {len(HEAD + inner + TAIL)}" in message
    assert_no_key(caught.value, HEAD, TAIL)
    assert inner.strip() == "" or inner.strip() not in message


@pytest.mark.parametrize("around", ["\n", "\r\n", " ", "\t", "  \n\n", "\u00a0"])
async def test_whitespace_around_the_key_is_stripped(around: str) -> None:
    """A key read from a file (or an env file) ends in a newline: what is sent is the key alone."""
    async with (
        Sandbox(api_key=KEY) as sandbox,
        AppointmentsClient(api_key=around + KEY + around, base_url=sandbox.base_url) as client,
    ):
        assert await client.check_api_key() is True
        assert client._api._key.reveal() == KEY


async def test_the_key_from_the_environment_is_stripped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Sandbox(api_key=KEY) as sandbox:
        monkeypatch.setenv("PERFECTGYM_API_KEY", KEY + "\n")
        monkeypatch.setenv("PERFECTGYM_BASE_URL", sandbox.base_url + "\n")
        async with AppointmentsClient() as client:
            assert await client.check_api_key() is True


@pytest.mark.parametrize("blank", ["", " ", "\n", "\t\r\n"])
def test_a_blank_key_is_no_key(blank: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PERFECTGYM_API_KEY"):
        AppointmentsClient(api_key=blank, base_url=TENANT)
    monkeypatch.setenv("PERFECTGYM_API_KEY", blank)
    with pytest.raises(ConfigurationError, match="PERFECTGYM_API_KEY"):
        AppointmentsClient(base_url=TENANT)


@pytest.mark.parametrize("key", [KEY.encode(), 12345, [KEY]])
def test_a_key_that_is_not_a_string_is_a_type_error(key: Any) -> None:
    with pytest.raises(TypeError, match=f"api_key must be a str, got {type(key).__name__}") as caught:
        AppointmentsClient(api_key=key, base_url=TENANT)
    assert_no_key(caught.value)


def test_a_later_setting_refused_shows_no_key_in_the_constructors_locals() -> None:
    # The key was fine; the timeout is not. The constructor's frame is recorded with its locals.
    with pytest.raises(ConfigurationError, match="timeout") as caught:
        AppointmentsClient(api_key=f"  {KEY}\n", base_url=TENANT, timeout=math.nan)
    assert_no_key(caught.value)
    with pytest.raises(ConfigurationError, match="accept_language") as caught:
        AppointmentsClient(api_key=KEY, base_url=TENANT, accept_language="xx")
    assert_no_key(caught.value)


def test_a_studio_client_refused_shows_no_key_in_for_studios_locals() -> None:
    # for_studio checks its key and URL as the constructor does, from frames that hold them masked.
    parent = AppointmentsClient(api_key="parent-key-000", base_url=TENANT)
    with pytest.raises(ConfigurationError, match="user:password@") as caught:
        parent.for_studio(f"https://user:{KEY}@tenant.example", KEY)
    assert_no_key(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        parent.for_studio(TENANT, f"{KEY} inner space")
    assert_no_key(caught.value)


# -- the base URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("https://tenant.example/v1 /x", "base_url holds whitespace"),
        ("https://tenant.example\r\nX-Injected: 1", "base_url holds a line break"),
        ("https://tenant.example/\n", None),  # surrounding: stripped, accepted (below)
        ("https://tenant\t.example", "base_url holds whitespace"),
        ("https://tenant.example/\x00", "base_url holds an invisible or control character"),
        ("https://tenant\u200b.example", "base_url holds an invisible or control character"),
        ("https://tenant.example\x7f", "base_url holds an invisible or control character"),
        ("https://user:s3cr3t-pass@tenant.example", "user:password@"),
        ("https://user@tenant.example", "user:password@"),
        ("https://:s3cr3t-pass@tenant.example", "user:password@"),
        ("https://tenant.example/?token=s3cr3t-pass", "must not have a query"),
        ("https://tenant.example?", "must not have a query"),
        ("https://tenant.example/#s3cr3t-pass", "must not have a fragment"),
        ("https://tenant.example#", "must not have a fragment"),
        ("https://", "has no host"),
        ("https:///v1", "has no host"),
        ("https://tenant.example:99999", "port"),
        ("https://tenant.example:https", "port"),
        ("ftp://tenant.example", "must start with http:// or https://"),
        ("tenant.example", "must start with http:// or https://"),
    ],
)
def test_a_base_url_requests_cannot_be_appended_to_is_refused(url: str, match: str | None) -> None:
    if match is None:
        assert AppointmentsClient(api_key=KEY, base_url=url).base_url == url.strip().rstrip("/")
        return
    with pytest.raises(ConfigurationError, match=match) as caught:
        AppointmentsClient(api_key=KEY, base_url=url)
    # Not quoted: it may hold a password or a token.
    assert_no_key(caught.value, "s3cr3t-pass")
    assert url not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://tenant.example",
        "https://tenant.example/",
        "  https://tenant.example\n",
        "https://gateway.example/perfectgym/",  # behind a gateway, under a path
        "HTTPS://Tenant.Example",
        "https://tenant.example:8443",
        "https://[2001:db8::1]:8443",
        "https://bücher.example",  # sent IDNA-encoded
    ],
)
def test_usable_base_urls_are_accepted(url: str) -> None:
    client = AppointmentsClient(api_key=KEY, base_url=url)
    assert client.base_url == url.strip().rstrip("/")


def test_swapped_key_and_url_are_named_without_showing_the_key() -> None:
    with pytest.raises(ConfigurationError, match="look swapped") as caught:
        AppointmentsClient(TENANT, KEY)  # the mistake under test
    assert_no_key(caught.value)
    with pytest.raises(ConfigurationError, match=r"must start with http:// or https://$") as caught:
        AppointmentsClient(KEY, KEY)
    assert_no_key(caught.value)


def test_a_base_url_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="base_url must be a str, got URL"):
        AppointmentsClient(api_key=KEY, base_url=httpx.URL(TENANT))  # type: ignore[arg-type]


# -- plain http ------------------------------------------------------------------------------------


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger=PACKAGE):
        yield caplog


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PACKAGE and r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    "url",
    [
        "http://tenant.example",
        "http://10.0.0.5:8080",  # a private address is still the network
        "http://127.0.0.1.nip.io",  # named like loopback, resolved by DNS
        "http://localhost.example",
        "http://[2001:db8::1]",
        "HTTP://TENANT.EXAMPLE",
    ],
)
def test_plain_http_beyond_loopback_warns_once_per_client(url: str, logged: pytest.LogCaptureFixture) -> None:
    client = AppointmentsClient(api_key=KEY, base_url=url)
    client.with_options(deadline=5)  # a copy is not another client
    messages = warnings_of(logged)
    assert len(messages) == 1
    assert "clear text" in messages[0]
    assert KEY not in messages[0]
    AppointmentsClient(api_key=KEY, base_url=url)
    assert len(warnings_of(logged)) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.3.4.5",
        "http://[::1]:8000",
        "http://localhost:8000",
        "http://LOCALHOST",
        "https://tenant.example",
    ],
)
def test_loopback_http_and_https_say_nothing(url: str, logged: pytest.LogCaptureFixture) -> None:
    AppointmentsClient(api_key=KEY, base_url=url)
    assert warnings_of(logged) == []


def test_the_sandbox_over_loopback_http_says_nothing(logged: pytest.LogCaptureFixture) -> None:
    with Sandbox(api_key=KEY) as sandbox:
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        AppointmentsClient(api_key=KEY, base_url=sandbox.base_url)
    assert warnings_of(logged) == []


# -- timeouts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeout",
    [
        math.nan,
        math.inf,
        -math.inf,
        0,
        -1.5,
        True,
        "30",
        httpx.Timeout(math.nan),
        httpx.Timeout(math.inf),
        httpx.Timeout(5.0, connect=math.inf),
        httpx.Timeout(5.0, read=-1.0),
        httpx.Timeout(5.0, write=math.nan),
        httpx.Timeout(5.0, pool=0.0),
        httpx.Timeout(5.0, connect="1"),  # type: ignore[arg-type]  # httpx does not check it
    ],
    ids=repr,
)
def test_a_timeout_that_is_no_number_of_seconds_is_refused(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        AppointmentsClient(api_key=KEY, base_url=TENANT, timeout=timeout)


@pytest.mark.parametrize(
    ("timeout", "read"),
    [(0.001, 0.001), (3, 3.0), (1e6, 1e6), (httpx.Timeout(None), None), (httpx.Timeout(5, pool=None), 5.0)],
)
def test_finite_positive_timeouts_and_none_are_accepted(timeout: Any, read: float | None) -> None:
    assert AppointmentsClient(api_key=KEY, base_url=TENANT, timeout=timeout)._api.read_timeout == read


# -- ids past the API's int64 ----------------------------------------------------------------------

INT64_MAX = 2**63 - 1
TOO_BIG = [INT64_MAX + 1, 2**64, 10**5000]


@pytest.mark.usefixtures("http_backend")
@pytest.mark.parametrize("too_big", TOO_BIG, ids=["2**63", "2**64", "10**5000"])
@pytest.mark.parametrize(
    "call",
    [
        lambda c, n: c.get_booking(n),
        lambda c, n: c.cancel_booking(n),
        lambda c, n: c.list_bookings(n),
        lambda c, n: c.get_bookable_appointment(n),
        lambda c, n: c.get_slots(n),
        lambda c, n: c.get_slots(1, customer_id=n),
        lambda c, n: c.search_slots([1, n]),
        lambda c, n: c.book_first_available(customer_id=5, bookable_appointment_id=1, instructor_id=n),
    ],
    ids=[
        "get_booking", "cancel_booking", "list_bookings", "get_bookable_appointment", "get_slots",
        "get_slots-customer", "search_slots", "book_first_available-instructor",
    ],
)  # fmt: skip
async def test_an_id_past_int64_is_refused_before_any_request(call: Any, too_big: int) -> None:
    api = FakeAPI()
    async with make(api) as client:
        with pytest.raises(ValueError, match=f"between 1 and {INT64_MAX}"):
            await call(client, too_big)
    assert api.requests == []


@pytest.mark.usefixtures("http_backend")
@pytest.mark.parametrize(
    "call",
    [
        lambda c, slot, n: c.validate_slot(customer_id=n, bookable_appointment_id=1, slot=slot),
        lambda c, slot, n: c.book(customer_id=5, bookable_appointment_id=n, slot=slot),
        lambda c, slot, n: c.book(customer_id=5, bookable_appointment_id=1, slot=slot, instructor_ids=[n]),
        lambda c, slot, n: c.reschedule(n, slot),
    ],
    ids=["validate_slot-customer", "book-appointment", "book-instructor", "reschedule"],
)
async def test_an_id_past_int64_in_a_booking_is_refused_before_any_request(call: Any) -> None:
    api = FakeAPI()
    async with make(api) as client:
        slot = await first_slot(client)
        sent = len(api.requests)
        with pytest.raises(ValueError, match=f"between 1 and {INT64_MAX}"):
            await call(client, slot, INT64_MAX + 1)
    assert len(api.requests) == sent


@pytest.mark.usefixtures("http_backend")
async def test_the_largest_int64_id_is_asked_for() -> None:
    api = FakeAPI()
    async with make(api) as client:
        with pytest.raises(NotFoundError):  # the fake has no such booking: it was asked
            await client.get_booking(INT64_MAX)
    assert [r.url.path for r in api.requests] == [f"/v1/appointments/booking/{INT64_MAX}"]


async def test_a_huge_id_is_described_by_its_size() -> None:
    with pytest.raises(ValueError, match="got a 16610-bit number"):
        await AppointmentsClient(api_key=KEY, base_url=TENANT).get_booking(10**5000)


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"max_retries": -1}, "max_retries must be a whole number from 0 to 10"),
        ({"max_retries": 10**6}, "max_retries must be a whole number from 0 to 10"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": 10**6}, "max_connections"),
        ({"max_connections_per_studio": 0}, "max_connections_per_studio"),
        ({"booking_check_settle": math.nan}, "booking_check_settle"),
        ({"timeout": -1}, "timeout"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_every_setting_refused_at_construction_is_a_configuration_error_with_its_bound(
    setting: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AppointmentsClient(api_key=KEY, base_url=TENANT, **setting)


def test_the_retry_policy_is_bounded_and_refused_as_a_setting() -> None:
    from perfectgym_appointments_client import RetryPolicy

    assert RetryPolicy(max_retries=10).max_retries == 10
    with pytest.raises(ConfigurationError, match="from 0 to 10"):
        RetryPolicy(max_retries=11)
    with pytest.raises(ConfigurationError, match="backoff_cap"):
        RetryPolicy(backoff_cap=-1)
