"""The sandbox as users meet it: a real server on 127.0.0.1, driven through the facade and raw HTTP.

"Now" is pinned to Monday 2026-03-23 08:10 in Berlin, so the week of slots crosses the switch to
summer time (Sunday 2026-03-29) and every rule is checked against known dates.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
import trustme

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    AuthenticationError,
    BadRequestError,
    BookingStatus,
    ConflictError,
    NotFoundError,
    Slot,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client.sandbox import ZONE, Appointment, Faults, Sandbox, Store

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 3, 23, 8, 10, tzinfo=ZONE)
WIRE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}\[Europe/Berlin\]$")


def pinned() -> dt.datetime:
    return NOW


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=7, clock=pinned) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[AppointmentsClient]:
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as c:
        yield c


def at(days: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    """A studio-local time ``days`` after NOW's date; 09:00 is on the grid of every slot length."""
    day = NOW.date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE)


def slot_at(appointment: Appointment, start: dt.datetime, extra_minutes: int = 0) -> Slot:
    end = start + dt.timedelta(minutes=appointment.duration + extra_minutes)
    return Slot(start_date_time=start, end_date_time=end)


def plain(store: Store) -> Appointment:
    """An appointment anyone with credits may book, booked as plain BOOKED."""
    return next(a for a in store.appointments.values() if not a.premium_only and not a.requires_confirmation)


def raw(sandbox: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    headers = {"X-API-KEY": sandbox.api_key, **kwargs.pop("headers", {})}
    return httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, **kwargs)


# -- data ------------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_studio() -> None:
    a, b, c = Store(3, clock=pinned), Store(3, clock=pinned), Store(4, clock=pinned)
    assert [x.to_json() for x in a.appointments.values()] == [x.to_json() for x in b.appointments.values()]
    assert a.customers.keys() == b.customers.keys()
    assert [x.to_json() for x in a.appointments.values()] != [x.to_json() for x in c.appointments.values()]


def test_seeded_studio_has_what_the_rules_need() -> None:
    store = Store(42, clock=pinned)
    appointments = list(store.appointments.values())
    assert len(appointments) >= 120
    assert len({a.category for a in appointments}) >= 5
    assert len({a.title for a in appointments}) == len(appointments), "titles identify appointments"
    assert any(a.requires_confirmation for a in appointments)
    assert any(a.premium_only for a in appointments)
    for profile in ("demo", "idle", "no-contingent", "limit-reached", "basic"):
        store.customer_with(profile)


# -- listing ---------------------------------------------------------------------------------------


