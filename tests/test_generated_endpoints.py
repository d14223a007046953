"""Every operation through the generated async functions, against an httpx.MockTransport.

Asserts what goes on the wire (method, path, query, X-API-KEY header, JSON body) and what comes
back (parsed models with aware date-times, ErrorResponse for every error status).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from perfectgym_appointments_client._generated import AuthenticatedClient
from perfectgym_appointments_client._generated.api.appointments import (
    book_appointment_booking,
    delete_appointment_booking,
    get_appointment_booking,
    get_appointment_bookings,
    get_bookable_appointment,
    get_bookable_appointment_slots,
    get_bookable_appointments,
    validate_for_appointment_booking,
)
from perfectgym_appointments_client._generated.models import (
    AppointmentBooking,
    AppointmentBookingRequest,
    AppointmentStatus,
    BookableAppointment,
    BookableAppointmentSlice,
    BookingStatus,
    CancelResult,
    CustomerAppointmentBooking,
    ErrorResponse,
    Instructor,
    ParticipantStatus,
    Slot,
    ValidationResult,
    ValidationStatus,
)

pytestmark = pytest.mark.anyio

KEY = "test-key-3f9a"
BERLIN = ZoneInfo("Europe/Berlin")
START = "2022-06-22T08:00:00.000+02:00[Europe/Berlin]"
END = "2022-06-22T09:00+02:00[Europe/Berlin]"  # Java drops zero seconds
INSTRUCTOR = {"id": 7, "firstName": "Anna", "lastName": "Schmidt", "publicName": "Coach Anna"}
BOOKING = {
    "bookingId": 99,
    "bookingStatus": "BOOKED",
    "startDateTime": START,
    "endDateTime": END,
    "title": "Personal Training",
    "duration": 60,
    "appointmentStatus": "PLANNED",
    "participantStatus": "PARTICIPATING",
    "instructors": [INSTRUCTOR],
}


class Recorder:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]


def make_client(recorder: Recorder) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url="https://tenant.example",
        token=KEY,
        auth_header_name="X-API-KEY",
        prefix="",
        httpx_args={"transport": httpx.MockTransport(recorder)},
    )


def assert_request(
    request: httpx.Request, method: str, path: str, query: dict[str, str], body: Any = None
) -> None:
    assert request.method == method
    assert request.url.path == path
    assert dict(request.url.params) == query
    assert request.headers["X-API-KEY"] == KEY
    assert "authorization" not in request.headers
    if body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == body


def booking_request() -> AppointmentBookingRequest:
    return AppointmentBookingRequest(
        customer_id=5,
        bookable_appointment_id=12,
        start_date_time=dt.datetime(2022, 6, 22, 8, 0, tzinfo=BERLIN),
        end_date_time=dt.datetime(2022, 6, 22, 9, 0, tzinfo=BERLIN),
        instructor_ids=[7],
    )


BOOKING_BODY = {
    "customerId": 5,
    "bookableAppointmentId": 12,
    "startDateTime": "2022-06-22T08:00:00.000+02:00[Europe/Berlin]",
    "endDateTime": "2022-06-22T09:00:00.000+02:00[Europe/Berlin]",
    "instructorIds": [7],
}


async def test_get_bookable_appointments() -> None:
    rec = Recorder(
        200, {"result": [{"id": 12, "title": "PT", "duration": 60}], "hasNext": True, "offset": "12"}
    )
    async with make_client(rec) as client:
        page = await get_bookable_appointments.asyncio(client=client, offset="3", slice_size=25)
    assert_request(rec.request, "GET", "/v1/appointments/bookable", {"offset": "3", "sliceSize": "25"})
    assert isinstance(page, BookableAppointmentSlice)
    assert page.has_next is True
    assert page.offset == "12"
    assert [(a.id, a.title, a.duration) for a in page.result] == [(12, "PT", 60)]


async def test_get_bookable_appointments_defaults_are_sent() -> None:
    rec = Recorder(200, {"result": [], "hasNext": False, "offset": "0"})
    async with make_client(rec) as client:
        page = await get_bookable_appointments.asyncio(client=client)
    assert_request(rec.request, "GET", "/v1/appointments/bookable", {"offset": "0", "sliceSize": "50"})
    assert isinstance(page, BookableAppointmentSlice)
    assert page.result == []


async def test_get_bookable_appointment() -> None:
    rec = Recorder(200, {"id": 12, "title": "PT", "category": None, "imgUrl": "https://img/1.png"})
    async with make_client(rec) as client:
        appt = await get_bookable_appointment.asyncio(12, client=client)
    assert_request(rec.request, "GET", "/v1/appointments/bookable/12", {})
    assert isinstance(appt, BookableAppointment)
    assert (appt.id, appt.title, appt.category, appt.img_url) == (12, "PT", None, "https://img/1.png")


async def test_get_bookable_appointment_slots() -> None:
    rec = Recorder(200, [{"startDateTime": START, "endDateTime": END, "instructors": [INSTRUCTOR]}])
    async with make_client(rec) as client:
        slots = await get_bookable_appointment_slots.asyncio(
            12, client=client, customer_id=5, days_ahead=7, slot_window_start_date=dt.date(2022, 6, 22)
        )
    assert_request(
        rec.request,
        "GET",
        "/v1/appointments/bookable/12/slots",
        {"customerId": "5", "daysAhead": "7", "slotWindowStartDate": "2022-06-22"},
    )
    assert isinstance(slots, list)
    [slot] = slots
    assert isinstance(slot, Slot)
    assert slot.start_date_time == dt.datetime(2022, 6, 22, 8, 0, tzinfo=BERLIN)
    assert slot.start_date_time.tzinfo == BERLIN
    assert slot.end_date_time == dt.datetime(2022, 6, 22, 9, 0, tzinfo=BERLIN)
    assert isinstance(slot.instructors, list)
    assert slot.instructors[0].public_name == "Coach Anna"
    # Sent back exactly as received, including the seconds Java left out.
    assert slot.to_dict()["startDateTime"] == START
    assert slot.to_dict()["endDateTime"] == END


async def test_get_bookable_appointment_slots_without_optional_query() -> None:
    rec = Recorder(200, [])
    async with make_client(rec) as client:
        slots = await get_bookable_appointment_slots.asyncio(12, client=client)
    assert_request(rec.request, "GET", "/v1/appointments/bookable/12/slots", {"daysAhead": "1"})
    assert slots == []


async def test_validate_bookable_appointment() -> None:
    rec = Recorder(200, {"validationStatus": "RESOURCE_NOT_AVAILABLE"})
    async with make_client(rec) as client:
        result = await validate_for_appointment_booking.asyncio(client=client, body=booking_request())
    assert_request(rec.request, "POST", "/v1/appointments/bookable/validate", {}, BOOKING_BODY)
    assert isinstance(result, ValidationResult)
    assert result.validation_status is ValidationStatus.RESOURCE_NOT_AVAILABLE


async def test_book_appointment() -> None:
    rec = Recorder(200, BOOKING)
    async with make_client(rec) as client:
        booking = await book_appointment_booking.asyncio(client=client, body=booking_request())
    assert_request(rec.request, "POST", "/v1/appointments/booking/book", {}, BOOKING_BODY)
    assert isinstance(booking, AppointmentBooking)
    assert booking.booking_id == 99
    assert booking.booking_status is BookingStatus.BOOKED
    assert booking.appointment_status is AppointmentStatus.PLANNED
    assert booking.participant_status is ParticipantStatus.PARTICIPATING
    assert booking.start_date_time.tzinfo == BERLIN


async def test_book_sends_a_received_slot_back_byte_for_byte() -> None:
    slot = Slot.from_dict({"startDateTime": "2022-06-22T08:00+02:00[Europe/Berlin]", "endDateTime": END})
    rec = Recorder(200, BOOKING)
    body = AppointmentBookingRequest(
        customer_id=5,
        bookable_appointment_id=12,
        start_date_time=slot.start_date_time,
        end_date_time=slot.end_date_time,
    )
    async with make_client(rec) as client:
        await book_appointment_booking.asyncio(client=client, body=body)
    sent = json.loads(rec.request.content)
    assert sent["startDateTime"] == "2022-06-22T08:00+02:00[Europe/Berlin]"
    assert sent["endDateTime"] == END
    assert "instructorIds" not in sent


async def test_get_appointment_booking() -> None:
    rec = Recorder(200, {**BOOKING, "customerId": 5})
    async with make_client(rec) as client:
        booking = await get_appointment_booking.asyncio(99, client=client)
    assert_request(rec.request, "GET", "/v1/appointments/booking/99", {})
    assert isinstance(booking, CustomerAppointmentBooking)
    assert (booking.booking_id, booking.customer_id) == (99, 5)


async def test_cancel_appointment_booking() -> None:
    rec = Recorder(200, {"success": "Booking 99 was canceled."})
    async with make_client(rec) as client:
        result = await delete_appointment_booking.asyncio(99, client=client)
    assert_request(rec.request, "DELETE", "/v1/appointments/booking/99", {})
    assert isinstance(result, CancelResult)
    assert result.success == "Booking 99 was canceled."


async def test_get_appointment_bookings() -> None:
    rec = Recorder(200, [BOOKING, {**BOOKING, "bookingId": 100, "instructors": None}])
    async with make_client(rec) as client:
        bookings = await get_appointment_bookings.asyncio(client=client, customer_id=5)
    assert_request(rec.request, "GET", "/v1/appointments/booking", {"customerId": "5"})
    assert isinstance(bookings, list)
    assert [b.booking_id for b in bookings] == [99, 100]
    assert bookings[1].instructors is None


CALLS: dict[str, Callable[[AuthenticatedClient], Any]] = {
    "getBookableAppointments": lambda c: get_bookable_appointments.asyncio_detailed(client=c),
    "getBookableAppointment": lambda c: get_bookable_appointment.asyncio_detailed(1, client=c),
    "getBookableAppointmentSlots": lambda c: get_bookable_appointment_slots.asyncio_detailed(1, client=c),
    "validateForAppointmentBooking": lambda c: validate_for_appointment_booking.asyncio_detailed(
        client=c, body=booking_request()
    ),
    "bookAppointmentBooking": lambda c: book_appointment_booking.asyncio_detailed(
        client=c, body=booking_request()
    ),
    "getAppointmentBooking": lambda c: get_appointment_booking.asyncio_detailed(1, client=c),
    "deleteAppointmentBooking": lambda c: delete_appointment_booking.asyncio_detailed(1, client=c),
    "getAppointmentBookings": lambda c: get_appointment_bookings.asyncio_detailed(client=c, customer_id=1),
}


@pytest.mark.parametrize("operation", list(CALLS))
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 429, 500, 503])
async def test_every_error_status_parses_error_response(operation: str, status: int) -> None:
    error = {
        "errorMessage": "nope",
        "errorCode": "SOME_CODE",
        "traceId": "abc123",
        "reference": "customerId",
        "args": ["customerId"],
        "typedArgs": [{"value": "customerId", "type": "STRING"}],
    }
    rec = Recorder(status, error)
    async with make_client(rec) as client:
        response = await CALLS[operation](client)
    assert response.status_code == status
    parsed = response.parsed
    assert isinstance(parsed, ErrorResponse)
    assert (parsed.error_message, parsed.error_code, parsed.trace_id, parsed.reference) == (
        "nope",
        "SOME_CODE",
        "abc123",
        "customerId",
    )
    assert isinstance(parsed.typed_args, list)
    assert parsed.typed_args[0].type_ == "STRING"


def test_authenticated_client_repr_hides_the_key() -> None:
    client = AuthenticatedClient(base_url="https://tenant.example", token=KEY, auth_header_name="X-API-KEY")
    client.get_async_httpx_client()  # copies the key into the headers it keeps
    assert KEY not in repr(client)
    assert KEY not in str(client)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            BookableAppointment,
            [{"id": 1, "title": "Yoga"}],
            "expected a JSON object for BookableAppointment, got list",
        ),
        (BookableAppointment, {"id": "12"}, "id: expected int, got str"),
        (BookableAppointment, {"id": True}, "id: expected int, got bool"),
        (
            BookableAppointmentSlice,
            {"result": [], "hasNext": "no", "offset": "0"},
            "hasNext: expected bool, got str",
        ),
        (
            BookableAppointmentSlice,
            {"result": [], "hasNext": False, "offset": 5},
            "offset: expected str, got int",
        ),
        (AppointmentBooking, {**BOOKING, "bookingId": None}, "bookingId: expected int, got NoneType"),
        (Slot, "2022-06-22T08:00Z", "expected a JSON object for Slot, got str"),
    ],
)
def test_generated_models_refuse_wrong_types_naming_the_field(model: Any, data: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        model.from_dict(data)
    assert str(info.value) == message


def test_optional_fields_stay_tolerant() -> None:
    # Optional fields are passed through as sent (the API's nullable extras); only required ones are checked.
    appointment = BookableAppointment.from_dict({"id": 1, "duration": "60", "title": None})
    assert (appointment.duration, appointment.title) == ("60", None)


@pytest.mark.parametrize(
    ("data", "extras"),
    [
        ({"id": 7, "firstName": "A", "lastName": "B"}, {}),
        ({"id": 7, "firstName": "A", "lastName": "B", "publicName": None}, {}),
        # An optional field missing and a new one present: the count alone would match.
        ({"id": 7, "firstName": "A", "lastName": "B", "pronouns": "she"}, {"pronouns": "she"}),
        (
            {"id": 7, "firstName": "A", "lastName": "B", "publicName": "C", "a": 1, "b": [2]},
            {"a": 1, "b": [2]},
        ),
    ],
)
def test_from_dict_keeps_exactly_the_unknown_keys_and_leaves_its_input_alone(
    data: dict[str, Any], extras: dict[str, Any]
) -> None:
    before = json.loads(json.dumps(data))
    instructor = Instructor.from_dict(data)
    assert instructor.additional_properties == extras
    assert data == before
    assert instructor.to_dict() == data  # written back as received
    # Each object owns its extras: changing one touches neither the input nor another object.
    instructor["added"] = 1
    assert "added" not in data
    assert "added" not in Instructor.from_dict(data).additional_properties
