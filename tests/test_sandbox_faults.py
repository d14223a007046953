"""The client against a sandbox that misbehaves on purpose: rate limits, overload, resets, lost answers.

Every test checks the server's own state afterwards, not only what the client says. The client's
tests run on both HTTP backends (httpx on asyncio and trio, aiohttp on asyncio).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from perfectgym_appointments_client import (
    APIConnectionError,
    APITimeoutError,
    AppointmentsClient,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    Slot,
)
from perfectgym_appointments_client._tls import shared_ssl_context
from perfectgym_appointments_client.sandbox import (
    ZONE,
    Appointment,
    BookingRecord,
    Faults,
    RuleViolation,
    Sandbox,
    Store,
)

pytestmark = pytest.mark.anyio


def _next_monday_morning() -> dt.datetime:
    # Near the real date, not a fixed one: after an ambiguous failure the client judges by its own
    # clock whether the bookings list (two weeks around now) can show a booking.
    today = dt.datetime.now(ZONE).date()
    return dt.datetime.combine(today + dt.timedelta(days=7 - today.weekday()), dt.time(7), ZONE)


NOW = _next_monday_morning()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=11, clock=lambda: NOW) as sb:
        yield sb


def quick(retries: int = 3) -> RetryPolicy:
    """Real retries with no waiting between them (the tests ask the sandbox for Retry-After: 0)."""
    return RetryPolicy(max_retries=retries, backoff_base=0.0)


@pytest.fixture(params=["httpx", "aiohttp"])
def http_backend(request: pytest.FixtureRequest) -> str:
    """The client's HTTP backend. Named as tests/conftest.py's fixture (which is for
    tests/fakeapi.py, not the sandbox) so that conftest's hook deselects trio + aiohttp."""
    return str(request.param)


@pytest.fixture
async def client(sandbox: Sandbox, http_backend: str) -> AsyncIterator[AppointmentsClient]:
    async with AppointmentsClient(
        http_backend=http_backend,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        retry_policy=quick(),
        booking_check_settle=0.05,  # the sandbox commits before it drops or answers: nothing lags
    ) as c:
        assert c._api.backend.name == http_backend
        yield c


def bookable(sandbox: Sandbox) -> list[Appointment]:
    return [a for a in sandbox.store.appointments.values() if not a.premium_only and a.online]


def slot_on(appointment: Appointment, days: int, hour: int = 9) -> Slot:
    start = dt.datetime.combine(NOW.date() + dt.timedelta(days=days), dt.time(hour), ZONE)
    return Slot(start_date_time=start, end_date_time=start + dt.timedelta(minutes=appointment.duration))


async def test_reads_ride_out_rate_limits_and_overload(sandbox: Sandbox, http_backend: str) -> None:
    sandbox.faults = Faults(rate_429=0.15, rate_503=0.15, retry_after=0, seed=1)
    async with AppointmentsClient(
        http_backend=http_backend, api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(8)
    ) as c:
        appointments = [a async for a in c.bookable_appointments(slice_size=10)]
    assert [a.id for a in appointments] == [a.id for a in sandbox.store.listed()]
    assert sandbox.fault_counts["429"] > 0
    assert sandbox.fault_counts["503"] > 0


async def test_persistent_429_gives_up_with_retry_after(client: AppointmentsClient, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_429=1.0, retry_after=0)
    with pytest.raises(RateLimitError) as caught:
        await client.get_bookable_appointment(next(iter(sandbox.store.appointments)))
    assert caught.value.retry_after == 0
    assert sandbox.fault_counts["429"] == 4, "the first try and three retries"


async def test_persistent_503_is_typed(client: AppointmentsClient, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_503=1.0, retry_after=0)
    with pytest.raises(ServiceUnavailableError):
        await client.list_bookings(sandbox.demo_customer_id)
    assert sandbox.fault_counts["503"] == 4


async def test_reads_ride_out_connection_resets(client: AppointmentsClient, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_reset=0.3, seed=2)
    appointment = bookable(sandbox)[0]
    for _ in range(10):
        slots = await client.get_slots(appointment.id, days_ahead=2)
        assert slots
    assert sandbox.fault_counts["reset"] > 0


