"""The client against a sandbox that misbehaves on purpose: rate limits, overload, resets, lost answers.

Every test checks the server's own state afterwards, not only what the client says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

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
from perfectgym_appointments_client.sandbox import ZONE, Appointment, Faults, Sandbox

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


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[AppointmentsClient]:
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick()
    ) as c:
        yield c


def bookable(sandbox: Sandbox) -> list[Appointment]:
    return [a for a in sandbox.store.appointments.values() if not a.premium_only and a.online]


def slot_on(appointment: Appointment, days: int, hour: int = 9) -> Slot:
    start = dt.datetime.combine(NOW.date() + dt.timedelta(days=days), dt.time(hour), ZONE)
    return Slot(start_date_time=start, end_date_time=start + dt.timedelta(minutes=appointment.duration))


async def test_reads_ride_out_rate_limits_and_overload(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_429=0.15, rate_503=0.15, retry_after=0, seed=1)
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(8)
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


async def test_every_connection_reset_surfaces_as_a_connection_error(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_reset=1.0)
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(1)
    ) as c:
        with pytest.raises(APIConnectionError) as caught:
            await c.list_bookings(sandbox.demo_customer_id)
    assert caught.value.may_have_reached_server
    assert sandbox.fault_counts["reset"] == 2
    assert sandbox.api_key not in str(caught.value)


async def test_latency_meets_the_client_timeout(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(latency=2.0)
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, timeout=0.2, retry_policy=quick(0)
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

    booking = await client.book(customer, appointment.id, slot)

    assert sandbox.fault_counts["commit_then_drop"] == 1, "the answer to the booking was really lost"
    made = [
        b
        for b in store.snapshot()
        if b.customer_id == customer and b.active and b.start == slot.start_date_time
    ]
    assert [b.id for b in made] == [booking.booking_id], "exactly the booking the server made"
    assert booking.start_date_time == slot.start_date_time


async def test_many_bookings_under_every_fault_never_double_book(sandbox: Sandbox) -> None:
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
            api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(6)
        ) as client:
            for day in range(1, 6):
                try:
                    booking = await client.book(
                        customer, appointment.id, slot_on(appointment, day), validate=False
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
        await client.book(sandbox.demo_customer_id, appointment.id, slot_on(appointment, 2), validate=False)
    assert len(sandbox.store.bookings) == before
    assert sandbox.fault_counts["429"] == 4


async def test_cancel_through_resets_ends_canceled(client: AppointmentsClient, sandbox: Sandbox) -> None:
    customer = sandbox.demo_customer_id
    # 06:00, 09:00, ... 18:00: every slot length fits that grid
    bookings = [
        await client.book(customer, a.id, slot_on(a, 3, hour=6 + 3 * i))
        for i, a in enumerate(bookable(sandbox)[:5])
    ]
    sandbox.faults = Faults(rate_reset=0.3, seed=3)
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(8)
    ) as c:
        for booking in bookings:
            assert str(booking.booking_id) in await c.cancel_booking(booking.booking_id)
            assert sandbox.store.bookings[booking.booking_id].status == "CANCELED"
    assert sandbox.fault_counts["reset"] > 0


async def test_injected_429_and_503_send_no_retry_after_unless_asked(sandbox: Sandbox) -> None:
    headers = {"X-API-KEY": sandbox.api_key, "Accept-Language": "de"}
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as http:
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


async def test_persistent_429_without_retry_after_still_gives_up(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(rate_429=1.0)
    async with AppointmentsClient(
        api_key=sandbox.api_key, base_url=sandbox.base_url, retry_policy=quick(2)
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