async def test_cursor_pages_use_the_last_id_as_offset(sandbox: Sandbox) -> None:
    async with raw(sandbox) as http:
        seen: list[int] = []
        offset, pages = "0", 0
        while True:
            body = (
                await http.get("/v1/appointments/bookable", params={"offset": offset, "sliceSize": 40})
            ).json()
            pages += 1
            ids = [item["id"] for item in body["result"]]
            assert body["offset"] == str(ids[-1])
            seen += ids
            offset = body["offset"]
            if not body["hasNext"]:
                break
    assert pages == -(-len(sandbox.store.appointments) // 40)
    assert seen == sorted(sandbox.store.appointments)


async def test_facade_lists_every_appointment(client: AppointmentsClient, sandbox: Sandbox) -> None:
    listed = [a async for a in client.bookable_appointments(slice_size=100)]
    assert [a.id for a in listed] == list(sandbox.store.appointments)
    first = sandbox.store.appointments[listed[0].id]
    assert (listed[0].title, listed[0].duration, listed[0].category) == (
        first.title,
        first.duration,
        first.category,
    )
    one = await client.get_bookable_appointment(listed[5].id)
    assert one.id == listed[5].id
    assert one.title == listed[5].title


async def test_slots_are_zoned_on_the_wire_across_the_dst_switch(sandbox: Sandbox) -> None:
    appointment = plain(sandbox.store)
    async with raw(sandbox) as http:
        answer = await http.get(
            f"/v1/appointments/bookable/{appointment.id}/slots",
            params={"daysAhead": 7, "slotWindowStartDate": "2026-03-25"},
        )
    slots = answer.json()
    assert slots
    for slot in slots:
        assert WIRE.match(slot["startDateTime"]), slot["startDateTime"]
        assert WIRE.match(slot["endDateTime"]), slot["endDateTime"]
    offsets = {s["startDateTime"][23:29] for s in slots}
    assert offsets == {"+01:00", "+02:00"}, "the week crosses the switch to summer time"
    assert not any(s["startDateTime"].startswith("2026-03-29") for s in slots), "Sundays are closed"


async def test_facade_gets_aware_slots_in_the_studio_zone(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    appointment = plain(sandbox.store)
    slots = await client.get_slots(appointment.id, days_ahead=2)
    assert slots
    first = slots[0]
    assert first.start_date_time.tzinfo is not None
    assert str(first.start_date_time.tzinfo) == "Europe/Berlin"
    assert first.start_date_time > NOW
    assert first.end_date_time - first.start_date_time == dt.timedelta(minutes=appointment.duration)
    assert {i.id for i in first.instructors or []} == set(appointment.instructor_ids)


# -- errors ----------------------------------------------------------------------------------------


async def test_missing_or_wrong_key_is_401(sandbox: Sandbox) -> None:
    for headers in ({}, {"X-API-KEY": "wrong"}):
        async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as http:
            answer = await http.get("/v1/appointments/bookable")
        assert answer.status_code == 401
        assert answer.json()["errorCode"] == "UNAUTHORIZED"
        assert answer.json()["traceId"]
    async with AppointmentsClient(api_key="wrong", base_url=sandbox.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_bookable_appointment(next(iter(sandbox.store.appointments)))
    assert caught.value.status_code == 401
    assert "wrong" not in repr(caught.value)
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "reference"),
    [
        ("GET", "/v1/appointments/bookable", {"sliceSize": "0"}, None, "sliceSize"),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "101"}, None, "sliceSize"),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "ten"}, None, "sliceSize"),
        ("GET", "/v1/appointments/bookable", {"offset": "abc"}, None, "offset"),
        ("GET", "/v1/appointments/bookable/abc", {}, None, "bookableAppointmentId"),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"daysAhead": "0"}, None, "daysAhead"),
        (
            "GET",
            "/v1/appointments/bookable/{a}/slots",
            {"slotWindowStartDate": "22.06.2026"},
            None,
            "slotWindowStartDate",
        ),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"customerId": "x"}, None, "customerId"),
        ("GET", "/v1/appointments/booking", {}, None, "customerId"),
        ("POST", "/v1/appointments/bookable/validate", {}, "not json", "body"),
        ("POST", "/v1/appointments/bookable/validate", {}, [1, 2], "body"),
        ("POST", "/v1/appointments/booking/book", {}, {"bookableAppointmentId": 1}, "customerId"),
        (
            "POST",
            "/v1/appointments/booking/book",
            {},
            {"customerId": True, "bookableAppointmentId": 1},
            "customerId",
        ),
        (
            "POST",
            "/v1/appointments/booking/book",
            {},
            {
                "customerId": 1,
                "bookableAppointmentId": 1,
                "startDateTime": "2026-03-24 09:00",
                "endDateTime": "2026-03-24T10:00Z",
            },
            "startDateTime",
        ),
        (
            "POST",
            "/v1/appointments/booking/book",
            {},
            {
                "customerId": 1,
                "bookableAppointmentId": 1,
                "startDateTime": "2026-03-24T09:00Z",
                "endDateTime": "2026-03-24T10:00+01:00[Mars/Olympus]",
            },
            "endDateTime",
        ),
        (
            "POST",
            "/v1/appointments/booking/book",
            {},
            {
                "customerId": 1,
                "bookableAppointmentId": 1,
                "startDateTime": "2026-03-24T09:00Z",
                "endDateTime": "2026-03-24T10:00Z",
                "instructorIds": "7",
            },
            "instructorIds",
        ),
        ("DELETE", "/v1/appointments/booking/x", {}, None, "bookingId"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    sandbox: Sandbox, method: str, path: str, params: dict[str, str], body: Any, reference: str
) -> None:
    path = path.replace("{a}", str(next(iter(sandbox.store.appointments))))
    before = len(sandbox.store.bookings)
    async with raw(sandbox) as http:
        content = body if isinstance(body, str) else None
        json_body = None if isinstance(body, str) or body is None else body
        answer = await http.request(method, path, params=params, content=content, json=json_body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["reference"] == reference
    assert error["errorCode"] == "INVALID_PARAMETER"
    assert error["errorMessage"]
    assert len(sandbox.store.bookings) == before


async def test_unknown_ids_are_404_naming_what_was_missing(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    appointment = plain(sandbox.store)
    customer = sandbox.demo_customer_id
    cases = [
        (client.get_bookable_appointment(1), "bookableAppointmentId"),
        (client.get_slots(1), "bookableAppointmentId"),
        (client.get_booking(1), "bookingId"),
        (client.cancel_booking(1), "bookingId"),
        (client.list_bookings(1), "customerId"),
        (client.get_slots(appointment.id, customer_id=1), "customerId"),
        (client.validate_slot(1, appointment.id, slot_at(appointment, at(1))), "customerId"),
        (client.validate_slot(customer, 1, slot_at(appointment, at(1))), "bookableAppointmentId"),
    ]
    for call, reference in cases:
        with pytest.raises(NotFoundError) as caught:
            await call
        assert caught.value.reference == reference
        assert caught.value.error_code == "NOT_FOUND"


# -- the rules -------------------------------------------------------------------------------------


async def test_every_validation_status_is_reachable(client: AppointmentsClient, sandbox: Sandbox) -> None:
    store = sandbox.store
    appointment = plain(store)
    other = next(a for a in store.appointments.values() if a.id != appointment.id and not a.premium_only
                 and not set(a.instructor_ids) & set(appointment.instructor_ids))  # fmt: skip
    premium = next(a for a in store.appointments.values() if a.premium_only)
    demo = sandbox.demo_customer_id
    regular = next(c.id for c in store.customers.values() if c.profile == "regular" and not c.idle_periods)
    tomorrow = at(1)
    # The demo customer holds `appointment` tomorrow at 9; that blocks the customer and the room.
    await client.book(demo, appointment.id, slot_at(appointment, tomorrow))

    cases: list[tuple[int, Appointment, Slot, ValidationStatus]] = [
        (regular, appointment, slot_at(appointment, at(2)), ValidationStatus.AVAILABLE),
        (regular, appointment, slot_at(appointment, at(2), extra_minutes=15), ValidationStatus.PERIOD_DOES_NOT_MATCH),
        (regular, appointment, slot_at(appointment, at(2, 9, 5)), ValidationStatus.PERIOD_DOES_NOT_MATCH),
        (regular, appointment, slot_at(appointment, at(-1)), ValidationStatus.PAST_START_DATE_TIME),
        (regular, appointment, slot_at(appointment, at(35)), ValidationStatus.DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME),
        (regular, appointment, slot_at(appointment, at(6)), ValidationStatus.STUDIO_CLOSED),  # Sunday
        (regular, appointment, slot_at(appointment, at(2, 3)), ValidationStatus.STUDIO_CLOSED),  # 03:00
        (store.customer_with("idle").id, appointment, slot_at(appointment, at(2)), ValidationStatus.CUSTOMER_IDLE),
        (store.customer_with("basic").id, premium, slot_at(premium, at(2)),
         ValidationStatus.BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED),
        (store.customer_with("no-contingent").id, appointment, slot_at(appointment, at(2)), ValidationStatus.NO_CONTINGENT),
        (store.customer_with("limit-reached").id, appointment, slot_at(appointment, at(2)),
         ValidationStatus.BOOKING_LIMIT_REACHED),
        (demo, other, slot_at(other, tomorrow), ValidationStatus.CUSTOMER_IN_OTHER_BOOKING),
        (regular, appointment, slot_at(appointment, tomorrow), ValidationStatus.RESOURCE_NOT_AVAILABLE),
    ]  # fmt: skip
    reached = set()
    for customer, target, slot, expected in cases:
        status = await client.validate_slot(customer, target.id, slot)
        assert status is expected, (customer, target.title, slot.start_date_time, status)
        reached.add(status)
        if expected is ValidationStatus.AVAILABLE:
            continue
        # Booking applies the same rules: refused with 409 and the status as the error code.
        before = len(store.bookings)
        with pytest.raises(ConflictError) as caught:
            await client.book(customer, target.id, slot, validate=False)
        assert caught.value.error_code == expected.value
        assert len(store.bookings) == before
    assert reached == set(ValidationStatus)


async def test_instructor_taken_elsewhere_makes_the_resource_unavailable(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    # A one-instructor appointment, and another appointment that instructor also leads.
    solo, shared = next(
        (a, b)
        for a in store.appointments.values()
        if len(a.instructor_ids) == 1
        for b in store.appointments.values()
        if b.id != a.id and a.instructor_ids[0] in b.instructor_ids and not b.premium_only
    )
    instructor = solo.instructor_ids[0]
    demo = sandbox.demo_customer_id
    regular = next(c.id for c in store.customers.values() if c.profile == "regular" and not c.idle_periods)
    assert await client.validate_slot(demo, solo.id, slot_at(solo, at(2))) is ValidationStatus.AVAILABLE
    booked = await client.book(regular, shared.id, slot_at(shared, at(2)), instructor_ids=[instructor])
    assert [i.id for i in booked.instructors] == [instructor]
    assert (
        await client.validate_slot(demo, solo.id, slot_at(solo, at(2)))
        is ValidationStatus.RESOURCE_NOT_AVAILABLE
    )
    assert await client.validate_slot(demo, solo.id, slot_at(solo, at(3))) is ValidationStatus.AVAILABLE


async def test_booking_takes_the_slot_and_cancel_gives_it_back(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    appointment = plain(store)
    customer = store.customer_with("demo")
    credits = customer.contingent[appointment.category]
    slots = await client.get_slots(appointment.id, customer_id=customer.id, days_ahead=3)
    slot = slots[3]

    booking = await client.book(customer.id, appointment.id, slot)
    assert booking.booking_status is BookingStatus.BOOKED
    assert booking.is_confirmed
    assert (booking.start_date_time, booking.end_date_time) == (slot.start_date_time, slot.end_date_time)
    assert booking.title == appointment.title
    assert customer.contingent[appointment.category] == credits - 1
    record = store.bookings[booking.booking_id]
    assert (record.customer_id, record.appointment_id, record.status) == (
        customer.id,
        appointment.id,
        "BOOKED",
    )

    starts = {s.start_date_time for s in await client.get_slots(appointment.id, days_ahead=3)}
    assert slot.start_date_time not in starts
    with pytest.raises(SlotNotBookableError) as caught:
        await client.book(store.customer_with("basic").id, appointment.id, slot)
    assert caught.value.status is ValidationStatus.RESOURCE_NOT_AVAILABLE

    read = await client.get_booking(booking.booking_id)
    assert read.customer_id == customer.id
    assert read.booking_id == booking.booking_id

    assert str(booking.booking_id) in await client.cancel_booking(booking.booking_id)
    assert store.bookings[booking.booking_id].status == "CANCELED"
    assert customer.contingent[appointment.category] == credits
    starts = {s.start_date_time for s in await client.get_slots(appointment.id, days_ahead=3)}
    assert slot.start_date_time in starts
    listed = {b.booking_id: b for b in await client.list_bookings(customer.id)}
    assert listed[booking.booking_id].is_canceled

    with pytest.raises(ConflictError) as again:
        await client.cancel_booking(booking.booking_id)
    assert again.value.error_code == "BOOKING_ALREADY_CANCELED"


async def test_some_appointments_need_confirmation(client: AppointmentsClient, sandbox: Sandbox) -> None:
    appointment = next(
        a for a in sandbox.store.appointments.values() if a.requires_confirmation and not a.premium_only
    )
    customer = sandbox.demo_customer_id
    slot = (await client.get_slots(appointment.id, customer_id=customer, days_ahead=2))[0]
    booking = await client.book(customer, appointment.id, slot)
    assert booking.booking_status is BookingStatus.BOOKED_WITH_CONFIRMATION_REQUIRED
    assert booking.needs_confirmation
    assert not booking.is_confirmed


async def test_slots_for_a_customer_are_only_those_they_may_book(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    appointment = plain(store)
    premium = next(a for a in store.appointments.values() if a.premium_only)
    assert await client.get_slots(appointment.id, days_ahead=3)
    assert (
        await client.get_slots(appointment.id, customer_id=store.customer_with("idle").id, days_ahead=3) == []
    )
    assert await client.get_slots(premium.id, customer_id=store.customer_with("basic").id, days_ahead=3) == []
    assert await client.get_slots(premium.id, customer_id=sandbox.demo_customer_id, days_ahead=3)


async def test_only_one_of_many_racing_customers_gets_a_slot(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    appointment = plain(store)
    slot = slot_at(appointment, at(3))
    customers = [store.add_customer().id for _ in range(12)]
    outcomes: list[object] = []

    async def attempt(customer: int) -> None:
        try:
            outcomes.append(await client.book(customer, appointment.id, slot, validate=False))
        except ConflictError as exc:
            outcomes.append(exc.error_code)

    async with anyio.create_task_group() as tg:
        for customer in customers:
            tg.start_soon(attempt, customer)
    made = [o for o in outcomes if not isinstance(o, str)]
    assert len(made) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["RESOURCE_NOT_AVAILABLE"] * 11
    active = [
        b
        for b in store.snapshot()
        if b.active and b.appointment_id == appointment.id and b.start == slot.start_date_time
    ]
    assert len(active) == 1


async def test_reschedule_moves_the_booking_on_the_server(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    appointment = plain(sandbox.store)
    customer = sandbox.demo_customer_id
    slots = await client.get_slots(appointment.id, customer_id=customer, days_ahead=2)
    first = await client.book(customer, appointment.id, slots[0])
    moved = await client.reschedule(first.booking_id, slots[2])  # the appointment is found by its title
    assert moved.start_date_time == slots[2].start_date_time
    records = sandbox.store.bookings
    assert records[first.booking_id].status == "CANCELED"
    assert records[moved.booking_id].status == "BOOKED"
    assert records[moved.booking_id].appointment_id == appointment.id


# -- the server itself -----------------------------------------------------------------------------


def test_sync_context_binds_loopback_and_frees_the_port() -> None:
    with Sandbox(seed=1) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:")
        assert sb.port > 0
        assert "sandbox-key" not in repr(sb)
        answer = httpx.get(f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key})
        assert answer.status_code == 200
        port = sb.port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


async def test_async_context_runs_beside_the_event_loop() -> None:
    sandbox = Sandbox(seed=1, api_key="k-123")
    async with sandbox as sb, AppointmentsClient(api_key="k-123", base_url=sandbox.base_url) as client:
        # Both run at once: the server lives on its own thread and loop.
        async with anyio.create_task_group() as tg:
            results: list[int] = []

            async def count() -> None:
                results.append(len([a async for a in client.bookable_appointments(slice_size=25)]))

            for _ in range(4):
                tg.start_soon(count)
        assert results == [len(sb.store.appointments)] * 4


def test_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="exceed"):
        Faults(rate_429=0.5, rate_503=0.5, rate_reset=0.5)


async def test_bad_request_through_the_facade_carries_the_reference(sandbox: Sandbox) -> None:
    # The facade refuses bad arguments itself, so go around it to see the server's 400.
    async with AppointmentsClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        appointment = plain(sandbox.store)
        with pytest.raises(BadRequestError) as caught:
            await client.get_slots(appointment.id, days_ahead=400)
    assert caught.value.reference == "daysAhead"


# -- HTTPS ----------------------------------------------------------------------------------------


async def test_sandbox_over_https(tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with Sandbox(
        seed=7, clock=pinned, ssl_certfile=str(tmp_path / "cert.pem"), ssl_keyfile=str(tmp_path / "key.pem")
    ) as sb:
        assert sb.base_url.startswith("https://127.0.0.1:")
        async with AppointmentsClient(
            api_key=sb.api_key, base_url=sb.base_url, http_client=httpx.AsyncClient(verify=trusting)
        ) as client:
            first = await client.bookable_appointments(slice_size=5, limit=5).to_list()
            assert len(first) == 5
        # A client that does not trust the sandbox's CA gets a typed connection error, no answer.
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, max_retries=0) as client:
            with pytest.raises(APIConnectionError) as info:
                await client.get_bookable_appointment(first[0].id)
            assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
            assert sb.api_key not in str(info.value)


def test_sandbox_needs_both_tls_files() -> None:
    with pytest.raises(ValueError, match="both"):
        Sandbox(ssl_certfile="cert.pem")


# -- connections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_connections", "expected"), [(None, 16), (3, 3)])
async def test_many_tasks_share_a_few_kept_alive_connections(
    max_connections: int | None, expected: int
) -> None:
    # 50 ms per answer, so the 48 calls really overlap and the client opens all it may.
    async with Sandbox(seed=7, clock=pinned, faults=Faults(latency=0.05)) as sb:
        kwargs = {} if max_connections is None else {"max_connections": max_connections}
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, **kwargs) as client:
            ids = [a.id for a in await client.bookable_appointments(slice_size=48, limit=48).to_list()]
            for _ in range(2):  # the second round reuses the first round's connections
                async with anyio.create_task_group() as tg:
                    for appointment_id in ids:
                        tg.start_soon(client.get_bookable_appointment, appointment_id)
        assert sb.stats["requests"] == 1 + 2 * 48
        assert sb.stats["connections"] == expected