async def test_every_connection_reset_surfaces_as_a_connection_error(
    sandbox: Sandbox, http_backend: str
) -> None:
    sandbox.faults = Faults(rate_reset=1.0)
    async with AppointmentsClient(
        http_backend=http_backend, api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(1)
    ) as c:
        with pytest.raises(APIConnectionError) as caught:
            await c.list_bookings(sandbox.demo_customer_id)
    assert caught.value.may_have_reached_server
    assert sandbox.fault_counts["reset"] == 2
    assert sandbox.api_key not in str(caught.value)


async def test_latency_meets_the_client_timeout(sandbox: Sandbox, http_backend: str) -> None:
    sandbox.faults = Faults(latency=0.6)  # three times the timeout; the server then ends it soon
    async with AppointmentsClient(
        http_backend=http_backend,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        timeout=0.2,
        retry_policy=quick(0),
    ) as c:
        with pytest.raises(APITimeoutError):
            await c.get_bookable_appointment(next(iter(sandbox.store.appointments)))


async def test_faults_can_be_switched_off_while_running(client: AppointmentsClient, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_503=1.0, retry_after=0)
    with pytest.raises(ServiceUnavailableError):
        await client.list_bookings(sandbox.demo_customer_id)
    sandbox.faults = Faults()
    assert isinstance(await client.list_bookings(sandbox.demo_customer_id), list)


