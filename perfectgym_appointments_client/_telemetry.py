"""OpenTelemetry traces and metrics, opt-in: ``AppointmentsClient(telemetry=Telemetry())``.

Without it nothing here runs and ``opentelemetry`` is never imported; the request loop, the
throttle and the booking flows each test one attribute for None. With it:

* a span per public call (``AppointmentsClient.book``, INTERNAL), current while the call runs, so
  that everything the call sends is under it, also from the tasks it starts (contextvars);
* a span per HTTP attempt (CLIENT), named by operationId (``bookAppointmentBooking``), begun
  before the attempt's rate-limit turn, so that a wait shows inside it;
* the metrics of :data:`METRICS`.

Attributes follow the HTTP client semantic conventions where one exists (``http.request.method``,
``http.response.status_code``, ``server.address``, ``server.port``, ``url.template``,
``error.type``, ``http.request.resend_count``) and are ``perfectgym.*`` otherwise. No attribute
holds the key, an id or a query value: no ``url.full``, the path as the spec's template, errors by
type (never their messages, which may name a customer), no exception events.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from ._exceptions import ConfigurationError
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["METRICS", "SCOPE", "Attempt", "Instruments", "Telemetry"]

SCOPE = "perfectgym_appointments_client"
# name: (instrument, unit, description)
METRICS = {
    "http.client.request.duration": ("histogram", "s", "Duration of HTTP client requests"),
    "perfectgym.client.retries": ("counter", "{retry}", "Requests sent again after a failed attempt"),
    "perfectgym.client.rate_limit.waits": (
        "counter",
        "{wait}",
        "Requests that waited for their client-side rate-limit turn (gave_up: the wait was longer than the call may take)",
    ),
    "perfectgym.client.rate_limit.wait.duration": (
        "histogram",
        "s",
        "How long a request waited for its client-side rate-limit turn",
    ),
    "perfectgym.client.rate_limit.lockouts": (
        "counter",
        "{lockout}",
        "429 answers without Retry-After: the API refuses the endpoint for the rate limit's span",
    ),
    "perfectgym.client.booking.outcomes": (
        "counter",
        "{outcome}",
        "How booking flows (book, cancel, reschedule) ended, by kind",
    ),
    "perfectgym.client.circuit_breaker.changes": (
        "counter",
        "{change}",
        "A studio's circuit breaker changed state (open, half_open, closed), by state and server",
    ),
}
# The semantic conventions' advice for http.client.request.duration (seconds).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_EXTRA = "pip install 'perfectgym-appointments-client[otel]'"


def _provider(kind: str, abstract: str) -> Any:
    def check(instance: Telemetry, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        module = __import__(f"opentelemetry.{kind}", fromlist=[abstract])
        if not isinstance(value, getattr(module, abstract)):
            raise TypeError(
                f"{attribute.name} must be an opentelemetry {abstract} or None (the global one), "
                f"got {type(value).__name__}"
            )

    return check


def _flag(instance: Telemetry, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be True or False, got {value!r}")


def _api_installed() -> None:
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(f"telemetry needs the opentelemetry-api package: {_EXTRA}") from exc


@attrs.frozen(kw_only=True)
class Telemetry:
    """OpenTelemetry traces and metrics for a client: ``AppointmentsClient(telemetry=Telemetry())``.

    Needs ``opentelemetry-api`` (the ``[otel]`` extra; else :class:`ConfigurationError`); the SDK
    and exporters are the application's. ``tracer_provider`` and ``meter_provider`` default to the
    global ones (``None``). With ``propagate=True`` each request carries the W3C trace context
    (``traceparent``, and ``tracestate`` when there is one) of its attempt span; by default the API
    is sent none. Baggage is never sent.

    Spans: one per public call, ``AppointmentsClient.<method>`` (kind INTERNAL), with
    ``perfectgym.retry_count`` and ``perfectgym.rate_limit.wait_s`` over the whole call,
    ``perfectgym.booking.outcome`` (an :class:`OutcomeKind` value) for the booking flows, and
    ``error.type`` (the exception's class name) when it raised; one per HTTP attempt, named by
    its operationId (``validateForAppointmentBooking``, kind CLIENT), with ``http.request.method``,
    ``url.template`` (the spec's path, no ids), ``server.address``, ``server.port``,
    ``http.response.status_code``, ``http.request.resend_count`` (from the second attempt on),
    ``perfectgym.operation_id``, ``perfectgym.rate_limit.wait_s`` and ``error.type`` (the status
    for an HTTP error, else the exception's class name). No span or metric holds the API key, a
    customer or booking id, or a query value; exceptions are recorded by type, never by message.

    Metrics: ``http.client.request.duration`` (s, by operation, method, status and error type),
    ``perfectgym.client.retries``, ``perfectgym.client.rate_limit.waits`` (and
    ``perfectgym.client.rate_limit.wait.duration``, s), ``perfectgym.client.rate_limit.lockouts``
    (by operation), ``perfectgym.client.booking.outcomes`` (by flow and outcome kind),
    ``perfectgym.client.circuit_breaker.changes`` (by state and server: a studio's breaker opened,
    let a probe through, closed); a call span also carries ``perfectgym.circuit_breaker.state``
    when its studio's breaker changed during it.

    Listings (``bookable_appointments()``) are iterated by the caller, not called: each page's
    request is an attempt span under whatever span is current, with no call span of its own.
    """

    tracer_provider: Any = attrs.field(default=None, validator=_provider("trace", "TracerProvider"))
    meter_provider: Any = attrs.field(default=None, validator=_provider("metrics", "MeterProvider"))
    propagate: bool = attrs.field(default=False, validator=_flag)

    def __attrs_pre_init__(self) -> None:
        _api_installed()


@attrs.define
class _Call:
    """The public call running now (a context variable: the tasks it starts share it)."""

    span: Span
    retries: int = 0
    rate_limit_wait: float = 0.0


_current_call: ContextVar[_Call | None] = ContextVar("_current_call", default=None)


def _server_attributes(base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    return {
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
    }


class Instruments:
    """A client's tracer, meter and instruments, made once from its :class:`Telemetry`."""

    def __init__(self, telemetry: Telemetry, base_url: str) -> None:
        from opentelemetry import metrics, trace

        self.telemetry = telemetry
        self._trace = trace
        tracer_provider = telemetry.tracer_provider or trace.get_tracer_provider()
        meter_provider = telemetry.meter_provider or metrics.get_meter_provider()
        self.tracer = tracer_provider.get_tracer(SCOPE, __version__)
        meter = meter_provider.get_meter(SCOPE, __version__)
        made: dict[str, Any] = {}
        for name, (kind, unit, description) in METRICS.items():
            if kind == "counter":
                made[name] = meter.create_counter(name, unit=unit, description=description)
                continue
            try:
                made[name] = meter.create_histogram(
                    name, unit=unit, description=description,
                    explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
                )  # fmt: skip
            except TypeError:  # an opentelemetry-api before 1.23: no advice, the SDK's buckets
                made[name] = meter.create_histogram(name, unit=unit, description=description)
        self.duration = made["http.client.request.duration"]
        self.retries = made["perfectgym.client.retries"]
        self.waits = made["perfectgym.client.rate_limit.waits"]
        self.wait_time = made["perfectgym.client.rate_limit.wait.duration"]
        self.lockouts = made["perfectgym.client.rate_limit.lockouts"]
        self.outcomes = made["perfectgym.client.booking.outcomes"]
        self.breaker = made["perfectgym.client.circuit_breaker.changes"]
        self.server = _server_attributes(base_url)
        self.inject: Any = None
        if telemetry.propagate:
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            self.inject = TraceContextTextMapPropagator().inject

    # -- a public call ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def call(self, method: str) -> Iterator[None]:
        trace = self._trace
        span = self.tracer.start_span(f"AppointmentsClient.{method}", kind=trace.SpanKind.INTERNAL)
        call = _Call(span)
        token = _current_call.set(call)
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                yield
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                raise
            except BaseException:  # cancelled (by its caller, a timeout): not the call's failure
                span.set_attribute("perfectgym.cancelled", True)
                raise
            finally:
                _current_call.reset(token)
                if call.retries:
                    span.set_attribute("perfectgym.retry_count", call.retries)
                if call.rate_limit_wait:
                    span.set_attribute("perfectgym.rate_limit.wait_s", round(call.rate_limit_wait, 6))
                span.end()

    # -- an HTTP attempt -------------------------------------------------------------------------
    def attempt(self, operation: Any, method: str, retry_number: int) -> Attempt:
        name: str = operation.OPERATION_ID
        # Also the duration metric's attributes (not the template or the resend count: each
        # distinct attribute set is a series of its own).
        common: dict[str, Any] = {
            "http.request.method": method,
            **self.server,
            "perfectgym.operation_id": name,
        }
        attributes = dict(common)
        template = getattr(operation, "PATH", None)
        if template is not None:
            attributes["url.template"] = template
        if retry_number:
            attributes["http.request.resend_count"] = retry_number
            self.retries.add(1, {"perfectgym.operation_id": name})
            call = _current_call.get()
            if call is not None:
                call.retries += 1
        span = self.tracer.start_span(name, kind=self._trace.SpanKind.CLIENT, attributes=attributes)
        return Attempt(self, span, common)

    # -- the rate limit and the booking flows ----------------------------------------------------
    def rate_limit_waited(self, operation: str, seconds: float, *, gave_up: bool) -> None:
        self.waits.add(1, {"perfectgym.operation_id": operation, "perfectgym.rate_limit.gave_up": gave_up})
        if not gave_up:
            self.wait_time.record(seconds, {"perfectgym.operation_id": operation})
        call = _current_call.get()
        if call is not None:
            call.rate_limit_wait += seconds

    def locked_out(self, operation: str) -> None:
        self.lockouts.add(1, {"perfectgym.operation_id": operation})

    def breaker_changed(self, state: str) -> None:
        """The studio's circuit breaker went to ``state`` (open, half_open, closed)."""
        self.breaker.add(1, {"perfectgym.circuit_breaker.state": state, **self.server})
        call = _current_call.get()
        if call is not None:
            call.span.set_attribute("perfectgym.circuit_breaker.state", state)

    def for_base_url(self, base_url: str) -> Instruments:
        """The same tracer and instruments for another studio's base URL (``for_studio``)."""
        twin = copy.copy(self)
        twin.server = _server_attributes(base_url)
        return twin

    def booking_outcome(self, flow: str, kind: str) -> None:
        self.outcomes.add(1, {"perfectgym.booking.operation": flow, "perfectgym.booking.outcome": kind})
        call = _current_call.get()
        if call is not None:
            call.span.set_attribute("perfectgym.booking.outcome", kind)


class Attempt:
    """One HTTP attempt's span and duration, ended by :meth:`end` (once)."""

    __slots__ = ("_common", "_instruments", "_sent_at", "span")

    def __init__(self, instruments: Instruments, span: Span, common: dict[str, Any]) -> None:
        self._instruments = instruments
        self.span = span
        self._common = common
        self._sent_at: float | None = None

    def waited(self, seconds: float) -> None:
        if seconds:
            self.span.set_attribute("perfectgym.rate_limit.wait_s", round(seconds, 6))

    def outgoing(self, headers: dict[str, str]) -> dict[str, str]:
        """The request's headers, with its trace context if the client propagates it; the
        request is sent now."""
        inject = self._instruments.inject
        if inject is not None:
            inject(headers, context=self._instruments._trace.set_span_in_context(self.span))
        self._sent_at = time.perf_counter()
        return headers

    def end(self, status: int | None, error: BaseException | None) -> None:
        span, trace = self.span, self._instruments._trace
        if status is None and self._sent_at is not None:  # not sent: the throttle's own 429 is no answer
            status = getattr(error, "status_code", None)
        error_type = None
        if isinstance(status, int):
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                error_type = str(status)
        if error_type is None and error is not None:
            error_type = type(error).__name__
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            if isinstance(error, Exception):
                span.set_status(trace.StatusCode.ERROR, error_type)
        if self._sent_at is not None:
            attributes = dict(self._common)
            if isinstance(status, int):
                attributes["http.response.status_code"] = status
            if error_type is not None:
                attributes["error.type"] = error_type
            self._instruments.duration.record(time.perf_counter() - self._sent_at, attributes)
        span.end()
