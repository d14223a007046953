"""Many studios in one process (issue 28): a circuit breaker per studio, ``for_studio`` clients
over one pool with a fair share of it per studio, one TLS context for the process and an httpx
client made on the first request.

Everything runs against sandboxes over real sockets: three studios (``Studios``) for the whole
module (their faults and hooks reset before each test), a TLS sandbox, and a closed port for a
studio that is down. Requests are held at a sandbox with its ``on_request`` hook (``Held``, ``Turnstile``) instead of
being timed, and a breaker's cooldown passes on a clock the test drives (``breaker.clock``).
What a studio teaches the client of its own limits is in tests/test_studio_limits.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import trustme
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from perfectgym_appointments_client import (
    APIConnectionError,
    APITimeoutError,
    AppointmentsClient,
    CircuitBreaker,
    CircuitOpenError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    OutcomeKind,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    Telemetry,
)
from perfectgym_appointments_client._breaker import Breaker
from perfectgym_appointments_client._connections import FairShare
from perfectgym_appointments_client._http import SendFailure, Turn
from perfectgym_appointments_client._tls import shared_ssl_context
from perfectgym_appointments_client.sandbox import Faults, Sandbox, Studio, Studios

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds a test waits for something that takes milliseconds
BOOK = "/v1/appointments/booking/book"
LOGGER = "perfectgym_appointments_client"
# The gates tests put up at a sandbox (Held, Turnstile): all opened after each test, so that no
# request stays held at a server when its test failed.
_GATES: list[Callable[[], None]] = []


# -- the sandboxes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Studio]]:
    """Three studios for the module (one server, a port each), each with its own key and data."""
    with Studios(3, seed=5, rate_limit=None) as studios:
        yield dict(zip("abc", studios, strict=True))


@pytest.fixture(autouse=True)
def healthy(sandboxes: dict[str, Studio]) -> Iterator[None]:
    """Each test starts with every sandbox answering at once, without faults or hooks."""
    for sb in sandboxes.values():
        sb.faults = Faults()
        sb.on_request = None
    yield
    while _GATES:
        _GATES.pop()()
    for sb in sandboxes.values():
        sb.faults = Faults()
        sb.on_request = None


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest) -> str:
    """The client's HTTP backend. Named as tests/conftest.py's fixture (which serves the fake API)
    so that conftest's hook deselects trio + aiohttp."""
    return str(request.param)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, trustme.CA, Path]]:
    """A sandbox over HTTPS with a certificate of a CA nobody trusts by default; the CA's PEM file."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    with Sandbox(
        seed=7, api_key="key-tls", rate_limit=None,
        ssl_certfile=str(folder / "cert.pem"), ssl_keyfile=str(folder / "key.pem"),
    ) as sb:  # fmt: skip
        yield sb, ca, folder / "ca.pem"


@pytest.fixture
def down() -> Iterator[str]:
    """The base URL of a studio that is down: a port bound but not listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def requests_at(sb: Sandbox | Studio) -> int:
    return int(sb.stats["requests"])


def one_id(sb: Sandbox | Studio) -> int:
    return sb.store.listed()[0].id


# -- holding requests at a sandbox -----------------------------------------------------------------


async def _in_thread(wait: Callable[[], bool], what: str) -> None:
    with anyio.fail_after(WAIT):
        assert await anyio.to_thread.run_sync(wait, abandon_on_cancel=True), what


class Held:
    """``sb.on_request``: holds the requests matching ``method``/``path`` at the server (the first
    ``first`` of them; all without it) until :meth:`release`, and counts those that arrived."""

    def __init__(
        self, method: str | None = None, path: str | None = None, *, first: int | None = None
    ) -> None:
        self.method, self.path, self.first = method, path, first
        self.arrivals = 0
        self.released = threading.Event()
        self._changed = threading.Condition()
        _GATES.append(self.release)

    async def __call__(self, phase: str, method: str, path: str) -> None:  # in the sandbox's loop
        if phase != "received" or (self.method, self.path) not in ((None, None), (method, path)):
            return
        with self._changed:
            self.arrivals += 1
            number = self.arrivals
            self._changed.notify_all()
        if self.first is None or number <= self.first:
            await anyio.to_thread.run_sync(self.released.wait, WAIT)

    async def arrived(self, count: int = 1) -> None:
        """Return once ``count`` requests arrived."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: self.arrivals >= count, WAIT)

        await _in_thread(wait, f"{count} request(s) at the server, saw {self.arrivals}")

    def release(self) -> None:
        self.released.set()


class Turnstile:
    """``on_request`` hooks for several sandboxes: every request waits at its server until the
    test lets it through, one at a time, in the order they arrived (``order``: the studios')."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self._let_through = 0
        self._changed = threading.Condition()
        _GATES.append(self.open)

    def hook(self, name: str) -> Callable[[str, str, str], Awaitable[None]]:
        async def hook(phase: str, method: str, path: str) -> None:
            if phase != "received":
                return
            with self._changed:
                number = len(self.order)
                self.order.append(name)
                self._changed.notify_all()

            def wait() -> None:
                with self._changed:
                    self._changed.wait_for(lambda: self._let_through > number, WAIT)

            await anyio.to_thread.run_sync(wait)

        return hook

    async def arrived(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.order) >= count, WAIT)

        await _in_thread(wait, f"{count} request(s) at the servers, saw {self.order}")

    def let_one_through(self) -> None:
        with self._changed:
            self._let_through += 1
            self._changed.notify_all()

    def open(self) -> None:
        with self._changed:
            self._let_through = 1 << 30
            self._changed.notify_all()


# -- the client side -------------------------------------------------------------------------------


