"""The sandbox as users meet it: a real server on 127.0.0.1, driven through the facade and raw HTTP,
and its own controls (faults and write latency changed while it runs, its port, a second start).

"Now" is pinned to Monday 2026-03-23 08:10 in Berlin, so the week of slots crosses the switch to
summer time (Sunday 2026-03-29) and every rule is checked against known dates. The raw protocol
(bounds, error bodies, languages, keys, the rate limit) is in test_sandbox_contract.py.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import re
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import trustme

from perfectgym_appointments_client import (
    APIConnectionError,
    AppointmentsClient,
    AuthenticationError,
    BookingStatus,
    Slot,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client._booking._cancel import ALREADY_CANCELED
from perfectgym_appointments_client._tls import shared_ssl_context
from perfectgym_appointments_client.sandbox import DEMO_CUSTOMER_ID, ZONE, Appointment, Faults, Sandbox, Store

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
    return next(
        a
        for a in store.appointments.values()
        if a.online and not a.premium_only and not a.requires_confirmation
    )


def regular_customer(store: Store) -> int:
    return next(c.id for c in store.customers.values() if c.profile == "regular" and not c.idle_periods)


def wire(value: dt.datetime) -> str:
    return f"{value.isoformat(timespec='milliseconds')}[Europe/Berlin]"


def request_body(
    customer: int, appointment: Appointment | int, start: dt.datetime, end: dt.datetime | None = None
) -> dict[str, Any]:
    appointment_id = appointment if isinstance(appointment, int) else appointment.id
    if end is None:
        assert not isinstance(appointment, int)
        end = start + dt.timedelta(minutes=appointment.duration)
    return {
        "customerId": customer,
        "bookableAppointmentId": appointment_id,
        "startDateTime": wire(start),
        "endDateTime": wire(end),
    }


def raw(sandbox: Sandbox, **kwargs: Any) -> httpx.AsyncClient:
    headers = {"X-API-KEY": sandbox.api_key, **kwargs.pop("headers", {})}
    # Plain HTTP: the process's one TLS context spares each client loading the CA bundle (~20 ms).
    kwargs.setdefault("verify", shared_ssl_context())
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
    assert not store.offline_appointment().online
    assert sum(a.online for a in appointments) >= len(appointments) - 3, "nearly all are bookable online"
    assert {a.lead_minutes for a in appointments} == {0, 60, 120}
    assert sum(a.lead_minutes == 0 for a in appointments) >= len(appointments) // 4
    for profile in ("demo", "idle", "no-contingent", "limit-reached", "basic"):
        store.customer_with(profile)


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 1234])
def test_the_demo_customer_is_the_documented_id_for_every_seed(seed: int) -> None:
    store = Store(seed, clock=pinned)
    assert store.customer_with("demo").id == DEMO_CUSTOMER_ID == 1210005199
    assert len(store.customers) == 60, "no other customer was dropped or merged into it"
    assert [c.id for c in store.customers.values()].count(DEMO_CUSTOMER_ID) == 1


@pytest.mark.parametrize(("appointments", "customers"), [(0, 60), (132, 7)])
def test_the_store_needs_an_appointment_and_a_customer_for_each_rule(
    appointments: int, customers: int
) -> None:
    with pytest.raises(ValueError, match="at least 1 appointment and 8 customers"):
        Store(7, appointments=appointments, customers=customers)


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
    listed = [a.id for a in sandbox.store.listed()]
    assert pages == -(-len(listed) // 40)
    assert seen == sorted(listed)
    assert sandbox.store.offline_appointment().id not in seen


async def test_facade_lists_every_appointment(client: AppointmentsClient, sandbox: Sandbox) -> None:
    listed = [a async for a in client.bookable_appointments(slice_size=100)]
    assert [a.id for a in listed] == [a.id for a in sandbox.store.listed()]
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
            params={"daysAhead": 6, "slotWindowStartDate": "2026-03-25"},  # Wednesday to Monday
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

VALIDATE, BOOK = "/v1/appointments/bookable/validate", "/v1/appointments/booking/book"
MIN, MAX = "errormessage.validation.min", "errormessage.validation.max"
NUMBER, REQUIRED = "errormessage.validation.number", "errormessage.validation.required"
INVALID, DATE = "errormessage.validation.invalid", "errormessage.validation.date"
DATETIME, BODY = "errormessage.validation.datetime", "errormessage.request.body.invalid"
START, END = "2026-03-24T09:00:00.000+01:00[Europe/Berlin]", "2026-03-24T10:00:00.000+01:00[Europe/Berlin]"


async def test_missing_or_wrong_key_is_401(sandbox: Sandbox) -> None:
    for headers in ({}, {"X-API-KEY": "wrong"}):
        async with httpx.AsyncClient(
            base_url=sandbox.base_url, headers=headers, verify=shared_ssl_context()
        ) as http:
            answer = await http.get("/v1/appointments/bookable")
        assert answer.status_code == 401
        assert answer.json()["errorCode"] == "errormessage.unauthorized"
        assert answer.json()["traceId"]
    async with AppointmentsClient(api_key="wrong", base_url=sandbox.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_bookable_appointment(next(iter(sandbox.store.appointments)))
    assert caught.value.status_code == 401
    assert "wrong" not in repr(caught.value)
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "reference", "code"),
    [
        ("GET", "/v1/appointments/bookable", {"sliceSize": "0"}, None, "sliceSize", MIN),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "9"}, None, "sliceSize", MIN),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "101"}, None, "sliceSize", MAX),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "ten"}, None, "sliceSize", NUMBER),
        ("GET", "/v1/appointments/bookable", {"sliceSize": "5_0"}, None, "sliceSize", NUMBER),  # int() takes it
        ("GET", "/v1/appointments/bookable", {"offset": "abc"}, None, "offset", INVALID),
        ("GET", "/v1/appointments/bookable/abc", {}, None, "bookableAppointmentId", NUMBER),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"daysAhead": "0"}, None, "daysAhead", MIN),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"daysAhead": "7"}, None, "daysAhead", MAX),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"slotWindowStartDate": "22.06.2026"}, None, "slotWindowStartDate", DATE),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"slotWindowStartDate": "20260622"}, None, "slotWindowStartDate", DATE),
        ("GET", "/v1/appointments/bookable/{a}/slots", {"customerId": "x"}, None, "customerId", NUMBER),
        ("GET", "/v1/appointments/booking", {}, None, "customerId", REQUIRED),
        ("GET", "/v1/appointments/booking", {"customerId": "9" * 20}, None, "customerId", NUMBER),  # past 64 bits
        ("POST", VALIDATE, {}, "not json", "body", BODY),
        ("POST", VALIDATE, {}, [1, 2], "body", BODY),
        ("POST", BOOK, {}, {"bookableAppointmentId": 1}, "customerId", REQUIRED),
        ("POST", BOOK, {}, {"customerId": True, "bookableAppointmentId": 1, "startDateTime": START, "endDateTime": END}, "customerId", NUMBER),
        ("POST", BOOK, {}, {"customerId": 1, "bookableAppointmentId": 1.5, "startDateTime": START, "endDateTime": END}, "bookableAppointmentId", NUMBER),
        ("POST", BOOK, {}, {"customerId": 1, "bookableAppointmentId": 1, "startDateTime": "2026-03-24 09:00", "endDateTime": END}, "startDateTime", DATETIME),
        ("POST", BOOK, {}, {"customerId": 1, "bookableAppointmentId": 1, "startDateTime": START, "endDateTime": "2026-03-24T10:00+01:00[Mars/Olympus]"}, "endDateTime", DATETIME),
        ("POST", BOOK, {}, {"customerId": 1, "bookableAppointmentId": 1, "startDateTime": START, "endDateTime": END, "instructorIds": "7"}, "instructorIds", INVALID),
        ("DELETE", "/v1/appointments/booking/x", {}, None, "bookingId", NUMBER),
    ],
)  # fmt: skip
async def test_bad_input_is_400_naming_the_field(
    sandbox: Sandbox, method: str, path: str, params: dict[str, str], body: Any, reference: str, code: str
) -> None:
    path = path.replace("{a}", str(plain(sandbox.store).id))
    before = len(sandbox.store.bookings)
    async with raw(sandbox) as http:
        content = body if isinstance(body, str) else None
        json_body = None if isinstance(body, str) or body is None else body
        answer = await http.request(method, path, params=params, content=content, json=json_body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["reference"] == reference
    assert error["errorCode"] == code
    assert error["errorMessage"]
    assert len(sandbox.store.bookings) == before


async def test_unknown_ids_are_404_naming_what_was_missing(sandbox: Sandbox) -> None:
    appointment = plain(sandbox.store)
    demo = sandbox.demo_customer_id
    appointment_gone, customer_gone = (
        "errormessage.bookable.appointment.not.found",
        "errormessage.customer.not.found",
    )
    booking_gone = "errormessage.appointment.booking.not.found"
    cases: list[tuple[str, str, dict[str, Any], Any, str, str]] = [
        ("GET", "/v1/appointments/bookable/1", {}, None, "bookableAppointmentId", appointment_gone),
        ("GET", "/v1/appointments/bookable/1/slots", {}, None, "bookableAppointmentId", appointment_gone),
        ("GET", "/v1/appointments/booking/1", {}, None, "bookingId", booking_gone),
        ("DELETE", "/v1/appointments/booking/1", {}, None, "bookingId", booking_gone),
        ("GET", "/v1/appointments/booking", {"customerId": 1}, None, "customerId", customer_gone),
        ("GET", f"/v1/appointments/bookable/{appointment.id}/slots", {"customerId": 1}, None, "customerId", customer_gone),
        ("POST", VALIDATE, {}, request_body(1, appointment, at(1)), "customerId", customer_gone),
        ("POST", VALIDATE, {}, request_body(demo, 1, at(1), at(1, 10)), "bookableAppointmentId", appointment_gone),
    ]  # fmt: skip
    async with raw(sandbox) as http:
        for method, path, params, body, reference, code in cases:
            answer = await http.request(method, path, params=params, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            error = answer.json()
            assert (error["reference"], error["errorCode"]) == (reference, code)
            assert error["typedArgs"] == [{"value": 1, "type": "INTEGER"}]


@pytest.mark.parametrize("value", [1679644800, ["2026-03-24T09:00"], {"at": START}])  # null is "required"
def test_a_date_time_that_is_not_a_string_is_400_naming_the_field(value: object) -> None:
    with Sandbox(seed=7, rate_limit=None) as sb:
        appointment = next(iter(sb.store.appointments))
        body = {
            "customerId": sb.demo_customer_id,
            "bookableAppointmentId": appointment,
            "startDateTime": value,
            "endDateTime": START,
        }
        answer = httpx.post(
            f"{sb.base_url}/v1/appointments/bookable/validate", headers={"X-API-KEY": sb.api_key}, json=body
        )
    assert answer.status_code == 400
    error = answer.json()
    assert (error["errorCode"], error["reference"]) == ("errormessage.validation.datetime", "startDateTime")


# -- the rules -------------------------------------------------------------------------------------


def _other(store: Store, appointment: Appointment) -> Appointment:
    """An appointment sharing no instructor with ``appointment``: only the customer can clash."""
    return next(
        a for a in store.appointments.values()
        if a.online and a.id != appointment.id and not a.premium_only
        and not set(a.instructor_ids) & set(appointment.instructor_ids)
    )  # fmt: skip


def _demo_holds_plain_tomorrow(store: Store) -> Appointment:
    appointment = plain(store)
    start = at(1)
    store.book(
        store.customer_with("demo").id,
        appointment.id,
        start,
        start + dt.timedelta(minutes=appointment.duration),
    )
    return appointment


def _lead_time(store: Store, minutes: int) -> Appointment:
    return next(
        a
        for a in store.appointments.values()
        if a.online and not a.premium_only and a.lead_minutes == minutes
    )


Way = Callable[[Store], dict[str, Any]]

# Every ValidationStatus, and how a request reaches it through a real rule of the studio.
# A status with no entry here (a later spec may add some) is listed in the run as skipped.
WAYS: list[tuple[str, Way]] = [
    ("AVAILABLE", lambda s: request_body(regular_customer(s), plain(s), at(2))),
    ("PAST_START_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(-1))),
    ("END_DATE_TIME_NOT_AFTER_START_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(2), at(2))),
    ("END_DATE_TIME_NOT_AFTER_START_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(2, 10), at(2))),
    # Checked first: an end before the start is that, even in the past.
    ("END_DATE_TIME_NOT_AFTER_START_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(-1, 10), at(-1))),
    ("PERIOD_DOES_NOT_MATCH", lambda s: request_body(regular_customer(s), plain(s), at(2), at(2) + dt.timedelta(minutes=plain(s).duration + 15))),
    ("PERIOD_DOES_NOT_MATCH", lambda s: request_body(regular_customer(s), plain(s), at(2, 9, 5))),
    ("CUSTOMER_IN_OTHER_BOOKING", lambda s: request_body(s.customer_with("demo").id, _other(s, _demo_holds_plain_tomorrow(s)), at(1))),
    ("CUSTOMER_IDLE", lambda s: request_body(s.customer_with("idle").id, plain(s), at(2))),
    ("NO_CONTINGENT", lambda s: request_body(s.customer_with("no-contingent").id, plain(s), at(2))),
    ("BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED", lambda s: request_body(
        s.customer_with("basic").id, next(a for a in s.appointments.values() if a.premium_only and a.online), at(2))),
    ("BOOKING_LIMIT_REACHED", lambda s: request_body(s.customer_with("limit-reached").id, plain(s), at(2))),
    # 09:00 today is 50 minutes after NOW: inside a two-hour lead time, outside none.
    ("DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME", lambda s: request_body(regular_customer(s), _lead_time(s, 120), at(0, 9))),
    ("DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(29))),
    ("DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME", lambda s: request_body(regular_customer(s), plain(s), at(35))),
    ("STUDIO_CLOSED", lambda s: request_body(regular_customer(s), plain(s), at(6))),  # Sunday
    ("STUDIO_CLOSED", lambda s: request_body(regular_customer(s), plain(s), at(2, 3))),  # 03:00
    ("RESOURCE_NOT_AVAILABLE", lambda s: request_body(regular_customer(s), _demo_holds_plain_tomorrow(s), at(1))),
    ("NOT_AVAILABLE", lambda s: request_body(regular_customer(s), s.offline_appointment(), at(2))),
]  # fmt: skip


def _ways() -> list[Any]:
    params = [pytest.param(status, way, id=f"{status}-{n}") for n, (status, way) in enumerate(WAYS)]
    unreached = sorted({s.value for s in ValidationStatus} - {status for status, _ in WAYS})
    return params + [pytest.param(status, None, id=f"{status}-no-rule") for status in unreached]


@pytest.mark.parametrize(("status", "way"), _ways())
async def test_every_validation_status_is_reachable(sandbox: Sandbox, status: str, way: Way | None) -> None:
    if way is None:
        pytest.skip(f"no sandbox rule reaches {status} yet")
    store = sandbox.store
    body = way(store)
    before = len(store.bookings)
    async with raw(sandbox) as http:
        validated = await http.post(VALIDATE, json=body)
        assert validated.status_code == 200, validated.text
        assert validated.json() == {"validationStatus": status}
        booked = await http.post(BOOK, json=body)
    if status == "AVAILABLE":
        assert booked.status_code == 200, booked.text
        assert len(store.bookings) == before + 1
        return
    # Booking applies the same rules: refused with 400 and the status as the error code.
    assert booked.status_code == 400, booked.text
    error = booked.json()
    assert error["errorCode"] == status
    assert error["reference"] == "startDateTime"
    assert error["typedArgs"] == [{"value": status, "type": "ENUM"}]
    assert error["errorMessage"]
    assert len(store.bookings) == before


async def test_the_facade_reads_every_status_the_sandbox_sends(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    for status, way in WAYS:
        if status in {"CUSTOMER_IN_OTHER_BOOKING", "RESOURCE_NOT_AVAILABLE"}:
            continue  # their ways book a slot; one store cannot hold both
        if status == "END_DATE_TIME_NOT_AFTER_START_DATE_TIME":
            continue  # the facade's Slot refuses such a period before sending it
        body = way(store)
        slot = Slot(
            start_date_time=dt.datetime.fromisoformat(body["startDateTime"].split("[")[0]),
            end_date_time=dt.datetime.fromisoformat(body["endDateTime"].split("[")[0]),
        )
        got = await client.validate_slot(
            customer_id=body["customerId"], bookable_appointment_id=body["bookableAppointmentId"], slot=slot
        )
        assert got == ValidationStatus(status)


async def test_instructor_taken_elsewhere_makes_the_resource_unavailable(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    # A one-instructor appointment, and another appointment that instructor also leads.
    solo, shared = next(
        (a, b)
        for a in store.appointments.values()
        if len(a.instructor_ids) == 1 and a.online
        for b in store.appointments.values()
        if b.id != a.id and a.instructor_ids[0] in b.instructor_ids and not b.premium_only and b.online
    )
    instructor = solo.instructor_ids[0]
    demo = sandbox.demo_customer_id
    regular = regular_customer(store)
    assert (
        await client.validate_slot(
            customer_id=demo, bookable_appointment_id=solo.id, slot=slot_at(solo, at(2))
        )
        is ValidationStatus.AVAILABLE
    )
    booked = await client.book(
        customer_id=regular,
        bookable_appointment_id=shared.id,
        slot=slot_at(shared, at(2)),
        instructor_ids=[instructor],
    )
    assert [i.id for i in booked.instructors] == [instructor]
    assert (
        await client.validate_slot(
            customer_id=demo, bookable_appointment_id=solo.id, slot=slot_at(solo, at(2))
        )
        is ValidationStatus.RESOURCE_NOT_AVAILABLE
    )
    assert (
        await client.validate_slot(
            customer_id=demo, bookable_appointment_id=solo.id, slot=slot_at(solo, at(3))
        )
        is ValidationStatus.AVAILABLE
    )


async def test_booking_takes_the_slot_and_cancel_gives_it_back(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    appointment = plain(store)
    customer = store.customer_with("demo")
    credits = customer.contingent[appointment.category]
    slots = await client.get_slots(appointment.id, customer_id=customer.id, days_ahead=3)
    slot = slots[3]

    booking = await client.book(customer_id=customer.id, bookable_appointment_id=appointment.id, slot=slot)
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
        await client.book(
            customer_id=store.customer_with("basic").id, bookable_appointment_id=appointment.id, slot=slot
        )
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

    # Cancelling again is done, and says so (the API answers 400 already.canceled); nothing changes.
    assert await client.cancel_booking(booking.booking_id) == ALREADY_CANCELED
    assert store.bookings[booking.booking_id].status == "CANCELED"
    assert customer.contingent[appointment.category] == credits


async def test_some_appointments_need_confirmation(client: AppointmentsClient, sandbox: Sandbox) -> None:
    appointment = next(
        a
        for a in sandbox.store.appointments.values()
        if a.requires_confirmation and not a.premium_only and a.online
    )
    customer = sandbox.demo_customer_id
    slot = (await client.get_slots(appointment.id, customer_id=customer, days_ahead=2))[0]
    booking = await client.book(customer_id=customer, bookable_appointment_id=appointment.id, slot=slot)
    assert booking.booking_status is BookingStatus.BOOKED_WITH_CONFIRMATION_REQUIRED
    assert booking.needs_confirmation
    assert not booking.is_confirmed


async def test_slots_for_a_customer_are_only_those_they_may_book(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    store = sandbox.store
    appointment = plain(store)
    premium = next(a for a in store.appointments.values() if a.premium_only and a.online)
    assert await client.get_slots(appointment.id, days_ahead=3)
    assert (
        await client.get_slots(appointment.id, customer_id=store.customer_with("idle").id, days_ahead=3) == []
    )
    assert await client.get_slots(premium.id, customer_id=store.customer_with("basic").id, days_ahead=3) == []
    assert await client.get_slots(premium.id, customer_id=sandbox.demo_customer_id, days_ahead=3)


async def test_only_one_of_many_racing_customers_gets_a_slot(sandbox: Sandbox) -> None:
    store = sandbox.store
    appointment = plain(store)
    start = at(3)
    customers = [store.add_customer().id for _ in range(12)]
    answers: list[httpx.Response] = []

    async def attempt(http: httpx.AsyncClient, customer: int) -> None:
        answers.append(await http.post(BOOK, json=request_body(customer, appointment, start)))

    async with raw(sandbox) as http, anyio.create_task_group() as tg:
        for customer in customers:
            tg.start_soon(attempt, http, customer)
    assert sorted(a.status_code for a in answers) == [200] + [400] * 11
    assert (
        sorted(a.json()["errorCode"] for a in answers if a.status_code == 400)
        == ["RESOURCE_NOT_AVAILABLE"] * 11
    )
    active = [
        b for b in store.snapshot() if b.active and b.appointment_id == appointment.id and b.start == start
    ]
    assert len(active) == 1


async def test_reschedule_moves_the_booking_on_the_server(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    appointment = plain(sandbox.store)
    customer = sandbox.demo_customer_id
    slots = await client.get_slots(appointment.id, customer_id=customer, days_ahead=2)
    first = await client.book(customer_id=customer, bookable_appointment_id=appointment.id, slot=slots[0])
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
        assert results == [len(sb.store.listed())] * 4


def test_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="exceed"):
        Faults(rate_429=0.5, rate_503=0.5, rate_reset=0.5)


async def test_a_refused_booking_reaches_the_facade_with_its_status(
    client: AppointmentsClient, sandbox: Sandbox
) -> None:
    # validate=False: the server's own refusal (400, the status as errorCode), not the facade's check.
    store = sandbox.store
    appointment = plain(store)
    before = len(store.bookings)
    with pytest.raises(SlotNotBookableError) as caught:
        await client.book(
            customer_id=regular_customer(store),
            bookable_appointment_id=appointment.id,
            slot=slot_at(appointment, at(35)),
            validate=False,
        )
    assert caught.value.status is ValidationStatus.DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME
    assert len(store.bookings) == before


def test_faults_read_back_and_change_while_it_runs() -> None:
    with Sandbox(seed=7, rate_limit=None) as sb:
        headers = {"X-API-KEY": sb.api_key}
        url = f"{sb.base_url}/v1/appointments/bookable"
        assert sb.faults == Faults()
        always_503 = Faults(rate_503=1.0)
        sb.faults = always_503
        assert sb.faults is always_503
        assert httpx.get(url, headers=headers, timeout=10).status_code == 503
        sb.faults = Faults()
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
        assert sb.fault_counts["503"] == 1


def test_write_latency_reads_back_and_refuses_negative_seconds() -> None:
    sb = Sandbox(seed=7, write_latency=0.25)
    assert sb.write_latency == 0.25
    sb.write_latency = 0
    assert sb.write_latency == 0
    with pytest.raises(ValueError, match="write_latency must be >= 0 seconds"):
        sb.write_latency = -1
    assert sb.write_latency == 0
    with pytest.raises(ValueError, match="write_latency must be >= 0 seconds"):
        Sandbox(seed=7, write_latency=float("nan"))


def test_a_port_in_use_fails_the_start_and_leaves_the_sandbox_startable() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    sb = Sandbox(seed=7, port=port, rate_limit=None)
    try:
        with pytest.raises(OSError, match="in use"):
            sb.start()
    finally:
        busy.close()
    with sb:  # the port is free now: the same sandbox starts
        assert sb.port == port
        answer = httpx.get(f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key})
        assert answer.status_code == 200


def test_a_running_sandbox_refuses_a_second_start() -> None:
    with Sandbox(seed=7) as sb:
        port = sb.port
        with pytest.raises(RuntimeError, match="running already"):
            sb.start()
        assert sb.port == port  # still serving where it was
        assert httpx.head(
            f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key}
        ).is_success


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_that_leaves_mid_body_is_no_server_error(anyio_backend: str) -> None:
    """A cancelled call closes its connection while its body is on the way: the sandbox answers
    nobody (499) instead of raising, which uvicorn would log as an ASGI application error."""
    from perfectgym_appointments_client.sandbox._app import create_app

    app = create_app(Store(seed=7), "key")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/appointments/bookable/validate", "raw_path": b"", "query_string": b"",
        "root_path": "", "headers": [(b"x-api-key", b"key"), (b"content-length", b"200")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }  # fmt: skip
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # raised ClientDisconnect before
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499


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
        async with (
            httpx.AsyncClient(verify=trusting) as http,  # a given http_client is the caller's to close
            AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, http_client=http) as client,
        ):
            first = await client.bookable_appointments(slice_size=10, limit=5).to_list()
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


# -- stopping --------------------------------------------------------------------------------------


class HeldRequests:
    """``on_request``: every request is held at the server once received, until released (or,
    ``cancellable``, until its task is cancelled)."""

    def __init__(self, *, cancellable: bool = False) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self._cancellable = cancellable

    async def __call__(self, phase: str, method: str, path: str) -> None:
        if phase != "received":
            return
        self.arrived.set()
        if self._cancellable:
            await anyio.sleep(3600)
        else:
            await anyio.to_thread.run_sync(self.released.wait, 30)


def refuses_connections(sb: Sandbox) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", sb.port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def test_stopping_answers_a_request_in_flight_first() -> None:
    held = HeldRequests()
    sb = Sandbox(seed=7, on_request=held).start()
    with (
        concurrent.futures.ThreadPoolExecutor(2) as pool,
        httpx.Client(verify=shared_ssl_context(), timeout=30) as http,
    ):
        try:
            sent = pool.submit(
                http.get, f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key}
            )
            assert held.arrived.wait(10)
            stopped = pool.submit(sb.stop)
            # The stop has begun: no new connection is taken (checked against a bound, not timed).
            for _ in range(500):
                if refuses_connections(sb):
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("the sandbox still takes connections while stopping")
            assert not stopped.done(), "the stop waits for the request in flight"
        finally:
            held.released.set()
        assert sent.result(30).status_code == 200
        stopped.result(30)


def test_a_request_held_past_the_grace_period_is_cancelled_and_the_stop_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = HeldRequests(cancellable=True)
    sb = Sandbox(seed=7, on_request=held).start()
    assert sb._server is not None
    sb._server.config.timeout_graceful_shutdown = 0  # uvicorn's grace period, 2 s here, cut short
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,
        httpx.Client(verify=shared_ssl_context(), timeout=30) as http,
    ):
        sent = pool.submit(
            http.get, f"{sb.base_url}/v1/appointments/bookable", headers={"X-API-KEY": sb.api_key}
        )
        assert held.arrived.wait(10)
        with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
            sb.stop()
        answer = sent.result(30)
    # As with uvicorn's own shutdown: the task is cancelled and the request answered 500.
    assert answer.status_code == 500
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in caplog.text
    assert refuses_connections(sb)


# -- connections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_connections", "expected", "latency"), [(None, 16, 0.25), (3, 3, 0.05)])
async def test_many_tasks_share_a_few_kept_alive_connections(
    max_connections: int | None, expected: int, latency: float
) -> None:
    # Answers slow enough that the 48 calls really overlap and the client opens all it may, also
    # with four test workers on two cores (at 50 ms a loaded run once saw 15 connections of 16:
    # the last tasks started after the first answers came back). Three connections fill at once.
    async with Sandbox(seed=7, clock=pinned, faults=Faults(latency=latency)) as sb:
        kwargs = {} if max_connections is None else {"max_connections": max_connections}
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url, **kwargs) as client:
            ids = [a.id for a in await client.bookable_appointments(slice_size=48, limit=48).to_list()]
            for _ in range(2):  # the second round reuses the first round's connections
                async with anyio.create_task_group() as tg:
                    for appointment_id in ids:
                        tg.start_soon(client.get_bookable_appointment, appointment_id)
        assert sb.stats["requests"] == 1 + 2 * 48
        assert sb.stats["connections"] == expected