async def test_commit_then_drop_returns_the_booking_the_server_made(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    customer = sandbox.demo_customer_id
    appointment = bookable(sandbox)[0]
    slot = slot_on(appointment, 1)
    sandbox.faults = Faults(rate_commit_then_drop=1.0)

    booking = await client.book(customer_id=customer, bookable_appointment_id=appointment.id, slot=slot)

    assert sandbox.fault_counts["commit_then_drop"] == 1, "the answer to the booking was really lost"
    made = [
        b
        for b in store.snapshot()
        if b.customer_id == customer and b.active and b.start == slot.start_date_time
    ]
    assert [b.id for b in made] == [booking.booking_id], "exactly the booking the server made"
    assert booking.start_date_time == slot.start_date_time


async def test_many_bookings_under_every_fault_never_double_book(sandbox: Sandbox, http_backend: str) -> None:
    store = sandbox.store
    sandbox.faults = Faults(
        rate_429=0.1, rate_503=0.1, rate_reset=0.1, rate_commit_then_drop=0.3, latency_jitter=0.01,
        retry_after=0, seed=5,
    )  # fmt: skip
    customers = [store.add_customer().id for _ in range(6)]
    # Appointments with no instructor in common: any refusal (400 RESOURCE_NOT_AVAILABLE or
    # CUSTOMER_IN_OTHER_BOOKING) would then mean a booking made twice.
    appointments: list[Appointment] = []
    for candidate in bookable(sandbox):
        if not any(set(candidate.instructor_ids) & set(a.instructor_ids) for a in appointments):
            appointments.append(candidate)
    appointments = appointments[:6]
    customers = customers[: len(appointments)]
    assert len(appointments) >= 4
    reported: dict[int, set[int]] = {c: set() for c in customers}
    failures: list[BaseException] = []

    async def flow(customer: int, appointment: Appointment) -> None:
        async with AppointmentsClient(
            http_backend=http_backend,
            api_key=sandbox.api_key,
            base_url=sandbox.base_url,
            retry_policy=quick(6),
            booking_check_settle=0.05,  # the sandbox commits before it drops: no request still in progress
        ) as client:
            for day in range(1, 6):
                try:
                    booking = await client.book(
                        customer_id=customer,
                        bookable_appointment_id=appointment.id,
                        slot=slot_on(appointment, day),
                        validate=False,
                    )
                except (RateLimitError, ServiceUnavailableError, APIConnectionError) as exc:
                    failures.append(exc)  # given up: must mean nothing was made
                    continue
                reported[customer].add(booking.booking_id)

    async with anyio.create_task_group() as tg:
        for customer, appointment in zip(customers, appointments, strict=True):
            tg.start_soon(flow, customer, appointment)

    assert sandbox.fault_counts["commit_then_drop"] > 0
    assert sandbox.fault_counts["reset"] > 0
    for customer in customers:
        on_server = {b.id for b in store.snapshot() if b.customer_id == customer and b.active}
        assert on_server == reported[customer], "no booking the client does not know about, none made twice"
    starts = [(b.customer_id, b.start) for b in store.snapshot() if b.active and b.customer_id in reported]
    assert len(starts) == len(set(starts))
    assert sum(len(r) for r in reported.values()) + len(failures) == 5 * len(customers)


async def test_persistent_429_on_book_makes_nothing(client: AppointmentsClient, sandbox: Sandbox) -> None:
    appointment = bookable(sandbox)[1]
    before = len(sandbox.store.bookings)
    sandbox.faults = Faults(rate_429=1.0, retry_after=0)
    with pytest.raises(RateLimitError):
        await client.book(
            customer_id=sandbox.demo_customer_id,
            bookable_appointment_id=appointment.id,
            slot=slot_on(appointment, 2),
            validate=False,
        )
    assert len(sandbox.store.bookings) == before
    assert sandbox.fault_counts["429"] == 4


async def test_cancel_through_resets_ends_canceled(
    client: AppointmentsClient, sandbox: Sandbox, http_backend: str
) -> None:
    customer = sandbox.demo_customer_id
    # 06:00, 09:00, ... 18:00: every slot length fits that grid
    bookings = [
        await client.book(
            customer_id=customer, bookable_appointment_id=a.id, slot=slot_on(a, 3, hour=6 + 3 * i)
        )
        for i, a in enumerate(bookable(sandbox)[:5])
    ]
    sandbox.faults = Faults(rate_reset=0.3, seed=3)
    async with AppointmentsClient(
        http_backend=http_backend,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        retry_policy=quick(8),
        booking_check_settle=0.05,  # a reset cancel is read back at once: the sandbox has no lag
    ) as c:
        for booking in bookings:
            assert str(booking.booking_id) in await c.cancel_booking(booking.booking_id)
            assert sandbox.store.bookings[booking.booking_id].status == "CANCELED"
    assert sandbox.fault_counts["reset"] > 0


async def test_injected_429_and_503_send_no_retry_after_unless_asked(sandbox: Sandbox) -> None:
    headers = {"X-API-KEY": sandbox.api_key, "Accept-Language": "de"}
    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers=headers, verify=shared_ssl_context()
    ) as http:
        for faults, status, code in [
            (Faults(rate_429=1.0), 429, "errormessage.rate.limit.exceeded"),
            (Faults(rate_503=1.0), 503, "errormessage.service.unavailable"),
        ]:
            sandbox.faults = faults
            answer = await http.get("/v1/appointments/bookable")
            assert answer.status_code == status
            assert "retry-after" not in answer.headers, "the API documents no Retry-After"
            body = answer.json()
            assert body["errorCode"] == code
            assert body["errorMessage"] in {
                "Anfragelimit überschritten",
                "Der Dienst ist vorübergehend nicht verfügbar",
            }
            assert len(body["traceId"]) == 32
            sandbox.faults = Faults(rate_429=faults.rate_429, rate_503=faults.rate_503, retry_after=7)
            answer = await http.get("/v1/appointments/bookable")
            assert answer.status_code == status
            assert answer.headers["retry-after"] == "7"


async def test_a_429_without_retry_after_is_a_lockout_not_retried_into(
    sandbox: Sandbox, http_backend: str
) -> None:
    sandbox.faults = Faults(rate_429=1.0)
    async with AppointmentsClient(
        http_backend=http_backend, api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(2)
    ) as c:
        with pytest.raises(RateLimitError, match="closed until") as caught:
            await c.get_bookable_appointment(bookable(sandbox)[0].id)
    # One 429, then the endpoint counts as locked for the limit's span (60 s, longer than the
    # call's 30 s timeout): the client says when it reopens instead of retrying into it.
    assert sandbox.fault_counts["429"] == 1
    assert caught.value.reopens_at is not None


