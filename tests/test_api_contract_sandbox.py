"""The client against a sandbox that enforces the real API's contract, over real sockets.

Each test is one fact of ../shared/api-facts.md as a user meets it: the 6-day slot window, slice
sizes, the HEAD key check, scopes, Accept-Language, 409 on racing cancels, the bookings list's
two weeks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from perfectgym_appointments_client import (
    AppointmentsClient,
    BadRequestError,
    PermissionDeniedError,
    ValidationStatus,
)
from perfectgym_appointments_client._zoned import instant
from perfectgym_appointments_client.sandbox import Sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(seed=42, rate_limit=None, write_latency=0.2) as sb:
        yield sb


@pytest.fixture
async def recorded(sandbox: Sandbox) -> AsyncIterator[tuple[AppointmentsClient, list[httpx.Request]]]:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [record]})
    async with (
        http,
        AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url, http_client=http) as client,
    ):
        yield client, sent


async def test_two_weeks_of_slots_with_no_request_for_more_than_six_days(
    sandbox: Sandbox, recorded: tuple[AppointmentsClient, list[httpx.Request]]
) -> None:
    client, sent = recorded
    appointment = next(a for a in sandbox.store.listed() if a.duration == 60 and not a.premium_only)
    slots = await client.get_slots(appointment.id, days_ahead=14)
    asked = [r for r in sent if r.url.path.endswith("/slots")]
    assert len(asked) == 3  # 6 + 6 + 2 days
    assert all(1 <= int(r.url.params["daysAhead"]) <= 6 for r in asked)
    days = {s.start_date_time.date() for s in slots}
    today = sandbox.store.now().date()
    assert min(days) <= today + dt.timedelta(days=2)
    assert max(days) >= today + dt.timedelta(days=12)  # the far end of the two weeks is there
    assert max(days) < today + dt.timedelta(days=14)
    starts = [instant(s.start_date_time) for s in slots]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    # the same as asking the sandbox day by day
    by_day = []
    for offset in range(14):
        by_day += await client.get_slots(
            appointment.id, days_ahead=1, start_date=today + dt.timedelta(days=offset)
        )
    assert [instant(s.start_date_time) for s in by_day] == starts


async def test_the_sandbox_refuses_what_the_api_refuses(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers={"X-API-KEY": sandbox.api_key}) as raw:
        appointment = sandbox.store.listed()[0].id
        too_many = await raw.get(f"/v1/appointments/bookable/{appointment}/slots", params={"daysAhead": 7})
        too_small = await raw.get("/v1/appointments/bookable", params={"sliceSize": 9})
    assert too_many.status_code == too_small.status_code == 400
    assert too_many.json()["errorCode"] == "errormessage.validation.max"
    assert too_many.json()["reference"] == "daysAhead"
    assert too_small.json()["errorCode"] == "errormessage.validation.min"


async def test_listing_with_the_smallest_slice(
    recorded: tuple[AppointmentsClient, list[httpx.Request]],
) -> None:
    client, sent = recorded
    ids = [a.id async for a in client.bookable_appointments(slice_size=10)]
    assert len(ids) == len(set(ids)) > 100
    assert {r.url.params["sliceSize"] for r in sent} == {"10"}


async def test_check_api_key(sandbox: Sandbox) -> None:
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as good:
        assert await good.check_api_key() is True
    async with AppointmentsClient(api_key="not-the-key", base_url=sandbox.base_url) as bad:
        assert await bad.check_api_key() is False
    assert sandbox.read_only_api_key is not None
    async with AppointmentsClient(api_key=sandbox.read_only_api_key, base_url=sandbox.base_url) as read_only:
        assert await read_only.check_api_key() is True  # the key alone, not its scopes


async def test_a_read_only_key_may_read_but_not_book(sandbox: Sandbox) -> None:
    assert sandbox.read_only_api_key is not None
    customer = sandbox.store.add_customer().id
    async with AppointmentsClient(api_key=sandbox.read_only_api_key, base_url=sandbox.base_url) as client:
        appointment = sandbox.store.listed()[0].id
        slots = await client.get_slots(appointment, customer_id=customer, days_ahead=6)
        assert (
            await client.validate_slot(
                customer_id=customer, bookable_appointment_id=appointment, slot=slots[0]
            )
            is ValidationStatus.AVAILABLE
        )
        with pytest.raises(PermissionDeniedError) as info:
            await client.book(customer_id=customer, bookable_appointment_id=appointment, slot=slots[0])
        assert await client.list_bookings(customer) == []
    assert info.value.required_scope == "APPOINTMENTS_WRITE"
    assert "APPOINTMENTS_WRITE" in str(info.value)
    assert not any(b.customer_id == customer for b in sandbox.store.snapshot())


async def test_error_messages_in_german(sandbox: Sandbox) -> None:
    async with (
        AppointmentsClient(
            api_key=sandbox.api_key, base_url=sandbox.base_url, accept_language="de"
        ) as german,
        AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as english,
    ):
        errors = []
        for client in (german, english):
            with pytest.raises(BadRequestError) as info:
                await client.cancel_booking(_started_booking(sandbox))
            errors.append(info.value)
    assert errors[0].error_code == errors[1].error_code
    assert errors[0].error_message != errors[1].error_message
    assert errors[0].error_code == "errormessage.appointment.booking.already.started"
    assert any(word in errors[0].error_message.lower() for word in ("buchung", "begonnen"))


def _started_booking(sandbox: Sandbox) -> int:
    """A booking that began an hour ago: cancelling it is refused (400 already.started)."""
    store = sandbox.store
    customer = store.add_customer()
    appointment = store.listed()[0]
    start = (store.now() - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    with store.lock:
        record = store.ledger.record(
            customer, appointment, start, appointment.instructor_ids[0], store.now(), paid=True
        )
    return record.id


async def test_racing_cancels_both_end_canceled(sandbox: Sandbox) -> None:
    # 409: one request modifies the booking while the other arrives; the loser reads it back.
    store = sandbox.store
    customer = store.add_customer()
    appointment = store.listed()[1]
    start, end, _ = store.slots(appointment.id, store.now().date() + dt.timedelta(days=2), 3, customer.id)[0]
    booking_id = store.book(customer.id, appointment.id, start, end).id
    before = sandbox.stats["requests_by_endpoint"].get("DELETE /v1/appointments/booking/{bookingId}", 0)
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        messages: list[str] = []

        async def cancel() -> None:
            messages.append(await client.cancel_booking(booking_id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel)
            tg.start_soon(cancel)
    assert len(messages) == 2
    assert store.booking(booking_id).status == "CANCELED"
    sent = sandbox.stats["requests_by_endpoint"]["DELETE /v1/appointments/booking/{bookingId}"] - before
    assert sent == 2  # the 409 was settled by reading the booking back, not by a third DELETE


async def test_the_bookings_list_shows_two_weeks(sandbox: Sandbox) -> None:
    store = sandbox.store
    customer = store.add_customer()
    appointment = store.listed()[2]
    today = store.now().date()
    near = store.slots(appointment.id, today + dt.timedelta(days=3), 3, customer.id)[0]
    far = store.slots(appointment.id, today + dt.timedelta(days=20), 3, customer.id)[0]
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        for start, end, _ in (near, far):
            store.book(customer.id, appointment.id, start, end)
        listed = await client.list_bookings(customer.id)
    assert [instant(b.start_date_time) for b in listed] == [instant(near[0])]
