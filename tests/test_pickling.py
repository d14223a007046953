"""Every exception the package raises pickles and unpickles (Celery, multiprocessing and
ProcessPoolExecutor hand errors between processes): the same type, message and attributes, without
the raw ``response`` (None after unpickling: aiohttp's headers do not pickle) and never the key.

Each class is built as the client builds it; then real errors, raised through both HTTP backends
against the sandbox, whose pickled bytes must not hold the (distinctive) API key.
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime as dt
import multiprocessing
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from not_in_spec import enum_value
from webapp_harness import free_port

from perfectgym_appointments_client import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AppointmentsClient,
    AuthenticationError,
    BadRequestError,
    BookingError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    CircuitOpenError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NoSlotAvailableError,
    NotFoundError,
    PaginationError,
    PerfectGymError,
    PermissionDeniedError,
    RateLimit,
    RateLimitError,
    RescheduleError,
    ResponseValidationError,
    RetryPolicy,
    ServiceUnavailableError,
    Slot,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client._http import HTTPResponse
from perfectgym_appointments_client.sandbox import ZONE, Faults, Sandbox

pytestmark = pytest.mark.anyio

KEY = "PGK-pickle-7Qx2-SECRET"
READ_ONLY_KEY = "PGK-pickle-readonly-9Wm4"
WRONG_KEY = "PGK-pickle-wrong-3Vn8"
BERLIN = ZoneInfo("Europe/Berlin")
START = dt.datetime(2026, 3, 24, 9, 0, tzinfo=BERLIN)
END = START + dt.timedelta(hours=1)
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def aiohttp_like_response(status: int) -> HTTPResponse:
    """An answer as the aiohttp backend keeps it: its headers a CIMultiDictProxy, which does not pickle."""
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "Retry-After": "3"}))
    return HTTPResponse(status, "Error", headers, b'{"errorMessage": "..."}')


def status_error(cls: type[APIStatusError], status: int, **extra: Any) -> APIStatusError:
    return cls(
        status_code=status,
        operation="getAppointmentBooking",
        method="GET",
        path="/v1/appointments/booking/42",
        error_message="Entity not found",
        error_code="errormessage.entity.not.found",
        trace_id="6f1c0a9e2b7d4c11",
        reference="bookingId",
        args=[{"permissions": ["APPOINTMENTS_WRITE"]}],
        typed_args=[("INTEGER", 42), ("PERMISSION_LIST", ["APPOINTMENTS_WRITE"])],
        response=aiohttp_like_response(status),
        **extra,
    )


def rate_limited_by_the_client() -> RateLimitError:
    error = status_error(RateLimitError, 429, retry_after=12.5)
    assert isinstance(error, RateLimitError)
    error.reopens_at = 1_790_000_000.25
    return error


def connection_error(cls: type[APIConnectionError], reached: bool) -> APIConnectionError:
    error = cls(
        "listBookings (GET https://tenant.example/v1/appointments/booking) failed: ConnectError: refused",
        operation="listBookings",
        method="GET",
        path="/v1/appointments/booking",
    )
    error.host = "https://tenant.example:443"
    error.may_have_reached_server = reached
    return error


def circuit_open() -> CircuitOpenError:
    error = connection_error(CircuitOpenError, False)
    assert isinstance(error, CircuitOpenError)
    error.retry_in = 7.5
    error.retry_at = 1_790_000_007.5
    return error


def outcome_unknown() -> BookingOutcomeUnknownError:
    cause = connection_error(APITimeoutError, True)
    cause.add_note("not retried: a booking request")
    return BookingOutcomeUnknownError(
        "booking for customer 5 failed ambiguously; list the customer's bookings before trying again",
        customer_id=5,
        cause=cause,
        bookable_appointment_id=7,
        start_date_time=START,
        end_date_time=END,
    )


EXAMPLES: dict[str, Callable[[], PerfectGymError]] = {
    "PerfectGymError": lambda: PerfectGymError("something went wrong"),
    "APIError": lambda: APIError("getSlots failed", operation="getSlots", method="GET", path="/v1/x"),
    "APIStatusError": lambda: status_error(APIStatusError, 418),
    "BadRequestError": lambda: status_error(BadRequestError, 400),
    "AuthenticationError": lambda: status_error(AuthenticationError, 401),
    "PermissionDeniedError": lambda: status_error(
        PermissionDeniedError, 403, required_scope="APPOINTMENTS_WRITE"
    ),
    "NotFoundError": lambda: status_error(NotFoundError, 404),
    "ConflictError": lambda: status_error(ConflictError, 409),
    "RateLimitError": lambda: status_error(RateLimitError, 429, retry_after=3.0),
    "RateLimitError-client-side": rate_limited_by_the_client,
    "InternalServerError": lambda: status_error(InternalServerError, 502),
    "ServiceUnavailableError": lambda: status_error(ServiceUnavailableError, 503, retry_after=None),
    "APIConnectionError": lambda: connection_error(APIConnectionError, False),
    "APITimeoutError": lambda: connection_error(APITimeoutError, True),
    "CircuitOpenError": circuit_open,
    "ResponseValidationError": lambda: ResponseValidationError(
        operation="getBookableAppointmentSlots",
        method="GET",
        path="/v1/appointments/bookable/7/slots",
        field="[0].startDateTime",
        detail="expected a zoned date-time",
        status_code=200,
    ),
    "PaginationError": lambda: PaginationError(
        "the server repeated offset 20",
        operation="listBookableAppointments",
        method="GET",
        path="/v1/appointments/bookable",
    ),
    "ConfigurationError": lambda: ConfigurationError(
        "no API key: pass api_key=... or set PERFECTGYM_API_KEY"
    ),
    "BookingError": lambda: BookingError("the booking flow could not finish"),
    "SlotNotBookableError": lambda: SlotNotBookableError(
        ValidationStatus.NO_CONTINGENT, customer_id=5, bookable_appointment_id=7
    ),
    "SlotNotBookableError-unknown-status": lambda: SlotNotBookableError(
        ValidationStatus(enum_value("ValidationStatus", like="WAITLIST_ONLY")),
        customer_id=5,
        bookable_appointment_id=7,
    ),
    "NoSlotAvailableError": lambda: NoSlotAvailableError(
        "no bookable slot among 12", checked=12, statuses={"NO_CONTINGENT": 3, "STUDIO_CLOSED": 9}
    ),
    "BookingOutcomeUnknownError": outcome_unknown,
    "BookingIdUnknownError": lambda: BookingIdUnknownError(
        "customer 5 is booked, but the booking's id cannot be read yet",
        customer_id=5,
        bookable_appointment_id=7,
        start_date_time=START + dt.timedelta(days=30),
        end_date_time=END + dt.timedelta(days=30),
        visible_from=(START + dt.timedelta(days=16)).date(),
        cause=status_error(ConflictError, 409),
    ),
    "RescheduleError": lambda: RescheduleError(
        "booking the new slot ended without a booking id; the old booking 100 was kept",
        old_booking_id=100,
        new_booking_id=None,
        cause=outcome_unknown(),
    ),
}


def package_exceptions() -> set[type[PerfectGymError]]:
    found: set[type[PerfectGymError]] = set()
    todo = [PerfectGymError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("perfectgym_appointments_client"):
            found.add(cls)
        todo += cls.__subclasses__()
    return found


def assert_same(original: BaseException, twin: BaseException) -> None:
    """``twin`` is ``original`` come back from a pickle: all of it but the response."""
    assert type(twin) is type(original)
    assert str(twin) == str(original)
    assert repr(twin) == repr(original)
    assert twin.args == original.args
    assert vars(twin).keys() == vars(original).keys()
    for name, value in vars(original).items():
        if name == "response":
            assert twin.response is None  # type: ignore[attr-defined]
        elif isinstance(value, BaseException):
            assert_same(value, getattr(twin, name))
        else:
            assert getattr(twin, name) == value, name
    # Class-level defaults too (may_have_reached_server, host, reopens_at, status_code).
    for name in ("status_code", "may_have_reached_server", "host", "reopens_at", "retry_after"):
        assert getattr(twin, name, "absent") == getattr(original, name, "absent"), name


def test_every_exception_class_has_an_example() -> None:
    assert {type(make()) for make in EXAMPLES.values()} == package_exceptions()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_each_exception_comes_back_from_a_pickle_without_its_response(name: str, protocol: int) -> None:
    error = EXAMPLES[name]()
    error.add_note("retried 3 times")
    twin = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert_same(error, twin)
    assert twin.__notes__ == ["retried 3 times"]
    if isinstance(error, APIStatusError):
        assert error.response is not None, "the original keeps its answer"


def test_the_attributes_the_caller_branches_on_survive() -> None:
    limited = pickle.loads(pickle.dumps(rate_limited_by_the_client()))
    assert (limited.retry_after, limited.reopens_at, limited.status_code) == (12.5, 1_790_000_000.25, 429)
    assert (limited.error_code, limited.trace_id) == ("errormessage.entity.not.found", "6f1c0a9e2b7d4c11")
    denied = pickle.loads(pickle.dumps(EXAMPLES["PermissionDeniedError"]()))
    assert denied.required_scope == "APPOINTMENTS_WRITE"
    assert str(denied).endswith("(the API key needs the scope APPOINTMENTS_WRITE)")
    assert denied.typed_args == [("INTEGER", 42), ("PERMISSION_LIST", ["APPOINTMENTS_WRITE"])]
    refused = pickle.loads(pickle.dumps(EXAMPLES["SlotNotBookableError-unknown-status"]()))
    assert isinstance(refused.status, ValidationStatus)
    assert not refused.status.is_known
    unknown = pickle.loads(pickle.dumps(EXAMPLES["RescheduleError"]()))
    assert isinstance(unknown.cause, BookingOutcomeUnknownError)
    assert isinstance(unknown.cause.cause, APITimeoutError)
    assert unknown.cause.cause.may_have_reached_server is True
    assert unknown.cause.start_date_time == START


def test_a_cause_from_another_library_is_pickled_as_its_text_alone() -> None:
    # An httpx error holds its request, and the request the key.
    request = httpx.Request(
        "POST", "https://tenant.example/v1/appointments/booking/book", headers={"X-API-KEY": KEY}
    )
    error = BookingOutcomeUnknownError(
        "booking failed ambiguously",
        customer_id=5,
        cause=httpx.ConnectError("connection refused", request=request),
    )
    data = pickle.dumps(error)
    assert KEY.encode() not in data
    twin = pickle.loads(data)
    assert type(twin.cause) is PerfectGymError
    assert str(twin.cause) == "ConnectError: connection refused"
    assert error.cause.request is request, "the original is left as it was"


def test_a_copy_keeps_the_response() -> None:
    error = EXAMPLES["NotFoundError"]()
    assert isinstance(error, NotFoundError)
    twin = copy.copy(error)
    assert type(twin) is NotFoundError
    assert twin.response is error.response
    assert (str(twin), twin.trace_id) == (str(error), error.trace_id)


def _raise_in_a_worker(name: str) -> None:
    raise EXAMPLES[name]()


@pytest.fixture(scope="module")
def worker_pool() -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """One spawned worker process for the module (starting one imports this module again)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        yield pool


