"""OpenTelemetry, opt-in: a span per public call and per HTTP attempt, the metrics, ``traceparent``
only when asked, nothing secret in any of it, and no ``opentelemetry`` import without it.

Spans and metrics are read back from the SDK's in-memory exporter and reader, with providers
passed to each client (never the global ones: a test leaves no state behind). Every test runs on
both HTTP backends: the fake API (tests/fakeapi.py) for retries, faults and the headers sent, the
sandbox over sockets for the booking flows.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest
from fakeapi import BOOK, FakeAPI, first_slot, no_sleep, status_once
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sandbox_studio import ServerHook

from perfectgym_appointments_client import (
    AppointmentsClient,
    ConfigurationError,
    NotFoundError,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    Telemetry,
)
from perfectgym_appointments_client._throttling import _Clock
from perfectgym_appointments_client.sandbox import Faults, Sandbox

pytestmark = pytest.mark.anyio

ONE = "/v1/appointments/bookable/1"


@attrs.define
class Otel:
    """An SDK tracer and meter provider of one test, and what they recorded."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def telemetry(self, **kwargs: Any) -> Telemetry:
        return Telemetry(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **kwargs)

    @property
    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every point of ``metric``."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found += [(dict(p.attributes or {}), p) for p in m.data.data_points]
        return found

    def total(self, metric: str, **attributes: Any) -> int:
        return sum(
            p.value
            for a, p in self.points(metric)
            if all(a.get(k.replace("__", ".")) == v for k, v in attributes.items())
        )

    def everything_shown(self) -> str:
        """Every name, attribute, event and status of every span and every metric point."""
        shown: list[str] = []
        for span in self.exporter.get_finished_spans():
            shown += [span.name, str(span.status.description), repr(dict(span.attributes or {}))]
            shown += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    shown += [m.name] + [repr(dict(p.attributes or {})) for p in m.data.data_points]
        return "\n".join(shown)


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield Otel(exporter, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def tree(spans: list[ReadableSpan], shown: tuple[str, ...] = ()) -> list[str]:
    """The spans as an indented tree, children in the order they started; each line its name,
    kind and the ``shown`` attributes it has."""
    ids = {s.context.span_id for s in spans if s.context}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            attributes = dict(span.attributes or {})
            extra = " ".join(f"{k}={attributes[k]}" for k in shown if k in attributes)
            lines.append(
                f"{'  ' * depth}{span.name} ({span.kind.name.lower()}){' ' + extra if extra else ''}"
            )
            walk(span.context.span_id if span.context else None, depth + 1)

    walk(None, 0)
    return lines


def fake_client(api: FakeAPI, otel: Otel, http_backend: str, **kwargs: Any) -> AppointmentsClient:
    """A client of the fake API that retries at once, traced into ``otel``; on httpx a base URL of
    its own (the rate limit's budget and lockouts are kept per key and base URL, process-wide)."""
    settings = api.client_kwargs()
    if http_backend == "httpx":
        settings["base_url"] = f"https://t{uuid.uuid4().hex[:10]}.example"
    settings.update(kwargs)
    settings.setdefault("telemetry", otel.telemetry())
    return AppointmentsClient(
        **settings,
        retry_policy=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.02, sleep=no_sleep),
    )


# -- configuration -----------------------------------------------------------------------------------