class Sleeps:
    """A retry policy's ``sleep`` that records the waits and takes none."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        await anyio.lowlevel.checkpoint()


class Clock:
    """Monotonic seconds for a breaker (``breaker.clock``) that pass only when the test says."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_of(sb: Sandbox | Studio, http_backend: str = "httpx", **kwargs: Any) -> AppointmentsClient:
    """A client of ``sb`` (``base_url=`` for another) without a rate limit and, unless told,
    without retries."""
    kwargs.setdefault("base_url", sb.base_url)
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry_policy", RetryPolicy(max_retries=0, sleep=Sleeps()))
    return AppointmentsClient(api_key=sb.api_key, http_backend=http_backend, **kwargs)


async def fail(
    client: AppointmentsClient,
    times: int,
    error: type[Exception] | tuple[type[Exception], ...] = ServiceUnavailableError,
) -> None:
    """``times`` calls, each ending in ``error`` (not in CircuitOpenError)."""
    for _ in range(times):
        with pytest.raises(error) as caught:
            await client.get_bookable_appointment(1)
        assert not isinstance(caught.value, CircuitOpenError)


def driven_breaker(client: AppointmentsClient, clock: Clock) -> Breaker:
    """The client's studio breaker, on ``clock`` (a test moves time instead of sleeping)."""
    breaker = client._api.breaker
    assert breaker is not None
    breaker.clock = clock
    return breaker


def messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


# == the circuit breaker ============================================================================


def test_circuit_breaker_settings_are_checked() -> None:
    assert CircuitBreaker() == CircuitBreaker(failure_threshold=5, cooldown=10.0)
    assert CircuitBreaker(failure_threshold=1, cooldown=30).cooldown == 30
    for threshold in (0, -1, 1.5, True, "5"):
        with pytest.raises(ValueError, match="failure_threshold"):
            CircuitBreaker(failure_threshold=threshold)  # type: ignore[arg-type]
    for cooldown in (0, -1, 30.01, float("nan"), True, "10"):
        with pytest.raises(ValueError, match="cooldown"):
            CircuitBreaker(cooldown=cooldown)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="circuit_breaker"):
        AppointmentsClient(api_key="k", base_url="https://t.example", circuit_breaker=5)  # type: ignore[arg-type]
    assert AppointmentsClient(api_key="k", base_url="https://t.example")._api.breaker is not None
    assert (
        AppointmentsClient(api_key="k", base_url="https://t.example", circuit_breaker=None)._api.breaker
        is None
    )