@pytest.mark.parametrize("name", ["PermissionDeniedError", "BookingOutcomeUnknownError"])
def test_an_error_raised_in_a_worker_process_reaches_the_parent_typed(
    name: str, worker_pool: concurrent.futures.ProcessPoolExecutor
) -> None:
    future = worker_pool.submit(_raise_in_a_worker, name)
    with pytest.raises(PerfectGymError) as caught:
        future.result(timeout=60)
    assert_same(EXAMPLES[name](), caught.value)


# -- real errors, through both backends ------------------------------------------------------------


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest) -> str:
    """Named as tests/conftest.py's fixture (which is for tests/fakeapi.py) so that its hook
    deselects trio + aiohttp."""
    return str(request.param)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=5, api_key=KEY, read_only_api_key=READ_ONLY_KEY) as sb:
        yield sb


def client_of(sandbox: Sandbox, http_backend: str, **kwargs: Any) -> AppointmentsClient:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": sandbox.base_url,
        "retry_policy": RetryPolicy(max_retries=0),
    }
    return AppointmentsClient(http_backend=http_backend, **{**options, **kwargs})


async def raised(call: Awaitable[Any]) -> PerfectGymError:
    with pytest.raises(PerfectGymError) as caught:
        await call
    return caught.value


def assert_travels_without_the_key(error: PerfectGymError) -> PerfectGymError:
    data = pickle.dumps(error)
    for key in (KEY, READ_ONLY_KEY, WRONG_KEY):
        assert key.encode() not in data
    twin = pickle.loads(data)
    assert_same(error, twin)
    return twin