def test_telemetry_without_the_opentelemetry_api_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("opentelemetry", "opentelemetry.trace", "opentelemetry.metrics"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    with pytest.raises(ConfigurationError, match=r"\[otel\]"):
        Telemetry()


def test_telemetry_settings_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(TypeError, match="tracer_provider"):
        Telemetry(tracer_provider=object())
    with pytest.raises(TypeError, match="meter_provider"):
        Telemetry(meter_provider="global")
    with pytest.raises(TypeError, match="propagate"):
        Telemetry(propagate=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="telemetry must be a Telemetry"):
        AppointmentsClient(api_key="k", base_url="https://t.example", telemetry=True)  # type: ignore[arg-type]


def test_without_telemetry_opentelemetry_is_never_imported() -> None:
    code = textwrap.dedent(
        """
        import sys
        import anyio, httpx
        from perfectgym_appointments_client import AppointmentsClient, Telemetry

        def answer(request):
            return httpx.Response(200, json={"id": 1, "title": "Yoga"})

        async def main():
            http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
            async with http, AppointmentsClient(api_key="k", base_url="https://t.example", http_client=http) as c:
                await c.get_bookable_appointment(1)
                c._flows  # the booking flows, set up

        anyio.run(main)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- spans and metrics -----------------------------------------------------------------------------


@asynccontextmanager
async def traced_sandbox(
    otel: Otel, http_backend: str, **client: Any
) -> AsyncIterator[tuple[Sandbox, AppointmentsClient, ServerHook]]:
    server = ServerHook()
    async with Sandbox(seed=3, rate_limit=None, on_request=server) as sb:
        try:
            async with AppointmentsClient(
                api_key=sb.api_key,
                base_url=sb.base_url,
                http_backend=http_backend,
                booking_check_settle=0,
                retry_policy=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.05),
                telemetry=otel.telemetry(),
                **client,
            ) as c:
                yield sb, c, server
        finally:
            server.release_all()


async def test_book_is_one_call_span_over_its_validate_book_and_check_attempts(
    otel: Otel, http_backend: str
) -> None:
    async with traced_sandbox(otel, http_backend) as (sb, client, _):
        customer, port = sb.store.add_customer().id, sb.port
        appointment = next(a for a in sb.store.listed() if not a.premium_only and not a.requires_confirmation)
        first = sb.store.now().date() + dt.timedelta(days=3)  # inside the bookings list's window
        slots = await client.get_slots(appointment.id, customer_id=customer, days_ahead=3, start_date=first)
        otel.exporter.clear()
        # The booking is made and its answer lost: the booking check finds it.
        sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        booking = await client.book(
            customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0]
        )

    shown = ("http.request.method", "http.response.status_code", "error.type", "perfectgym.booking.outcome")
    lines = tree(otel.spans, shown)
    assert lines == [
        "AppointmentsClient.book (internal) perfectgym.booking.outcome=booked",
        "  validateForAppointmentBooking (client) http.request.method=POST http.response.status_code=200",
        "  bookAppointmentBooking (client) http.request.method=POST error.type=APIConnectionError",
        "  getAppointmentBookings (client) http.request.method=GET http.response.status_code=200",
    ]
    [call] = otel.named("AppointmentsClient.book")
    assert call.kind is SpanKind.INTERNAL
    assert call.status.status_code is StatusCode.UNSET
    attempts = [s for s in otel.spans if s.kind is SpanKind.CLIENT]
    assert {s.context.trace_id for s in otel.spans if s.context} == {call.context.trace_id}  # type: ignore[union-attr]
    for span in attempts:
        attributes = dict(span.attributes or {})
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == port
        assert attributes["perfectgym.operation_id"] == span.name
        assert str(attributes["url.template"]).startswith("/v1/appointments/")
    [lost] = otel.named("bookAppointmentBooking")
    assert lost.status.status_code is StatusCode.ERROR
    assert otel.total("perfectgym.client.booking.outcomes", perfectgym__booking__outcome="booked") == 1
    durations = {
        (a["perfectgym.operation_id"], a.get("http.response.status_code"), a.get("error.type")): p.count
        for a, p in otel.points("http.client.request.duration")
        if a["perfectgym.operation_id"] != "getBookableAppointmentSlots"
    }
    assert durations == {
        ("validateForAppointmentBooking", 200, None): 1,
        ("bookAppointmentBooking", None, "APIConnectionError"): 1,
        ("getAppointmentBookings", 200, None): 1,
    }
    shown_text = otel.everything_shown()
    for secret in (sb.api_key, str(customer), str(booking.booking_id), str(appointment.id)):
        assert secret not in shown_text


async def test_a_retried_read_is_two_attempt_spans_the_second_a_resend(otel: Otel, http_backend: str) -> None:
    api = FakeAPI()
    api.faults.append(status_once(503, "GET", ONE))
    async with fake_client(api, otel, http_backend) as client:
        await client.get_bookable_appointment(1)

    assert tree(otel.spans, ("http.response.status_code", "error.type", "http.request.resend_count")) == [
        "AppointmentsClient.get_bookable_appointment (internal)",
        "  getBookableAppointment (client) http.response.status_code=503 error.type=503",
        "  getBookableAppointment (client) http.response.status_code=200 http.request.resend_count=1",
    ]
    [call] = otel.named("AppointmentsClient.get_bookable_appointment")
    assert dict(call.attributes or {})["perfectgym.retry_count"] == 1
    first, second = otel.named("getBookableAppointment")
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is StatusCode.UNSET
    assert (
        dict(second.attributes or {})["url.template"] == "/v1/appointments/bookable/{bookable_appointment_id}"
    )
    assert otel.total("perfectgym.client.retries", perfectgym__operation_id="getBookableAppointment") == 1
    statuses = sorted(
        a.get("http.response.status_code") for a, _ in otel.points("http.client.request.duration")
    )
    assert statuses == [200, 503]


async def test_a_failed_call_names_its_error_type_on_both_spans(otel: Otel, http_backend: str) -> None:
    api = FakeAPI()
    async with fake_client(api, otel, http_backend) as client:
        with pytest.raises(NotFoundError):
            await client.get_booking(424242)

    [call] = otel.named("AppointmentsClient.get_booking")
    [attempt] = otel.named("getAppointmentBooking")
    assert dict(call.attributes or {})["error.type"] == "NotFoundError"
    assert call.status.status_code is StatusCode.ERROR
    assert dict(attempt.attributes or {})["error.type"] == "404"
    assert not call.events  # no exception messages: they may name a customer
    assert not attempt.events
    assert "424242" not in otel.everything_shown()


async def test_a_rate_limit_wait_and_a_lockout_are_on_the_spans_and_in_the_metrics(
    otel: Otel, http_backend: str
) -> None:
    api = FakeAPI()
    clock = SteppingClock()
    async with fake_client(api, otel, http_backend, rate_limit=RateLimit(requests=100, seconds=1)) as client:
        assert client._api.throttle is not None
        client._api.throttle._clock = clock
        # A 429 without Retry-After: the endpoint is locked for the span (1 s); this call may wait
        # 0.1 s only, so its retry gives up without sending.
        api.faults.append(status_once(429, "GET", ONE))
        with pytest.raises(RateLimitError):
            await client.with_options(max_rate_limit_wait=0.1).get_bookable_appointment(1)
        assert (
            otel.total(
                "perfectgym.client.rate_limit.lockouts", perfectgym__operation_id="getBookableAppointment"
            )
            == 1
        )
        assert otel.total("perfectgym.client.rate_limit.waits", perfectgym__rate_limit__gave_up=True) == 1
        otel.exporter.clear()
        await client.get_bookable_appointment(1)  # waits for the reopening (the clock steps), then sent

    assert api.count("GET", ONE) == 2  # the 429 and the last call: the retry that gave up sent nothing
    assert otel.total("perfectgym.client.rate_limit.waits", perfectgym__rate_limit__gave_up=False) == 1
    [(_, waited)] = otel.points("perfectgym.client.rate_limit.wait.duration")
    assert waited.count == 1
    assert 0.9 <= waited.sum <= 1.1
    [call] = otel.named("AppointmentsClient.get_bookable_appointment")
    [attempt] = otel.named("getBookableAppointment")
    assert 0.9 <= dict(attempt.attributes or {})["perfectgym.rate_limit.wait_s"] <= 1.1
    assert (
        dict(call.attributes or {})["perfectgym.rate_limit.wait_s"]
        == dict(attempt.attributes or {})["perfectgym.rate_limit.wait_s"]
    )


async def test_a_rate_limit_wait_that_gives_up_is_an_attempt_span_with_nothing_sent(
    otel: Otel, http_backend: str
) -> None:
    api = FakeAPI()
    async with fake_client(api, otel, http_backend, rate_limit=RateLimit(requests=100, seconds=1)) as client:
        assert client._api.throttle is not None
        client._api.throttle._clock = SteppingClock()
        api.faults.append(status_once(429, "GET", ONE))
        with pytest.raises(RateLimitError):
            await client.with_options(max_rate_limit_wait=0.1).get_bookable_appointment(1)

    refused, gave_up = otel.named("getBookableAppointment")
    assert dict(refused.attributes or {})["http.response.status_code"] == 429
    assert "http.response.status_code" not in dict(gave_up.attributes or {})
    assert dict(gave_up.attributes or {})["error.type"] == "RateLimitError"
    assert [a.get("http.response.status_code") for a, _ in otel.points("http.client.request.duration")] == [
        429
    ]


class SteppingClock(_Clock):
    """The throttle's time, which a wait moves on at once (one caller at a time: no ordering)."""

    def __init__(self) -> None:
        self._now = time.time()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self._now += seconds
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("propagate", [False, True])
async def test_traceparent_is_sent_only_when_asked_for(
    otel: Otel, http_backend: str, propagate: bool
) -> None:
    api = FakeAPI()
    async with fake_client(api, otel, http_backend, telemetry=otel.telemetry(propagate=propagate)) as client:
        await client.get_bookable_appointment(1)
    [request] = api.requests
    [attempt] = otel.named("getBookableAppointment")
    assert "baggage" not in request.headers
    if not propagate:
        assert "traceparent" not in request.headers
        return
    context = attempt.context
    assert context is not None
    assert (
        request.headers["traceparent"]
        == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


async def test_a_booking_whose_caller_was_cancelled_still_puts_its_outcome_on_the_call_span(
    otel: Otel, http_backend: str
) -> None:
    api = FakeAPI()
    async with fake_client(api, otel, http_backend) as client:
        slot = await first_slot(client)
        gate = api.gate("POST", BOOK)
        caller = anyio.CancelScope()

        async def book() -> None:
            with caller:
                await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)

        async with anyio.create_task_group() as tg:
            tg.start_soon(book)
            with anyio.fail_after(10):
                await gate.arrived.wait()
            caller.cancel()  # the request is at the server: the flow runs on
            gate.opened.set()

    assert caller.cancelled_caught
    [call] = otel.named("AppointmentsClient.book")
    attributes = dict(call.attributes or {})
    assert attributes["perfectgym.booking.outcome"] == "booked"
    assert attributes["perfectgym.cancelled"] is True
    assert [s.name for s in otel.spans if s.parent and s.parent.span_id == call.context.span_id] == [  # type: ignore[union-attr]
        "validateForAppointmentBooking",
        "bookAppointmentBooking",
    ]
    assert otel.total("perfectgym.client.booking.outcomes", perfectgym__booking__operation="book") == 1