async def test_without_the_client_limiter_a_persistent_429_still_gives_up(
    sandbox: Sandbox, http_backend: str
) -> None:
    sandbox.faults = Faults(rate_429=1.0)
    async with AppointmentsClient(
        http_backend=http_backend,
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        retry_policy=quick(2),
        rate_limit=None,
    ) as c:
        with pytest.raises(RateLimitError) as caught:
            await c.get_bookable_appointment(bookable(sandbox)[0].id)
    assert caught.value.retry_after is None
    assert sandbox.fault_counts["429"] == 3


def test_write_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="rate_409"):
        Faults(rate_409=1.5)
    with pytest.raises(ValueError, match="exceed"):
        Faults(rate_409=0.6, rate_commit_then_drop=0.6)
    with pytest.raises(ValueError, match="retry_after"):
        Faults(retry_after=-1)
    assert Faults().retry_after is None


def test_new_write_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="rate_500_after_commit"):
        Faults(rate_500_after_commit=1.5)
    with pytest.raises(ValueError, match="rate_slow_commit"):
        Faults(rate_slow_commit=-0.1)
    with pytest.raises(ValueError, match="must not exceed 1"):
        Faults(rate_409=0.4, rate_commit_then_drop=0.2, rate_500_after_commit=0.2, rate_slow_commit=0.3)
    with pytest.raises(ValueError, match="slow_commit_seconds"):
        Faults(slow_commit_seconds=-1)
    with pytest.raises(ValueError, match="max_faults"):
        Faults(max_faults=-1)
    assert Faults(
        rate_409=0.25, rate_commit_then_drop=0.25, rate_500_after_commit=0.25, rate_slow_commit=0.25
    )
    assert Faults(rate_slow_commit=0.1).active
    assert Faults(rate_500_after_commit=0.1).active
    assert not Faults(max_faults=1, slow_commit_seconds=3).active


# -- the sandbox's hooks for the booking tests (tests/sandbox_studio.py) ----------------------------------

BOOK = "/v1/appointments/booking/book"