def an_appointment(sandbox: Sandbox) -> int:
    return next(a.id for a in sandbox.store.appointments.values() if a.online and not a.premium_only)


async def test_a_404_travels(sandbox: Sandbox, http_backend: str) -> None:
    async with client_of(sandbox, http_backend) as client:
        error = await raised(client.get_booking(987_654_321))
    assert isinstance(error, NotFoundError)
    assert error.response is not None
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, NotFoundError)
    assert (twin.status_code, twin.operation, twin.method) == (404, "getAppointmentBooking", "GET")
    assert twin.path == "/v1/appointments/booking/987654321"
    assert twin.error_code == error.error_code is not None
    assert twin.response is None


async def test_a_401_travels_without_the_wrong_key(sandbox: Sandbox, http_backend: str) -> None:
    async with client_of(sandbox, http_backend, api_key=WRONG_KEY) as client:
        error = await raised(client.get_bookable_appointment(an_appointment(sandbox)))
    assert isinstance(error, AuthenticationError)
    assert_travels_without_the_key(error)


async def test_a_403_travels_with_its_scope(sandbox: Sandbox, http_backend: str) -> None:
    async with client_of(sandbox, http_backend, api_key=READ_ONLY_KEY) as client:
        error = await raised(client.cancel_booking(1))
    assert isinstance(error, PermissionDeniedError)
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, PermissionDeniedError)
    assert twin.required_scope == "APPOINTMENTS_WRITE"


