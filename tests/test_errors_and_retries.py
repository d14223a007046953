"""Typed errors, secret hygiene, retries (fake clock) and malformed answers, via httpx.MockTransport."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakeapi import backend_kwargs, httpx_alone, mock_client, one_appointment

from perfectgym_appointments_client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AppointmentsClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PerfectGymError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    ServiceUnavailableError,
    Slot,
    ValidationStatus,
)
from perfectgym_appointments_client._retry import parse_retry_after

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("http_backend")]

KEY = "secret-key-123"
APPOINTMENT_PATH = "/v1/appointments/bookable/1"
VALIDATE_PATH = "/v1/appointments/bookable/validate"
ERROR_BODY = {
    "errorMessage": "Something is wrong with the request",
    "errorCode": "SOME_ERROR_CODE",
    "traceId": "trace-abc-1",
    "reference": "ref-42",
    "args": ["first", "2"],
    "typedArgs": [{"value": "2", "type": "LONG"}],
}
SLOT = {
    "startDateTime": "2022-06-22T08:00:00.000+02:00[Europe/Berlin]",
    "endDateTime": "2022-06-22T09:00:00.000+02:00[Europe/Berlin]",
    "instructors": [],
}
Step = Callable[[], httpx.Response] | type[httpx.TransportError]


def answer(
    status: int, body: Any = None, *, content: bytes | None = None, headers: dict[str, str] | None = None
) -> Step:
    """A fresh response per request (a Response object must not be sent twice)."""
    headers = dict(headers or {})
    if content is None:
        content = b"" if body is None else json.dumps(body).encode()
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
    return functools.partial(httpx.Response, status, content=content, headers=headers)


# On aiohttp the same failures are made for real, over sockets: tests/test_backends.py.
SHAPED_BY_HTTPX = "an httpx exception raised by httpx.MockTransport"
OK = answer(200, {"id": 1, "title": "Yoga"})
AVAILABLE = answer(200, {"validationStatus": "AVAILABLE"})


class Fake:
    """A scripted API: each request takes the next step; the last step repeats. A fake clock."""

    def __init__(self, *steps: Step, max_retries: int = 2) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.sent_keys: list[str | None] = []  # as on the wire: the client redacts its copy afterwards
        self.delays: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            self.delays.append(seconds)

        self.client = AppointmentsClient(
            api_key=KEY,
            **backend_kwargs(self.handle),
            retry_policy=RetryPolicy(max_retries=max_retries, sleep=fake_sleep, random=lambda: 1.0),
            rate_limit=None,  # 429s here test the retry policy; the limiter has its own tests
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.sent_keys.append(request.headers.get("X-API-KEY"))
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, type):
            raise step("simulated transport failure", request=request)
        return step()


def get_appointment(client: AppointmentsClient) -> Any:
    return client.get_bookable_appointment(1)


def get_slots(client: AppointmentsClient) -> Any:
    return client.get_slots(1)


async def attempt(fake: Fake, call: Callable[[AppointmentsClient], Any] = get_appointment) -> Any:
    """The call's result or the PerfectGymError it raised; asserts run outside the client's task group."""
    async with fake.client as client:
        try:
            return await call(client)
        except PerfectGymError as exc:
            return exc


def http_date_in(seconds: float) -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds), usegmt=True)


# -- 1. every status maps to its class, with the ErrorResponse fields ---------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, ServiceUnavailableError),
        (504, InternalServerError),
        (418, APIStatusError),
    ],
)
async def test_status_maps_to_error_class_with_error_response_fields(status: int, cls: type) -> None:
    fake = Fake(answer(status, ERROR_BODY), max_retries=0)
    exc = await attempt(fake)
    assert type(exc) is cls
    assert isinstance(exc, APIStatusError)
    assert exc.status_code == status
    assert exc.error_code == "SOME_ERROR_CODE"
    assert exc.error_message == "Something is wrong with the request"
    assert exc.trace_id == "trace-abc-1"
    assert exc.reference == "ref-42"
    assert exc.error_args == ["first", "2"]
    assert (exc.operation, exc.method, exc.path) == ("getBookableAppointment", "GET", APPOINTMENT_PATH)
    assert "SOME_ERROR_CODE" in str(exc)
    assert "trace-abc-1" in str(exc)
    assert len(fake.requests) == 1


async def test_error_without_async_with_is_not_wrapped() -> None:
    fake = Fake(answer(404, ERROR_BODY), max_retries=0)
    with pytest.raises(NotFoundError):
        await fake.client.get_bookable_appointment(1)
    await fake.client.aclose()


async def test_error_inside_async_with_propagates_unwrapped() -> None:
    fake = Fake(answer(404, ERROR_BODY), max_retries=0)
    with pytest.raises((NotFoundError, ExceptionGroup)) as info:
        async with fake.client as client:
            await client.get_bookable_appointment(1)
    assert type(info.value) is NotFoundError


# -- 2. bodies that are not the API's JSON -------------------------------------------------------

HTML_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
)


@pytest.mark.parametrize(
    ("step", "cls", "expected_message"),
    [
        (
            answer(502, content=HTML_502, headers={"Content-Type": "text/html"}),
            InternalServerError,
            "502 Bad Gateway",
        ),
        (answer(503, content=b""), ServiceUnavailableError, "Service Unavailable"),
        (
            answer(400, content=b'{"errorMessage": "bad', headers={"Content-Type": "application/json"}),
            BadRequestError,
            '{"errorMessage": "bad',
        ),
    ],
    ids=["html-502", "empty-503", "truncated-json-400"],
)
async def test_non_json_error_bodies(step: Step, cls: type[APIStatusError], expected_message: str) -> None:
    exc = await attempt(Fake(step, max_retries=0))
    assert type(exc) is cls
    assert exc.error_code is None
    assert exc.trace_id is None
    assert expected_message in exc.error_message
    assert "<" not in exc.error_message  # HTML tags stripped
    assert expected_message in str(exc)


# -- 3. the API key never shows ------------------------------------------------------------------


async def test_api_key_is_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="perfectgym_appointments_client")
    fake = Fake(answer(503, ERROR_BODY, headers={"Retry-After": "1"}), max_retries=2)
    exc = await attempt(fake)
    assert type(exc) is ServiceUnavailableError
    records = [r for r in caplog.records if r.name.startswith("perfectgym_appointments_client")]
    assert any(r.levelno == logging.DEBUG for r in records)
    assert any("retrying" in r.getMessage() for r in records)
    # Also a traceback with each frame's locals, as error reporters capture them.
    with_locals = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert "X-API-KEY" in with_locals  # the headers are there, masked
    shown = [str(exc), repr(exc), repr(fake.client), "".join(traceback.format_exception(exc)), caplog.text]
    shown.append(with_locals)
    shown += [r.getMessage() for r in records]
    for text in shown:
        assert KEY not in text
    assert len(fake.requests) == 3
    assert fake.sent_keys == [KEY, KEY, KEY]
    for request in fake.requests:
        assert request.headers["User-Agent"].startswith("perfectgym-appointments-client/")
    # The error keeps the answer as received, and nothing of the request.
    assert exc.response is not None
    assert exc.response.status_code == 503
    assert not hasattr(exc.response, "request")
    assert KEY not in repr(exc.response) + repr(dict(exc.response.headers)) + exc.response.text


async def test_connection_error_does_not_show_key() -> None:
    exc = await attempt(Fake(httpx.ConnectError, max_retries=1))
    assert type(exc) is APIConnectionError
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        assert KEY not in text


# -- 4. retries, on a fake clock -----------------------------------------------------------------


async def test_read_retried_with_full_jitter_backoff_then_succeeds() -> None:
    fake = Fake(answer(503), answer(503), OK, max_retries=2)
    appointment = await attempt(fake)
    assert appointment.id == 1
    assert len(fake.requests) == 3
    assert fake.delays == [0.5, 1.0]


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_honoured(status: int) -> None:
    fake = Fake(answer(status, ERROR_BODY, headers={"Retry-After": "3"}), OK)
    assert (await attempt(fake)).id == 1
    assert fake.delays == [3.0]
    assert len(fake.requests) == 2


async def test_retry_after_http_date_is_honoured() -> None:
    fake = Fake(answer(429, ERROR_BODY, headers={"Retry-After": http_date_in(30)}), OK)
    assert (await attempt(fake)).id == 1
    assert len(fake.delays) == 1
    assert abs(fake.delays[0] - 30) <= 2


@pytest.mark.parametrize(("status", "cls"), [(429, RateLimitError), (503, ServiceUnavailableError)])
async def test_retry_after_beyond_max_is_raised_not_waited(
    status: int, cls: type[RateLimitError | ServiceUnavailableError]
) -> None:
    fake = Fake(answer(status, ERROR_BODY, headers={"Retry-After": "120"}), OK)
    exc = await attempt(fake)
    assert type(exc) is cls
    assert exc.retry_after == 120.0
    assert len(fake.requests) == 1
    assert fake.delays == []


@pytest.mark.parametrize(
    "first",
    [
        answer(429),
        answer(502),
        answer(503),
        answer(504),
        pytest.param(httpx.ConnectError, marks=pytest.mark.httpx_only(SHAPED_BY_HTTPX)),
        pytest.param(httpx.ReadTimeout, marks=pytest.mark.httpx_only(SHAPED_BY_HTTPX)),
    ],
    ids=["429", "502", "503", "504", "connect-error", "read-timeout"],
)
async def test_transient_failures_are_retried(first: Step) -> None:
    fake = Fake(first, OK)
    assert (await attempt(fake)).id == 1
    assert len(fake.requests) == 2
    assert fake.delays == [0.5]


@pytest.mark.parametrize(
    ("status", "cls"), [(400, BadRequestError), (404, NotFoundError), (500, InternalServerError)]
)
async def test_permanent_failures_are_not_retried(status: int, cls: type) -> None:
    fake = Fake(answer(status, ERROR_BODY), OK)
    assert type(await attempt(fake)) is cls
    assert len(fake.requests) == 1
    assert fake.delays == []


async def test_max_retries_zero_disables_retries() -> None:
    fake = Fake(answer(503), OK, max_retries=0)
    assert type(await attempt(fake)) is ServiceUnavailableError
    assert len(fake.requests) == 1
    assert fake.delays == []


async def test_last_error_is_raised_after_exhausting_retries() -> None:
    fake = Fake(answer(502), answer(503), answer(504, ERROR_BODY), OK, max_retries=2)
    exc = await attempt(fake)
    assert type(exc) is InternalServerError
    assert exc.status_code == 504
    assert exc.error_code == "SOME_ERROR_CODE"
    assert len(fake.requests) == 3
    assert fake.delays == [0.5, 1.0]


async def test_validate_slot_is_retried_like_a_read() -> None:
    fake = Fake(answer(503), answer(503), AVAILABLE, max_retries=2)
    status = await attempt(
        fake,
        lambda client: client.validate_slot(
            customer_id=7, bookable_appointment_id=1, slot=Slot.from_dict(SLOT)
        ),
    )
    assert status is ValidationStatus.AVAILABLE
    assert len(fake.requests) == 3
    assert {(r.method, r.url.path) for r in fake.requests} == {("POST", VALIDATE_PATH)}
    assert len({r.content for r in fake.requests}) == 1
    assert json.loads(fake.requests[0].content)["customerId"] == 7
    assert fake.delays == [0.5, 1.0]


@pytest.mark.httpx_only(SHAPED_BY_HTTPX)
@pytest.mark.parametrize(
    ("failure", "cls", "reached"),
    [
        (httpx.ReadTimeout, APITimeoutError, True),
        (httpx.ConnectTimeout, APITimeoutError, False),
        (httpx.ConnectError, APIConnectionError, False),
        (httpx.ReadError, APIConnectionError, True),
    ],
)
async def test_transport_failures_map_to_connection_errors(
    failure: type[httpx.TransportError], cls: type, reached: bool
) -> None:
    fake = Fake(failure, max_retries=2)
    exc = await attempt(fake)
    assert type(exc) is cls
    assert isinstance(exc, APIConnectionError)
    assert exc.may_have_reached_server is reached
    assert (exc.operation, exc.method, exc.path) == ("getBookableAppointment", "GET", APPOINTMENT_PATH)
    assert isinstance(exc.__cause__, failure)
    assert len(fake.requests) == 3


@pytest.fixture
def new_york_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time is New York's, five hours from UTC in winter."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@httpx_alone
@pytest.mark.usefixtures("new_york_local_time")
async def test_a_retry_after_date_without_a_zone_is_utc() -> None:
    # "-0000": an HTTP date that names no zone (RFC 5322); it is UTC, not the machine's time.
    when = email.utils.formatdate(time.time() + 30, usegmt=False).rsplit(" ", 1)[0] + " -0000"
    delays: list[float] = []
    answers = iter([httpx.Response(503, headers={"Retry-After": when}), one_appointment])

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        return answer(request) if callable(answer) else answer

    async with AppointmentsClient(
        api_key=KEY,
        base_url="https://tenant.example",
        http_client=mock_client(handler),
        retry_policy=RetryPolicy(max_retries=1, sleep=sleep),
        rate_limit=None,
    ) as client:
        assert (await client.get_bookable_appointment(1)).title == "Yoga"
    [delay] = delays
    assert 27 <= delay <= 30, delay  # read as local time it would be 5 hours off


async def connection_error(handler: Callable[[httpx.Request], httpx.Response]) -> APIConnectionError:
    """The error getBookableAppointment fails with, not retried, when ``handler`` raises (through an
    httpx client of its own)."""
    async with AppointmentsClient(
        api_key=KEY, base_url="https://tenant.example", http_client=mock_client(handler), max_retries=0,
        rate_limit=None,
    ) as client:  # fmt: skip
        with pytest.raises(APIConnectionError) as info:
            await client.get_bookable_appointment(1)
    return info.value


@httpx_alone
@pytest.mark.parametrize(
    ("raised", "described"),
    [
        (httpx.ConnectError(""), "ConnectError"),  # nothing says why: the type alone
        (httpx.ConnectError("refused"), "ConnectError: refused"),
    ],
)
async def test_a_connection_error_names_its_type_and_reason(raised: Exception, described: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    error = await connection_error(handler)
    assert str(error).endswith(
        f"getBookableAppointment (GET https://tenant.example/v1/appointments/bookable/1) failed: {described}"
    )


@httpx_alone
async def test_an_empty_cause_chain_ends_at_the_first_exception_with_a_message() -> None:
    inner = ValueError("")
    middle = OSError("")
    middle.__cause__ = inner

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("") from middle

    error = await connection_error(handler)
    assert str(error).endswith("failed: ConnectError")


# -- 5. parse_retry_after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        (" 7 ", 7.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("-5", 0.0),
    ],
)
async def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


async def test_parse_retry_after_http_date_with_fixed_now() -> None:
    moment = dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC).timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: moment - 10) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: moment + 10) == 0.0


# -- 6. RetryPolicy ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 1.5, True])
async def test_retry_policy_rejects_bad_max_retries(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=bad)


async def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(random=lambda: 0.5)
    assert [policy.backoff(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    full = RetryPolicy(random=lambda: 1.0, backoff_cap=3.0)
    assert [full.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@httpx_alone
@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": True},
        {"max_retries": 1.5},
        {"backoff_base": -1},
        {"backoff_cap": -0.5},
        {"max_retry_after": -1},
    ],
)
def test_a_retry_policy_refuses_negative_or_fractional_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**kwargs)


# -- 7. malformed 200 answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "call", "operation", "field"),
    [
        (answer(200, {"title": "x"}), get_appointment, "getBookableAppointment", "id"),
        (answer(200, content=b'{"id": 1, "ti'), get_appointment, "getBookableAppointment", "<body>"),
        (answer(200, [1, 2]), get_appointment, "getBookableAppointment", "<body>"),
        (
            answer(200, [{**SLOT, "startDateTime": "not a date"}]),
            get_slots,
            "getBookableAppointmentSlots",
            "[0].startDateTime",
        ),
        (
            answer(200, [{k: v for k, v in SLOT.items() if k != "endDateTime"}]),
            get_slots,
            "getBookableAppointmentSlots",
            "[0].endDateTime",
        ),
    ],
    ids=["missing-id", "truncated-json", "list-of-numbers", "bad-date", "missing-end"],
)
async def test_malformed_answer_names_operation_and_field(
    step: Step, call: Callable[[AppointmentsClient], Any], operation: str, field: str
) -> None:
    fake = Fake(step, max_retries=2)
    exc = await attempt(fake, call)
    assert type(exc) is ResponseValidationError
    assert (exc.operation, exc.field, exc.status_code) == (operation, field, 200)
    assert operation in str(exc)
    assert field in str(exc)
    assert len(fake.requests) == 1  # a malformed answer is not retried


@pytest.mark.parametrize(
    "body", [[{"id": 1, "title": "Yoga"}], {"id": "not-a-number"}], ids=["list-of-objects", "string-id"]
)
async def test_wrongly_typed_appointment_body_is_rejected(body: Any) -> None:
    exc = await attempt(Fake(answer(200, body)))
    assert type(exc) is ResponseValidationError
    assert exc.operation == "getBookableAppointment"


def marked_connection_error(*, certificate_rejected: bool | None) -> APIConnectionError:
    error = APIConnectionError(
        "failed", operation="getBookableAppointment", method="GET", path=APPOINTMENT_PATH
    )
    if certificate_rejected is not None:
        error.certificate_rejected = certificate_rejected
    return error


@pytest.mark.parametrize(
    ("certificate_rejected", "retryable"),
    [(True, False), (False, True), (None, True)],
    ids=["rejected-certificate", "other-failure", "unmarked"],
)
async def test_a_rejected_tls_certificate_is_the_one_connection_error_not_retried(
    certificate_rejected: bool | None, retryable: bool
) -> None:
    """A certificate that fails verification (an unknown issuer, an expired one, another host's
    name) fails the same way on every attempt; other connection errors can heal."""
    error = marked_connection_error(certificate_rejected=certificate_rejected)
    assert RetryPolicy().is_retryable(error) is retryable
    assert RetryPolicy(max_retries=5).is_retryable(error) is retryable