def raw(sandbox: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    # Plain HTTP: the process's one TLS context spares each client loading the CA bundle (~20 ms).
    kwargs.setdefault("verify", shared_ssl_context())
    return httpx.AsyncClient(base_url=sandbox.base_url, headers={"X-API-KEY": sandbox.api_key}, **kwargs)


def booking_body(
    customer: int, appointment: Appointment, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    return {
        "customerId": customer,
        "bookableAppointmentId": appointment.id,
        "startDateTime": f"{start.isoformat(timespec='milliseconds')}[Europe/Berlin]",
        "endDateTime": f"{end.isoformat(timespec='milliseconds')}[Europe/Berlin]",
    }


def free_slots(
    sandbox: Sandbox, customer: int, appointment: Appointment
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The customer's free slots of ``appointment`` tomorrow (a Tuesday)."""
    found = sandbox.store.slots(appointment.id, NOW.date() + dt.timedelta(days=1), 1, customer)
    assert len(found) >= 2
    return [(start, end) for start, end, _ in found]


def active_of(sandbox: Sandbox, customer: int) -> list[BookingRecord]:
    return [b for b in sandbox.store.snapshot() if b.customer_id == customer and b.active]


async def test_500_after_commit_books_then_answers_500(sandbox: Sandbox) -> None:
    customer = sandbox.store.add_customer().id
    appointment = bookable(sandbox)[0]
    start, end = free_slots(sandbox, customer, appointment)[0]
    sandbox.faults = Faults(rate_500_after_commit=1.0)
    async with raw(sandbox) as http:
        answer = await http.post(BOOK, json=booking_body(customer, appointment, start, end))
        # The same slot again: the rules refuse it, and the answer is a 500 all the same.
        again = await http.post(BOOK, json=booking_body(customer, appointment, start, end))
    assert answer.status_code == 500
    error = answer.json()
    assert error["errorCode"] == "errormessage.internal.error"
    assert error["errorMessage"] == "Internal server error"
    assert len(error["traceId"]) == 32
    [made] = active_of(sandbox, customer)
    assert made.start.astimezone(dt.UTC) == start.astimezone(dt.UTC)
    assert again.status_code == 500
    assert sandbox.fault_counts == {"500_after_commit": 1, "500_after_refusal": 1}


async def test_slow_commit_lands_after_the_client_gave_up(sandbox: Sandbox) -> None:
    customer = sandbox.store.add_customer().id
    appointment = bookable(sandbox)[0]
    start, end = free_slots(sandbox, customer, appointment)[0]
    received, release, committed = threading.Event(), threading.Event(), threading.Event()
    arrival: list[float] = []

    async def hook(phase: str, method: str, path: str) -> None:
        if path != BOOK:
            return
        if phase == "received":  # held here, so the test sees the state before the booking
            arrival.append(time.monotonic())
            received.set()
            await anyio.to_thread.run_sync(release.wait, 10)
        else:
            committed.set()

    sandbox.on_request = hook
    sandbox.faults = Faults(rate_slow_commit=1.0, slow_commit_seconds=0.5)
    try:
        async with raw(sandbox, timeout=0.1) as http:
            sent = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await http.post(BOOK, json=booking_body(customer, appointment, start, end))
        with anyio.fail_after(10):
            assert await anyio.to_thread.run_sync(received.wait, 10)
        assert arrival[0] - sent >= 0.45, "the request waited (0.5 s) before it was handled"
        assert active_of(sandbox, customer) == [], "not booked before it is handled"
        release.set()
        with anyio.fail_after(10):
            assert await anyio.to_thread.run_sync(committed.wait, 10)
    finally:
        release.set()
    [made] = active_of(sandbox, customer)
    assert made.start.astimezone(dt.UTC) == start.astimezone(dt.UTC)
    assert sandbox.fault_counts == {"slow_commit": 1}


async def test_max_faults_bounds_the_faults_of_one_setting(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_503=1.0, max_faults=2)
    async with raw(sandbox) as http:
        first = [(await http.get("/v1/appointments/bookable")).status_code for _ in range(4)]
        sandbox.faults = Faults(rate_503=1.0, max_faults=1)  # a new setting, a new budget
        second = [(await http.get("/v1/appointments/bookable")).status_code for _ in range(2)]
        # A write fault's budget is spent only by the requests it can hit: bookings.
        customer = sandbox.store.add_customer().id
        appointment = bookable(sandbox)[0]
        (start, end), (later, later_end) = free_slots(sandbox, customer, appointment)[:2]
        sandbox.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        assert (await http.get("/v1/appointments/bookable")).status_code == 200
        with pytest.raises(httpx.TransportError):
            await http.post(BOOK, json=booking_body(customer, appointment, start, end))
        answer = await http.post(BOOK, json=booking_body(customer, appointment, later, later_end))
    assert first == [503, 503, 200, 200]
    assert second == [503, 200]
    assert answer.status_code == 200
    assert len(active_of(sandbox, customer)) == 2
    assert sandbox.fault_counts == {"503": 3, "commit_then_drop": 1}


async def test_on_request_sees_requests_at_the_api_and_changes_committed(sandbox: Sandbox) -> None:
    seen: list[tuple[str, str, str]] = []

    async def hook(phase: str, method: str, path: str) -> None:
        seen.append((phase, method, path))

    assert sandbox.on_request is None
    sandbox.on_request = hook
    assert sandbox.on_request is hook
    customer = sandbox.store.add_customer().id
    appointment = bookable(sandbox)[0]
    start, end = free_slots(sandbox, customer, appointment)[0]
    async with raw(sandbox) as http:
        booked = await http.post(BOOK, json=booking_body(customer, appointment, start, end))
        refused = await http.post(BOOK, json=booking_body(customer, appointment, start, end))
        cancel = f"/v1/appointments/booking/{booked.json()['bookingId']}"
        wrong_key = await http.delete(cancel, headers={"X-API-KEY": "wrong"})
        read_only = await http.delete(cancel, headers={"X-API-KEY": str(sandbox.read_only_api_key)})
        canceled = await http.delete(cancel)
        sandbox.faults = Faults(rate_503=1.0)
        unavailable = await http.get("/v1/appointments/bookable")
    assert [booked.status_code, refused.status_code, canceled.status_code] == [200, 400, 200]
    assert [wrong_key.status_code, read_only.status_code, unavailable.status_code] == [401, 403, 503]
    assert seen == [
        ("received", "POST", BOOK),
        ("committed", "POST", BOOK),
        ("received", "POST", BOOK),  # refused: nothing committed
        ("received", "DELETE", cancel),
        ("committed", "DELETE", cancel),
    ]
    sandbox.faults = Faults()
    calls: list[tuple[str, ...]] = []
    sandbox.on_request = lambda *call: calls.append(call)  # a plain function will do too
    async with raw(sandbox) as http:
        await http.get("/v1/appointments/bookable")
    assert calls == [("received", "GET", "/v1/appointments/bookable")]
    sandbox.on_request = None
    with pytest.raises(TypeError, match="on_request"):
        sandbox.on_request = "hook"  # type: ignore[assignment]


async def test_on_request_holds_a_booking_made_but_not_yet_answered() -> None:
    arrived, release = threading.Event(), threading.Event()

    async def hook(phase: str, method: str, path: str) -> None:
        if phase == "committed" and path == BOOK:
            arrived.set()
            await anyio.to_thread.run_sync(release.wait, 10)

    answers: list[httpx.Response] = []
    async with Sandbox(seed=11, clock=lambda: NOW, on_request=hook) as sb:
        customer = sb.store.add_customer().id
        appointment = bookable(sb)[0]
        start, end = free_slots(sb, customer, appointment)[0]
        try:
            async with raw(sb) as http, anyio.create_task_group() as tg:

                async def post() -> None:
                    answers.append(
                        await http.post(BOOK, json=booking_body(customer, appointment, start, end))
                    )

                tg.start_soon(post)
                with anyio.fail_after(10):
                    assert await anyio.to_thread.run_sync(arrived.wait, 10)
                [made] = active_of(sb, customer)
                assert answers == [], "made, and not answered while held"
                release.set()
        finally:
            release.set()
    assert answers[0].status_code == 200
    assert answers[0].json()["bookingId"] == made.id


async def test_renamed_appointment_shows_its_new_title_everywhere(sandbox: Sandbox) -> None:
    store = sandbox.store
    customer = store.add_customer().id
    appointment = bookable(sandbox)[0]
    start, end = free_slots(sandbox, customer, appointment)[0]
    booking = store.book(customer, appointment.id, start, end)
    renamed = store.rename_appointment(appointment.id, "Renamed Training")
    assert renamed.title == "Renamed Training"
    assert attrs_except_title(renamed) == attrs_except_title(appointment)
    async with raw(sandbox) as http:
        one = (await http.get(f"/v1/appointments/bookable/{appointment.id}")).json()
        listed = [a for a in (await http.get("/v1/appointments/bookable?sliceSize=100")).json()["result"]]
        mine = (await http.get("/v1/appointments/booking", params={"customerId": customer})).json()
        got = (await http.get(f"/v1/appointments/booking/{booking.id}")).json()
    assert one["title"] == "Renamed Training"
    assert [a["title"] for a in listed if a["id"] == appointment.id] == ["Renamed Training"]
    assert [b["title"] for b in mine] == ["Renamed Training"]
    assert got["title"] == "Renamed Training"
    with pytest.raises(ValueError, match="title"):
        store.rename_appointment(appointment.id, " ")
    with pytest.raises(RuleViolation) as missing:
        store.rename_appointment(1, "Nothing")
    assert missing.value.status == 404


def attrs_except_title(appointment: Appointment) -> dict[str, Any]:
    fields = dict(vars(appointment))
    fields.pop("title")
    return fields


# -- Open Gym 24/7: slots at any hour, across DST changes ------------------------------------------------


def wire_pair(start: dt.datetime, end: dt.datetime) -> tuple[str, str]:
    return start.isoformat(timespec="minutes"), end.isoformat(timespec="minutes")


@pytest.mark.parametrize(
    ("day", "hours", "crossing"),
    [
        (
            dt.date(2027, 10, 31),
            25,
            [
                ("2027-10-31T02:00+02:00", "2027-10-31T02:00+01:00"),
                ("2027-10-31T02:00+01:00", "2027-10-31T03:00+01:00"),
            ],
        ),
        (dt.date(2027, 3, 28), 23, [("2027-03-28T01:00+01:00", "2027-03-28T03:00+02:00")]),
    ],
    ids=["autumn", "spring"],
)
def test_open_gym_has_slots_across_a_dst_change(
    day: dt.date, hours: int, crossing: list[tuple[str, str]]
) -> None:
    now = dt.datetime.combine(day - dt.timedelta(days=5), dt.time(12), ZONE)
    store = Store(11, clock=lambda: now)
    gym = store.open_gym()
    customer = store.add_customer().id
    slots = store.slots(gym.id, day, 1, customer)  # a Sunday, the studio closed
    pairs = [wire_pair(start, end) for start, end, _ in slots]
    assert len(pairs) == hours, "every hour of the day, by elapsed time from midnight"
    assert pairs[0][0] == f"{day}T00:00{pairs[0][0][-6:]}"
    assert pairs[-1][1].startswith(f"{day + dt.timedelta(days=1)}T00:00")
    for pair in crossing:
        assert pair in pairs
    for start, end, _ in slots:
        assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=1)
    # Booked as the wire gives it (a fixed offset), it is the slot by instant.
    start_text, end_text = crossing[0]
    start, end = dt.datetime.fromisoformat(start_text), dt.datetime.fromisoformat(end_text)
    assert store.validate(customer, gym.id, start, end) == "AVAILABLE"
    record = store.book(customer, gym.id, start, end)
    assert wire_pair(record.start, record.end) == crossing[0]
    assert store.validate(customer, gym.id, start, end) == "CUSTOMER_IN_OTHER_BOOKING"
    assert store.validate(store.add_customer().id, gym.id, start, end) == "RESOURCE_NOT_AVAILABLE"


def test_open_gym_ignores_opening_hours_and_keeps_every_other_rule() -> None:
    store = Store(11, clock=lambda: NOW)  # a Monday, 07:00
    gym = store.open_gym()
    assert (gym.title, gym.duration, gym.category, gym.lead_minutes) == ("Open Gym 24/7", 60, "Training", 0)
    assert (gym.online, gym.premium_only, gym.requires_confirmation) == (True, False, False)
    assert len(gym.instructor_ids) == 2
    assert gym.id > max(a.id for a in store.appointments.values() if a is not gym)
    assert store.listed()[-1] == gym
    customer = store.add_customer(premium=False).id

    def at(days: int, hour: int, minutes: int = 60) -> str:
        start = dt.datetime.combine(NOW.date() + dt.timedelta(days=days), dt.time(hour), ZONE)
        return store.validate(customer, gym.id, start, start + dt.timedelta(minutes=minutes))

    assert at(0, 8) == "AVAILABLE"  # an hour from now, lead time 0
    assert at(1, 3) == "AVAILABLE"  # at night
    assert at(6, 23) == "AVAILABLE"  # a Sunday, the last hour of the day
    assert at(0, 6) == "PAST_START_DATE_TIME"
    assert at(1, 3, minutes=90) == "PERIOD_DOES_NOT_MATCH"
    assert at(29, 3) == "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME"
    half_past = dt.datetime.combine(NOW.date() + dt.timedelta(days=1), dt.time(3, 30), ZONE)
    assert (
        store.validate(customer, gym.id, half_past, half_past + dt.timedelta(hours=1))
        == "PERIOD_DOES_NOT_MATCH"
    )
    assert len(store.slots(gym.id, NOW.date() + dt.timedelta(days=1), 1)) == 24