@pytest.mark.parametrize(("faults", "cls"), [
    (Faults(rate_429=1.0, retry_after=4), RateLimitError),
    (Faults(rate_503=1.0, retry_after=6), ServiceUnavailableError),
])  # fmt: skip
async def test_a_429_and_a_503_travel_with_retry_after(
    sandbox: Sandbox, http_backend: str, faults: Faults, cls: type[RateLimitError | ServiceUnavailableError]
) -> None:
    sandbox.faults = faults
    async with client_of(sandbox, http_backend) as client:
        error = await raised(client.get_bookable_appointment(an_appointment(sandbox)))
    assert type(error) is cls
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, cls)
    assert twin.retry_after == faults.retry_after


async def test_the_clients_own_rate_limit_travels_with_reopens_at(
    sandbox: Sandbox, http_backend: str
) -> None:
    async with client_of(
        sandbox, http_backend, rate_limit=RateLimit(requests=1, seconds=60), max_rate_limit_wait=0
    ) as client:
        appointment = an_appointment(sandbox)
        await client.get_bookable_appointment(appointment)
        error = await raised(client.get_bookable_appointment(appointment))
    assert isinstance(error, RateLimitError)
    assert error.reopens_at is not None
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, RateLimitError)
    assert twin.reopens_at == error.reopens_at


async def test_a_reset_connection_travels(sandbox: Sandbox, http_backend: str) -> None:
    sandbox.faults = Faults(rate_reset=1.0)
    async with client_of(sandbox, http_backend) as client:
        error = await raised(client.list_bookings(sandbox.demo_customer_id))
    assert type(error) is APIConnectionError
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, APIConnectionError)
    assert twin.may_have_reached_server is True
    assert twin.host == sandbox.base_url


async def test_a_refused_connection_travels(http_backend: str) -> None:
    port = free_port()  # nobody listens on it
    async with AppointmentsClient(
        api_key=KEY,
        base_url=f"http://127.0.0.1:{port}",
        http_backend=http_backend,
        retry_policy=RetryPolicy(max_retries=0),
    ) as client:
        error = await raised(client.get_booking(1))
    assert type(error) is APIConnectionError
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, APIConnectionError)
    assert twin.may_have_reached_server is False


async def test_a_timeout_travels(sandbox: Sandbox, http_backend: str) -> None:
    sandbox.faults = Faults(latency=0.6)
    async with client_of(sandbox, http_backend, timeout=0.2) as client:
        error = await raised(client.get_bookable_appointment(an_appointment(sandbox)))
    assert type(error) is APITimeoutError
    assert_travels_without_the_key(error)


async def test_a_refused_slot_travels_with_its_validation_status(sandbox: Sandbox, http_backend: str) -> None:
    appointment = sandbox.store.appointments[an_appointment(sandbox)]
    start = dt.datetime.combine(dt.datetime.now(ZONE).date() + dt.timedelta(days=2), dt.time(9, 7), ZONE)
    off_the_grid = Slot(
        start_date_time=start, end_date_time=start + dt.timedelta(minutes=appointment.duration)
    )
    async with client_of(sandbox, http_backend) as client:
        error = await raised(
            client.book(
                customer_id=sandbox.demo_customer_id,
                bookable_appointment_id=appointment.id,
                slot=off_the_grid,
            )
        )
    assert isinstance(error, SlotNotBookableError)
    twin = assert_travels_without_the_key(error)
    assert isinstance(twin, SlotNotBookableError)
    assert twin.status is error.status
    assert twin.status is not ValidationStatus.AVAILABLE


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp is asyncio only
@pytest.mark.parametrize("http_backend_name", ["httpx", "aiohttp"])
async def test_every_exception_in_a_real_errors_chain_round_trips_through_pickle(
    http_backend_name: str, anyio_backend: str
) -> None:
    # A worker (multiprocessing, a task queue) that pickles an error's whole chain must get each
    # link back: the client's internal SendFailure sits in it (as __context__).
    import socket

    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AppointmentsClient(
        api_key="a-secret-key-9",
        base_url=f"http://127.0.0.1:{port}",
        http_backend=http_backend_name,
        max_retries=0,
    )
    try:
        with pytest.raises(APIConnectionError) as caught:
            await client.get_bookable_appointment(1)
    finally:
        await client.aclose()
    chain: list[BaseException] = []
    waiting: list[BaseException] = [caught.value]
    while waiting and len(chain) < 20:  # every link: causes and contexts both
        link = waiting.pop()
        if any(link is seen for seen in chain):
            continue
        chain.append(link)
        waiting += [x for x in (link.__cause__, link.__context__) if x is not None]
    assert any(type(x).__name__ == "SendFailure" for x in chain), [type(x).__name__ for x in chain]
    for link in chain:
        again = pickle.loads(pickle.dumps(link))
        assert type(again) is type(link)
        assert str(again) == str(link)