async def test_a_studio_answering_5xx_opens_its_breaker_by_default_then_its_calls_fail_at_once(
    sandboxes: dict[str, Studio], http_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    a = sandboxes["a"]
    a.faults = Faults(rate_503=1.0)
    sleeps = Sleeps()
    async with client_of(a, http_backend, retry_policy=RetryPolicy(max_retries=2, sleep=sleeps)) as client:
        before = requests_at(a)
        await fail(client, 1)  # three attempts: three failures in a row
        assert client._api.breaker is not None
        assert client._api.breaker.state == "closed"
        with pytest.raises(ServiceUnavailableError) as second:
            await client.get_bookable_appointment(1)  # the fifth attempt opens it: no sixth
        assert requests_at(a) - before == 5
        assert any("circuit breaker opened" in note for note in second.value.__notes__)
        assert client._api.breaker.state == "open"
        slept = len(sleeps.seen)
        for _ in range(10):
            with pytest.raises(CircuitOpenError):
                await client.get_bookable_appointment(1)
        assert requests_at(a) - before == 5, "nothing sent while open"
        assert len(sleeps.seen) == slept, "no retry spent while open"
    [opened] = messages(caplog, logging.WARNING, "times in a row")
    assert a.base_url in opened
    assert "failed 5 times in a row" in opened


async def test_an_open_breakers_error_names_the_studio_and_when_a_call_goes_through_again(
    sandboxes: dict[str, Studio],
) -> None:
    a, clock = sandboxes["a"], Clock()
    a.faults = Faults(rate_503=1.0)
    async with client_of(a, circuit_breaker=CircuitBreaker(failure_threshold=2, cooldown=8)) as client:
        driven_breaker(client, clock)
        await fail(client, 2)
        clock.advance(3)
        with pytest.raises(CircuitOpenError) as caught:
            await client.get_bookable_appointment(1)
    error = caught.value
    assert isinstance(error, APIConnectionError)
    assert error.host == a.base_url
    assert error.retry_in == pytest.approx(5.0)
    assert error.retry_at == pytest.approx(time.time() + 5.0, abs=2)
    assert error.may_have_reached_server is False
    assert error.operation == "getBookableAppointment"
    shown = str(error)
    assert a.base_url in shown
    assert "HTTP 503" in shown
    assert a.api_key not in shown + repr(error) + "".join(getattr(error, "__notes__", []))


async def test_after_the_cooldown_one_call_probes_and_its_answer_closes_the_breaker(
    sandboxes: dict[str, Studio], http_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    a, clock = sandboxes["a"], Clock()
    appointment = one_id(a)
    async with client_of(
        a, http_backend, circuit_breaker=CircuitBreaker(failure_threshold=2, cooldown=5)
    ) as client:
        breaker = driven_breaker(client, clock)
        a.faults = Faults(rate_503=1.0)
        await fail(client, 2)
        a.faults = Faults()  # the studio is back, but nobody knows yet
        clock.advance(4.9)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await client.get_bookable_appointment(appointment)
        clock.advance(0.1)
        assert breaker.state == "half_open"
        held = a.on_request = Held(first=1)
        before = requests_at(a)
        found = []
        async with anyio.create_task_group() as tg:

            async def probe() -> None:
                found.append(await client.get_bookable_appointment(appointment))

            tg.start_soon(probe)
            await held.arrived()
            for _ in range(3):  # meanwhile the others still fail at once
                with pytest.raises(CircuitOpenError, match="a probe is on its way") as caught:
                    await client.get_bookable_appointment(appointment)
                assert caught.value.retry_in == 0
            assert requests_at(a) - before == 1
            held.release()
        assert [f.id for f in found] == [appointment]
        assert breaker.state == "closed"
        assert (await client.get_bookable_appointment(appointment)).id == appointment
        assert requests_at(a) - before == 2
    [back] = messages(caplog, logging.INFO, "answers again")
    assert a.base_url in back


async def test_a_failed_probe_opens_the_breaker_for_another_cooldown(
    sandboxes: dict[str, Studio], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    a, clock, sleeps = sandboxes["a"], Clock(), Sleeps()
    a.faults = Faults(rate_503=1.0)
    async with client_of(
        a, circuit_breaker=CircuitBreaker(failure_threshold=2, cooldown=5),
        retry_policy=RetryPolicy(max_retries=3, sleep=sleeps),
    ) as client:  # fmt: skip
        breaker = driven_breaker(client, clock)
        before = requests_at(a)
        await fail(client, 1)  # two attempts, and the breaker opens
        assert (requests_at(a) - before, breaker.state) == (2, "open")
        clock.advance(5)
        assert breaker.state == "half_open"
        with pytest.raises(ServiceUnavailableError) as probe:
            await client.get_bookable_appointment(1)
        assert requests_at(a) - before == 3, "the probe's one attempt, no retry"
        assert any("circuit breaker opened" in note for note in probe.value.__notes__)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError) as caught:
            await client.get_bookable_appointment(1)
        assert caught.value.retry_in == pytest.approx(5.0)
        assert requests_at(a) - before == 3
    assert len(messages(caplog, logging.INFO, "is still failing")) == 1
    assert len(messages(caplog, logging.WARNING, "times in a row")) == 1


async def test_a_probe_cancelled_before_its_answer_lets_the_next_call_probe(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a, clock = sandboxes["a"], Clock()
    appointment = one_id(a)
    async with client_of(
        a, http_backend, circuit_breaker=CircuitBreaker(failure_threshold=1, cooldown=5)
    ) as client:
        breaker = driven_breaker(client, clock)
        a.faults = Faults(rate_503=1.0)
        await fail(client, 1)
        a.faults = Faults()
        clock.advance(5)
        held = a.on_request = Held(first=1)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get_bookable_appointment, appointment)
                await held.arrived()
                scope.cancel()
        assert breaker.state == "half_open", "the cancelled probe gave no verdict"
        assert (await client.get_bookable_appointment(appointment)).id == appointment
        assert breaker.state == "closed"
        assert held.arrivals == 2


@pytest.mark.parametrize("answer", ["200", "404", "429"])
async def test_any_answer_but_a_5xx_resets_the_failures_in_a_row(
    sandboxes: dict[str, Studio], answer: str
) -> None:
    a = sandboxes["a"]
    async with client_of(a, circuit_breaker=CircuitBreaker(failure_threshold=3)) as client:
        assert client._api.breaker is not None
        a.faults = Faults(rate_503=1.0)
        await fail(client, 2)
        if answer == "200":
            a.faults = Faults()
            await client.get_bookable_appointment(one_id(a))
        elif answer == "404":
            a.faults = Faults()
            with pytest.raises(NotFoundError):
                await client.get_bookable_appointment(999_999_999)
        else:
            a.faults = Faults(rate_429=1.0)
            with pytest.raises(RateLimitError):
                await client.get_bookable_appointment(one_id(a))
        a.faults = Faults(rate_503=1.0)
        await fail(client, 2)
        assert client._api.breaker.state == "closed", "two failures since the answer"
        await fail(client, 1)
        assert client._api.breaker.state == "open", "three in a row"


@pytest.mark.parametrize("no_answer", ["connection refused", "timed out"])
async def test_attempts_that_get_no_answer_open_the_breaker(
    sandboxes: dict[str, Studio], http_backend: str, down: str, no_answer: str
) -> None:
    a = sandboxes["a"]
    if no_answer == "timed out":
        a.on_request = Held()  # no answer until the test ends
        settings: dict[str, Any] = {"base_url": a.base_url, "timeout": 0.1}
        error: type[Exception] = APITimeoutError
    else:
        settings, error = {"base_url": down}, APIConnectionError
    async with client_of(
        a, http_backend, circuit_breaker=CircuitBreaker(failure_threshold=2),
        retry_policy=RetryPolicy(max_retries=1, sleep=Sleeps()), **settings,
    ) as client:  # fmt: skip
        breaker = client._api.breaker
        assert breaker is not None
        await fail(client, 1, error)  # two attempts, no answer to either
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError) as caught:
            await client.get_bookable_appointment(1)
    assert caught.value.host == settings["base_url"]
    assert error.__name__ in str(caught.value)


async def test_a_certificate_that_fails_verification_is_not_counted_against_the_studio(
    tls: tuple[Sandbox, trustme.CA, Path], http_backend: str
) -> None:
    sb, _, _ = tls
    async with client_of(sb, http_backend, circuit_breaker=CircuitBreaker(failure_threshold=2)) as client:
        for _ in range(4):
            with pytest.raises(APIConnectionError) as caught:
                await client.get_bookable_appointment(1)
            assert caught.value.certificate_rejected
            assert not isinstance(caught.value, CircuitOpenError)
        assert client._api.breaker is not None
        assert client._api.breaker.state == "closed"


async def test_no_free_connection_in_time_is_a_timeout_not_counted_against_the_studio(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a = sandboxes["a"]
    appointment = one_id(a)
    held = a.on_request = Held(first=1)
    async with client_of(
        a, http_backend, max_connections=1, timeout=httpx.Timeout(WAIT, pool=0.05),
        circuit_breaker=CircuitBreaker(failure_threshold=2),
    ) as client:  # fmt: skip
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get_bookable_appointment, appointment)
            await held.arrived()
            for _ in range(3):
                with pytest.raises(APITimeoutError, match="no free connection") as caught:
                    await client.get_bookable_appointment(appointment)
                assert caught.value.no_free_connection
                assert not caught.value.may_have_reached_server
            assert held.arrivals == 1, "none of them was sent"
            assert client._api.breaker is not None
            assert client._api.breaker.state == "closed"
            held.release()
        assert client._api.connections.share is not None
        assert client._api.connections.share.in_flight == 0


async def test_a_certificate_failure_does_not_wipe_out_the_studios_failures_before_it(
    tls: tuple[Sandbox, trustme.CA, Path], http_backend: str
) -> None:
    # Two clients of one studio share its breaker: one trusts its certificate and gets 503s,
    # the other does not trust it. Its certificate failures are no answer from the studio:
    # they must neither count nor reset the count of 503s in a row.
    sb, ca, _ = tls
    sb.faults = Faults(rate_503=1.0)
    settings = CircuitBreaker(failure_threshold=2)
    try:
        async with (
            client_of(sb, http_backend, circuit_breaker=settings, ssl_context=trusting(ca)) as trusted,
            client_of(sb, http_backend, circuit_breaker=settings) as untrusted,
        ):
            await fail(trusted, 1)
            await fail(untrusted, 1, APIConnectionError)
            await fail(trusted, 1)
            assert trusted._api.breaker is not None
            assert trusted._api.breaker.state == "open", "two 503s in a row, a certificate failure between"
    finally:
        sb.faults = Faults()


async def test_no_free_connection_does_not_wipe_out_the_studios_failures_before_it(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    # A 503, then a request held at the studio until it fails too (its on_request hook raises:
    # a 500) while another call of the client waits for the one connection in vain. That wait
    # got no answer from the studio: it must not reset the count of failures in a row.
    a = sandboxes["a"]
    held = Held(first=1)

    async def held_then_broken(phase: str, method: str, path: str) -> None:
        await held(phase, method, path)
        raise RuntimeError("the studio is broken")

    async with client_of(
        a, http_backend, max_connections=1, timeout=httpx.Timeout(WAIT, pool=0.05),
        circuit_breaker=CircuitBreaker(failure_threshold=2),
    ) as client:  # fmt: skip
        breaker = client._api.breaker
        assert breaker is not None
        a.faults = Faults(rate_503=1.0, max_faults=1)
        await fail(client, 1)
        a.on_request = held_then_broken
        async with anyio.create_task_group() as tg:
            # A 500 (or, should uvicorn close the connection first, no answer): down either way.
            tg.start_soon(fail, client, 1, (InternalServerError, APIConnectionError))
            await held.arrived()
            with pytest.raises(APITimeoutError) as waited:
                await client.get_bookable_appointment(1)
            assert waited.value.no_free_connection
            held.release()
        assert breaker.state == "open", "two failures in a row, a wait for a connection between"


async def test_a_probe_that_found_no_free_connection_does_not_close_the_breaker(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    # A request sent before the breaker opened holds the client's one connection; the probe
    # then waits for it in vain. It reached no studio: the breaker must not close.
    a, clock = sandboxes["a"], Clock()
    appointment = one_id(a)
    held = a.on_request = Held(first=1)
    settings = CircuitBreaker(failure_threshold=1, cooldown=5)
    async with (
        client_of(
            a,
            http_backend,
            max_connections=1,
            timeout=httpx.Timeout(WAIT, pool=0.05),
            circuit_breaker=settings,
        ) as client,
        client_of(a, http_backend, circuit_breaker=settings) as other,
    ):
        breaker = client._api.breaker
        assert breaker is not None
        assert other._api.breaker is not None
        breaker.clock = other._api.breaker.clock = clock
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get_bookable_appointment, appointment)
            await held.arrived()
            a.faults = Faults(rate_503=1.0)
            await fail(other, 1)  # the studio's breaker opens
            clock.advance(5)
            assert breaker.state == "half_open"
            with pytest.raises(APITimeoutError) as probe:
                await client.get_bookable_appointment(appointment)
            assert probe.value.no_free_connection
            assert breaker.state != "closed", "the probe got no answer from the studio"
            a.faults = Faults()
            held.release()


async def test_a_call_retrying_when_the_breaker_opens_raises_its_own_last_error(
    sandboxes: dict[str, Studio],
) -> None:
    # Two clients of one studio (one breaker): the first fails once and waits to retry; the
    # second's failures meanwhile open the breaker. The first then stops with its own error.
    a = sandboxes["a"]
    a.faults = Faults(rate_503=1.0)
    waiting, wake = anyio.Event(), anyio.Event()

    async def held_sleep(seconds: float) -> None:
        waiting.set()
        await wake.wait()

    settings = CircuitBreaker(failure_threshold=3)
    first = client_of(a, circuit_breaker=settings, retry_policy=RetryPolicy(max_retries=3, sleep=held_sleep))
    second = client_of(a, circuit_breaker=settings, retry_policy=RetryPolicy(max_retries=3, sleep=Sleeps()))
    before = requests_at(a)
    async with first, second, anyio.create_task_group() as tg:
        errors: list[BaseException] = []

        async def retrying() -> None:
            try:
                await first.get_bookable_appointment(1)
            except Exception as exc:  # noqa: BLE001 - examined below
                errors.append(exc)

        tg.start_soon(retrying)
        await waiting.wait()
        with pytest.raises(ServiceUnavailableError) as opened:
            await second.get_bookable_appointment(1)  # failures 2 and 3: open, no more retries
        assert any("circuit breaker opened" in note for note in opened.value.__notes__)
        wake.set()
    [error] = errors
    assert type(error) is ServiceUnavailableError, "its own last error, not CircuitOpenError"
    assert any("circuit breaker is open" in note for note in error.__notes__)
    assert requests_at(a) - before == 3


async def test_each_studio_has_its_own_breaker_shared_by_every_client_of_that_studio(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a, c = sandboxes["a"], sandboxes["c"]
    settings = CircuitBreaker(failure_threshold=2)
    a.faults = Faults(rate_503=1.0)
    async with client_of(c, http_backend, circuit_breaker=settings) as parent:
        studio_a = parent.for_studio(a.base_url, a.api_key)
        await fail(studio_a, 2)
        with pytest.raises(CircuitOpenError):
            await studio_a.get_bookable_appointment(1)
        assert parent._api.breaker is not None
        assert parent._api.breaker.state == "closed"
        assert (await parent.get_bookable_appointment(one_id(c))).id == one_id(c)
        before = requests_at(a)
        async with client_of(a, http_backend, circuit_breaker=settings) as another:
            with pytest.raises(CircuitOpenError):
                await another.get_bookable_appointment(1)
        assert requests_at(a) == before
        async with client_of(a, http_backend, circuit_breaker=None) as without:
            await fail(without, 3)
        assert requests_at(a) == before + 3, "without a breaker every call is sent"


async def test_breaker_changes_are_counted_per_studio_and_marked_on_the_calls_span(
    sandboxes: dict[str, Studio],
) -> None:
    a, c, clock = sandboxes["a"], sandboxes["c"], Clock()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        async with client_of(
            c, telemetry=telemetry, circuit_breaker=CircuitBreaker(failure_threshold=2, cooldown=5)
        ) as parent:
            studio_a = parent.for_studio(a.base_url, a.api_key)
            assert studio_a._api.breaker is not None
            studio_a._api.breaker.clock = clock
            a.faults = Faults(rate_503=1.0)
            await fail(studio_a, 2)  # the second opens it
            with pytest.raises(CircuitOpenError):
                await studio_a.get_bookable_appointment(1)
            a.faults = Faults()
            clock.advance(5)
            await studio_a.get_bookable_appointment(one_id(a))  # the probe: half open, then closed
            await parent.get_bookable_appointment(one_id(c))
        calls = sorted(
            (
                s
                for s in exporter.get_finished_spans()
                if s.name == "AppointmentsClient.get_bookable_appointment"
            ),
            key=lambda s: s.start_time or 0,
        )
        marked = [(s.attributes or {}).get("perfectgym.circuit_breaker.state") for s in calls]
        assert marked == [None, "open", None, "closed", None]
        ports = [
            (s.attributes or {}).get("server.port")
            for s in exporter.get_finished_spans()
            if s.name == "getBookableAppointment"
        ]
        # Two 503s, the call refused at once (its attempt span, nothing sent), the probe; then c's.
        assert sorted(ports) == sorted([a.port] * 4 + [c.port]), (
            "each studio client's attempts name its server"
        )
        changes: dict[tuple[Any, ...], int] = {}
        data = reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "perfectgym.client.circuit_breaker.changes":
                        for point in metric.data.data_points:
                            attributes = dict(point.attributes or {})
                            key = (
                                attributes["perfectgym.circuit_breaker.state"],
                                attributes["server.address"],
                                attributes["server.port"],
                            )
                            changes[key] = point.value
        assert changes == {
            ("open", "127.0.0.1", a.port): 1,
            ("half_open", "127.0.0.1", a.port): 1,
            ("closed", "127.0.0.1", a.port): 1,
        }
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


async def a_new_customer_and_slot(client: AppointmentsClient, studio: Studio) -> tuple[int, Any, Any]:
    """A new customer of ``studio``, a plainly bookable appointment, and its first slot three days on."""
    customer = studio.store.add_customer().id
    appointment = next(x for x in studio.store.listed() if not x.premium_only and not x.requires_confirmation)
    first = studio.store.now().date() + dt.timedelta(days=3)
    slots = await client.get_slots(appointment.id, customer_id=customer, days_ahead=3, start_date=first)
    return customer, appointment, slots[0]


async def test_a_booking_while_the_studios_breaker_is_open_sends_nothing_and_is_reported_not_booked(
    sandboxes: dict[str, Studio],
) -> None:
    a = sandboxes["a"]
    outcomes: list[Any] = []
    async with client_of(
        a, circuit_breaker=CircuitBreaker(failure_threshold=1), on_booking_outcome=outcomes.append,
        booking_check_settle=0,
    ) as client:  # fmt: skip
        customer, appointment, slot = await a_new_customer_and_slot(client, a)
        a.faults = Faults(rate_503=1.0)
        await fail(client, 1)
        before = requests_at(a)
        for validate in (True, False):
            with pytest.raises(CircuitOpenError):
                await client.book(
                    customer_id=customer, bookable_appointment_id=appointment.id, slot=slot, validate=validate
                )
        assert requests_at(a) == before
    # With validate, the validation fails before any booking request could be sent: no outcome.
    [outcome] = outcomes
    assert outcome.kind is OutcomeKind.NOT_BOOKED
    assert isinstance(outcome.error, CircuitOpenError)
    assert not [r for r in a.store.snapshot() if r.customer_id == customer and r.active]


async def test_a_booking_answered_500_is_still_found_by_its_check_while_the_breaker_is_open(
    sandboxes: dict[str, Studio],
) -> None:
    # The 500 after the booking was made opens the breaker; the booking check's reads still go
    # out (their answer decides between booked and unknown), and the breaker stays open.
    a = sandboxes["a"]
    outcomes: list[Any] = []
    async with client_of(
        a, circuit_breaker=CircuitBreaker(failure_threshold=1), on_booking_outcome=outcomes.append,
        booking_check_settle=0,
    ) as client:  # fmt: skip
        customer, appointment, slot = await a_new_customer_and_slot(client, a)
        a.faults = Faults(rate_500_after_commit=1.0, max_faults=1)
        booking = await client.book(
            customer_id=customer, bookable_appointment_id=appointment.id, slot=slot, validate=False
        )
        assert client._api.breaker is not None
        assert client._api.breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await client.get_booking(booking.booking_id)
    [made] = [r for r in a.store.snapshot() if r.customer_id == customer and r.active]
    assert booking.booking_id == made.id
    [outcome] = outcomes
    assert (outcome.kind, outcome.booking_id) == (OutcomeKind.BOOKED, made.id)


# == for_studio =======================================================================================


async def test_a_studio_client_sends_its_own_key_to_its_own_studio_over_the_parents_connections(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a, c = sandboxes["a"], sandboxes["c"]
    async with client_of(a, http_backend, max_connections=4) as parent:
        studio_c = parent.for_studio(c.base_url, c.api_key)
        assert studio_c._api.connections is parent._api.connections
        assert studio_c._api.backend is parent._api.backend
        assert studio_c._api.retry_policy is parent._api.retry_policy
        assert studio_c._api.base_url == c.base_url == studio_c.base_url
        assert studio_c._api.breaker is not parent._api.breaker
        at_a, at_c = requests_at(a), requests_at(c)
        # The key decides: each sandbox answers its own key only (401 otherwise).
        assert await studio_c.check_api_key()
        assert await parent.check_api_key()
        appointment = c.store.listed()[0]
        assert (await studio_c.get_bookable_appointment(appointment.id)).title == appointment.title
        assert (requests_at(a) - at_a, requests_at(c) - at_c) == (1, 2)
        assert c.api_key not in repr(studio_c)
        assert c.base_url in repr(studio_c)
        assert "'***'" in repr(studio_c)
        if http_backend == "httpx":
            backend: Any = parent._api.backend
            assert backend.client is studio_c._api.backend.client  # type: ignore[attr-defined]
        with pytest.raises(ConfigurationError):
            parent.for_studio("ftp://studio.example", "key")
        with pytest.raises(ConfigurationError):
            parent.for_studio(c.base_url, "a key\nwith a newline inside")


async def test_closing_a_studio_client_closes_nothing_it_shares(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a, b, c = sandboxes["a"], sandboxes["b"], sandboxes["c"]
    async with client_of(a, http_backend) as parent:
        studio_b = parent.for_studio(b.base_url, b.api_key)
        studio_c = parent.for_studio(c.base_url, c.api_key)
        async with studio_b:
            await studio_b.get_bookable_appointment(one_id(b))
        before = requests_at(b)
        with pytest.raises(APIConnectionError, match="not sent: the client has been closed") as caught:
            await studio_b.get_bookable_appointment(one_id(b))
        assert not caught.value.may_have_reached_server
        assert requests_at(b) == before
        assert (await parent.get_bookable_appointment(one_id(a))).id == one_id(a)
        assert (await studio_c.get_bookable_appointment(one_id(c))).id == one_id(c)


@pytest.mark.parametrize("through", ["studio client", "its copy"])
async def test_closing_the_parent_waits_for_a_studio_clients_booking_then_every_studio_client_stops(
    sandboxes: dict[str, Studio], http_backend: str, through: str
) -> None:
    a, c = sandboxes["a"], sandboxes["c"]
    outcomes: list[Any] = []
    parent = client_of(a, http_backend, on_booking_outcome=outcomes.append, booking_check_settle=0)
    studio_c = parent.for_studio(c.base_url, c.api_key)
    if through == "its copy":  # per request, as a web handler would: only the copy is kept
        studio_c = studio_c.with_options(deadline=WAIT)
    try:
        customer = c.store.add_customer().id
        appointment = next(x for x in c.store.listed() if not x.premium_only and not x.requires_confirmation)
        first = c.store.now().date() + dt.timedelta(days=3)
        slot = (
            await studio_c.get_slots(appointment.id, customer_id=customer, days_ahead=3, start_date=first)
        )[0]
        held = c.on_request = Held("POST", BOOK)
        closed: list[list[Any]] = []

        async def close() -> None:
            await parent.aclose()
            closed.append(list(outcomes))

        async with anyio.create_task_group() as tg:
            booking = anyio.CancelScope()

            async def book() -> None:
                with booking:
                    await studio_c.book(
                        customer_id=customer, bookable_appointment_id=appointment.id, slot=slot
                    )

            tg.start_soon(book)
            await held.arrived()
            booking.cancel()  # the caller goes away; its booking runs on
            tg.start_soon(close)
            await anyio.wait_all_tasks_blocked()
            assert closed == [], "the parent's close waits for the studio client's booking"
            held.release()
        [[outcome]] = closed
        assert outcome.kind is OutcomeKind.BOOKED
        assert outcome.caller_cancelled
        made = [r for r in c.store.snapshot() if r.customer_id == customer and r.active]
        assert [r.id for r in made] == [outcome.booking_id]
        before = requests_at(c)
        with pytest.raises(APIConnectionError, match="has been closed"):
            await studio_c.get_bookable_appointment(one_id(c))
        with pytest.raises(APIConnectionError, match="has been closed"):
            await parent.for_studio(c.base_url, c.api_key).get_bookable_appointment(one_id(c))
        assert requests_at(c) == before
    finally:
        await parent.aclose()


async def test_a_studio_client_has_a_rate_limit_budget_of_its_own() -> None:
    # Studios of its own: the in-process budget is kept per base URL and key for the process,
    # and the module's studios keep their base URLs from test to test.
    async with (
        Studios(3, seed=3, rate_limit=None) as studios,
        client_of(studios[0], rate_limit=RateLimit(requests=2, seconds=60), max_rate_limit_wait=0) as parent,
    ):
        one, two, three = studios
        inherits = parent.for_studio(two.base_url, two.api_key)
        own = parent.for_studio(three.base_url, three.api_key, rate_limit=RateLimit(requests=3, seconds=60))
        assert parent._api.throttle is not None
        assert inherits._api.throttle is not None
        assert inherits._api.throttle._storage is parent._api.throttle._storage  # one in-process store
        assert inherits._api.throttle.namespace != parent._api.throttle.namespace
        for client, sb, turns in ((parent, one, 2), (inherits, two, 2), (own, three, 3)):
            for _ in range(turns):
                await client.get_bookable_appointment(one_id(sb))
            with pytest.raises(RateLimitError):
                await client.get_bookable_appointment(one_id(sb))
            assert requests_at(sb) == turns


# == the fair share of the pool =======================================================================


async def test_a_slow_studio_gets_its_share_of_the_pool_and_a_fast_one_is_served_meanwhile(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    slow, fast = sandboxes["a"], sandboxes["c"]
    held = slow.on_request = Held()  # every request to the slow studio waits there
    async with client_of(slow, http_backend, max_connections=8) as parent:
        studio_fast = parent.for_studio(fast.base_url, fast.api_key)
        share = parent._api.connections.share
        assert share is not None
        assert share.cap() == 2, "a quarter of 8 once two studios share the pool"
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(parent.get_bookable_appointment, one_id(slow))
            await held.arrived(2)
            await anyio.wait_all_tasks_blocked()
            assert share.in_flight == 2
            before = requests_at(fast)
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as quick:
                    for _ in range(10):
                        quick.start_soon(studio_fast.get_bookable_appointment, one_id(fast))
            assert requests_at(fast) - before == 10
            assert held.arrivals == 2, "the slow studio's others still wait for its share"
            held.release()
        assert held.arrivals == 12
        assert share.in_flight == 0


async def test_max_connections_per_studio_caps_a_studio_alone_on_the_pool(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a = sandboxes["a"]
    held = a.on_request = Held()
    async with client_of(a, http_backend, max_connections=8, max_connections_per_studio=3) as client:
        share = client._api.connections.share
        assert share is not None
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(client.get_bookable_appointment, one_id(a))
            await held.arrived(3)
            await anyio.wait_all_tasks_blocked()
            assert (share.in_flight, held.arrivals) == (3, 3)
            held.release()
        assert (share.in_flight, held.arrivals) == (0, 6)
    with pytest.raises(ValueError, match="max_connections_per_studio"):
        AppointmentsClient(api_key="k", base_url="https://t.example", max_connections_per_studio=0)


async def test_freed_connections_go_to_the_waiting_studios_in_turn(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a, b, c = sandboxes["a"], sandboxes["b"], sandboxes["c"]
    gate = Turnstile()
    a.on_request, b.on_request, c.on_request = gate.hook("a"), gate.hook("b"), gate.hook("c")
    async with client_of(a, http_backend, max_connections=1) as parent:
        studio_b = parent.for_studio(b.base_url, b.api_key)
        studio_c = parent.for_studio(c.base_url, c.api_key)
        async with anyio.create_task_group() as tg:
            tg.start_soon(parent.get_bookable_appointment, one_id(a))
            await gate.arrived(1)
            # Waiting in this order: two more of a's, then b's, then c's.
            for client, sb in ((parent, a), (parent, a), (studio_b, b), (studio_c, c)):
                tg.start_soon(client.get_bookable_appointment, one_id(sb))
                await anyio.wait_all_tasks_blocked()
            for count in range(2, 6):
                gate.let_one_through()
                await gate.arrived(count)
            gate.open()
    assert gate.order == ["a", "a", "b", "c", "a"], "round robin, not first come first served"


async def test_a_call_cancelled_while_waiting_for_a_connection_takes_none(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a = sandboxes["a"]
    held = a.on_request = Held(first=1)
    async with client_of(a, http_backend, max_connections=1) as client:
        share = client._api.connections.share
        assert share is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get_bookable_appointment, one_id(a))
            await held.arrived()
            with anyio.CancelScope() as waiting:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(client.get_bookable_appointment, one_id(a))
                    await anyio.wait_all_tasks_blocked()
                    assert share.in_flight == 1
                    waiting.cancel()
            held.release()
        assert share.in_flight == 0
        assert (await client.get_bookable_appointment(one_id(a))).id == one_id(a)
        assert share.in_flight == 0
        assert held.arrivals == 2, "the cancelled call sent nothing"


async def test_a_connection_granted_to_a_call_cancelled_before_it_ran_goes_back() -> None:
    share = FairShare(total=1, per_studio=None)
    entered: list[bool] = []
    waiter = anyio.CancelScope()
    studio = "https://a.example"
    open_client = SimpleNamespace(closed=False)

    async def second() -> None:
        with waiter:
            turn = Turn(share, studio, None, open_client)
            try:
                if not turn.take_now():
                    await turn.wait()
                entered.append(True)
            finally:
                turn.give_back()

    async with anyio.create_task_group() as tg:
        first = Turn(share, studio, None, open_client)
        assert first.take_now()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert share.in_flight == 1
        first.give_back()
        # Freed and granted to the waiting call, which is cancelled before it runs again.
        waiter.cancel()
    assert share.in_flight == 0
    assert share._waiting == {}
    assert share._by_studio == {}


async def test_waiters_of_different_patience_each_give_up_at_their_own_deadline() -> None:
    # On asyncio one timer serves every waiter of the share (armed for the earliest deadline,
    # then for the next); on trio each waiter has its own. Either way: the hasty one, arriving
    # second, gives up first with a no-free-connection failure; the patient one still gets the
    # connection once it is freed.
    share = FairShare(total=1, per_studio=None)
    assert share.take("https://a.example")
    outcomes: dict[str, object] = {}
    hasty_done = anyio.Event()

    async def wait(name: str, patience: float, done: anyio.Event | None = None) -> None:
        try:
            await share.wait("https://a.example", patience)
        except SendFailure as failure:
            outcomes[name] = failure
        else:
            outcomes[name] = "granted"
            share.free("https://a.example")
        if done is not None:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "patient", WAIT * 10)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(wait, "hasty", 0.05, hasty_done)
        with anyio.fail_after(WAIT):
            await hasty_done.wait()
        failure = outcomes["hasty"]
        assert isinstance(failure, SendFailure)
        assert (failure.no_free_connection, failure.timed_out, failure.reached_server) == (True, True, False)
        assert "patient" not in outcomes, "the patient waiter still waits"
        assert len(share._waiting["https://a.example"]) == 1
        share.free("https://a.example")
    assert outcomes["patient"] == "granted"
    assert share.in_flight == 0
    assert share._waiting == {}


# == TLS and the lazy httpx client ====================================================================


async def test_clients_without_a_context_of_their_own_share_the_process_one(
    sandboxes: dict[str, Studio], tls: tuple[Sandbox, trustme.CA, Path]
) -> None:
    a, c = sandboxes["a"], sandboxes["c"]
    sb, ca, _ = tls
    own = trusting(ca)
    async with client_of(a) as one, client_of(c) as two, client_of(sb, ssl_context=own) as three:
        for client, studio in ((one, a), (two, c), (three, sb)):
            await client.get_bookable_appointment(one_id(studio))
        contexts = [
            client._api.backend.client._transport._pool._ssl_context  # type: ignore[attr-defined]
            for client in (one, two, three)
        ]
    assert contexts[0] is contexts[1] is shared_ssl_context()
    assert contexts[2] is own


async def test_an_unused_client_opens_nothing(sandboxes: dict[str, Studio], http_backend: str) -> None:
    a = sandboxes["a"]
    before = a.stats["connections"]
    client = client_of(a, http_backend)
    backend: Any = client._api.backend
    async with client:
        pass
    assert getattr(backend, "_client", None) is None
    assert getattr(backend, "_session", None) is None
    assert a.stats["connections"] == before


async def test_a_callers_own_ssl_context_is_used(
    tls: tuple[Sandbox, trustme.CA, Path], http_backend: str
) -> None:
    sb, ca, _ = tls
    appointment = one_id(sb)
    async with client_of(sb, http_backend, ssl_context=trusting(ca)) as client:
        assert (await client.get_bookable_appointment(appointment)).id == appointment
    async with client_of(sb, http_backend) as client:  # the process's context does not trust it
        with pytest.raises(APIConnectionError) as caught:
            await client.get_bookable_appointment(appointment)
        assert caught.value.certificate_rejected


async def test_ssl_context_must_be_a_context_and_not_come_with_an_http_client() -> None:
    with pytest.raises(TypeError, match="ssl_context"):
        AppointmentsClient(api_key="k", base_url="https://t.example", ssl_context="/etc/ssl/cert.pem")  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="ssl_context or http_client"):
            AppointmentsClient(
                api_key="k",
                base_url="https://t.example",
                http_client=http,
                ssl_context=ssl.create_default_context(),
            )


async def test_ssl_cert_file_is_trusted_by_a_client_made_after_it_is_set(
    tls: tuple[Sandbox, trustme.CA, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb, _, ca_file = tls
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with client_of(sb) as client:
        assert (await client.get_bookable_appointment(one_id(sb))).id == one_id(sb)


async def test_a_call_waiting_for_a_connection_when_the_client_closes_sends_nothing(
    sandboxes: dict[str, Studio], http_backend: str
) -> None:
    a = sandboxes["a"]
    held = a.on_request = Held(first=1)
    client = client_of(a, http_backend, max_connections=1)
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await client.get_bookable_appointment(one_id(a))
        except Exception as exc:  # noqa: BLE001 - examined below
            errors.append(exc)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await held.arrived()
            tg.start_soon(call)  # waits for the one connection
            await anyio.wait_all_tasks_blocked()
            await client.aclose()
            held.release()
    finally:
        await client._api.backend.aclose()  # whatever was opened after the close (nothing, if all is well)
    assert held.arrivals == 1, "the waiting call was sent after the client closed"
    [cut_off, waiting] = errors
    assert isinstance(cut_off, APIConnectionError)
    assert isinstance(waiting, APIConnectionError), repr(waiting)
    assert "has been closed" in str(waiting)
    assert not waiting.may_have_reached_server
