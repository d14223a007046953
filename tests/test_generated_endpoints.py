"""Every generated operation through its transport-free API: build_request and parse_response.

Asserts what each operation asks to send (method, path with quoted parameters, query with its
defaults and without unset values, JSON body, Content-Type and Accept-Language headers), what it
reads back from a success (parsed models with aware date-times), that any other status raises
UnexpectedStatus, and that each module's constants agree with its request.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
import string
from types import ModuleType
from typing import Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfectgym_appointments_client._generated.api.appointments import (
    OPERATIONS,
    book_appointment_booking,
    check_api_key,
    delete_appointment_booking,
    get_appointment_booking,
    get_appointment_bookings,
    get_bookable_appointment,
    get_bookable_appointment_slots,
    get_bookable_appointments,
    validate_for_appointment_booking,
)
from perfectgym_appointments_client._generated.errors import UnexpectedStatus
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
    Language,
    ParticipantStatus,
    Slot,
    ValidationResult,
    ValidationStatus,
)
from perfectgym_appointments_client._generated.types import UNSET, PreparedRequest
from perfectgym_appointments_client._request import _query_string

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
ERROR_BODY = {
    "errorMessage": "nope",
    "errorCode": "SOME_CODE",
    "traceId": "abc123",
    "reference": "customerId",
    "args": ["customerId"],
    "typedArgs": [{"value": "customerId", "type": "STRING"}],
}
JSON_HEADERS = {"Content-Type": "application/json"}


def assert_request(
    request: PreparedRequest,
    method: str,
    path: str,
    params: dict[str, Any],
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> None:
    assert isinstance(request, PreparedRequest)
    assert request.method == method
    assert request.path == path
    assert request.params == params
    if body is None:
        assert request.json is None
        assert request.headers == (headers or {})
    else:
        # JSON-ready: survives a round trip through the encoder unchanged.
        assert json.loads(json.dumps(request.json)) == request.json == body
        assert request.headers == {**JSON_HEADERS, **(headers or {})}


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

# The fewest arguments each operation's build_request needs (positional, keyword).
MINIMAL_ARGS: dict[ModuleType, tuple[tuple[Any, ...], dict[str, Any]]] = {
    get_bookable_appointments: ((), {}),
    check_api_key: ((), {}),
    get_bookable_appointment: ((1,), {}),
    get_bookable_appointment_slots: ((1,), {}),
    validate_for_appointment_booking: ((), {"body": booking_request()}),
    book_appointment_booking: ((), {"body": booking_request()}),
    get_appointment_booking: ((1,), {}),
    delete_appointment_booking: ((1,), {}),
    get_appointment_bookings: ((), {"customer_id": 1}),
}
WITH_PATH_PARAMETER = [op for op, (args, _) in MINIMAL_ARGS.items() if args]


def build_minimal(operation: ModuleType, **extra: Any) -> PreparedRequest:
    args, kwargs = MINIMAL_ARGS[operation]
    request = operation.build_request(*args, **kwargs, **extra)
    assert isinstance(request, PreparedRequest)
    return request


def op_id(operation: ModuleType) -> str:
    return str(operation.OPERATION_ID)


def test_get_bookable_appointments() -> None:
    request = get_bookable_appointments.build_request(offset="3", slice_size=25)
    assert_request(request, "GET", "/v1/appointments/bookable", {"offset": "3", "sliceSize": 25})
    page = get_bookable_appointments.parse_response(
        200, {"result": [{"id": 12, "title": "PT", "duration": 60}], "hasNext": True, "offset": "12"}
    )
    assert isinstance(page, BookableAppointmentSlice)
    assert page.has_next is True
    assert page.offset == "12"
    assert [(a.id, a.title, a.duration) for a in page.result] == [(12, "PT", 60)]


def test_get_bookable_appointments_defaults_are_sent() -> None:
    request = get_bookable_appointments.build_request()
    assert_request(request, "GET", "/v1/appointments/bookable", {"offset": "0", "sliceSize": 50})
    page = get_bookable_appointments.parse_response(200, {"result": [], "hasNext": False, "offset": "0"})
    assert isinstance(page, BookableAppointmentSlice)
    assert page.result == []


def test_unset_and_none_query_values_are_dropped() -> None:
    request = get_bookable_appointments.build_request(offset=UNSET, slice_size=UNSET)
    assert request.params == {}
    request = get_bookable_appointment_slots.build_request(12, customer_id=cast(Any, None), days_ahead=UNSET)
    assert request.params == {}
    request = get_bookable_appointment_slots.build_request(12, customer_id=5, days_ahead=cast(Any, None))
    assert request.params == {"customerId": 5}
    assert request.path == "/v1/appointments/bookable/12/slots"


def test_check_api_key() -> None:
    assert_request(check_api_key.build_request(), "HEAD", "/v1/appointments/bookable", {})
    assert check_api_key.parse_response(200, None) is None


def test_get_bookable_appointment() -> None:
    request = get_bookable_appointment.build_request(12)
    assert_request(request, "GET", "/v1/appointments/bookable/12", {})
    appt = get_bookable_appointment.parse_response(
        200, {"id": 12, "title": "PT", "category": None, "imgUrl": "https://img/1.png"}
    )
    assert isinstance(appt, BookableAppointment)
    assert (appt.id, appt.title, appt.category, appt.img_url) == (12, "PT", None, "https://img/1.png")


def test_get_bookable_appointment_slots() -> None:
    request = get_bookable_appointment_slots.build_request(
        12, customer_id=5, days_ahead=7, slot_window_start_date=dt.date(2022, 6, 22)
    )
    assert_request(
        request,
        "GET",
        "/v1/appointments/bookable/12/slots",
        {"customerId": 5, "daysAhead": 7, "slotWindowStartDate": "2022-06-22"},
    )
    slots = get_bookable_appointment_slots.parse_response(
        200, [{"startDateTime": START, "endDateTime": END, "instructors": [INSTRUCTOR]}]
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


def test_get_bookable_appointment_slots_without_optional_query() -> None:
    request = get_bookable_appointment_slots.build_request(12)
    assert_request(request, "GET", "/v1/appointments/bookable/12/slots", {"daysAhead": 1})
    assert get_bookable_appointment_slots.parse_response(200, []) == []


def test_validate_bookable_appointment() -> None:
    request = validate_for_appointment_booking.build_request(body=booking_request())
    assert_request(request, "POST", "/v1/appointments/bookable/validate", {}, BOOKING_BODY)
    result = validate_for_appointment_booking.parse_response(
        200, {"validationStatus": "RESOURCE_NOT_AVAILABLE"}
    )
    assert isinstance(result, ValidationResult)
    assert result.validation_status is ValidationStatus.RESOURCE_NOT_AVAILABLE


def test_book_appointment() -> None:
    request = book_appointment_booking.build_request(body=booking_request())
    assert_request(request, "POST", "/v1/appointments/booking/book", {}, BOOKING_BODY)
    booking = book_appointment_booking.parse_response(200, BOOKING)
    assert isinstance(booking, AppointmentBooking)
    assert booking.booking_id == 99
    assert booking.booking_status is BookingStatus.BOOKED
    assert booking.appointment_status is AppointmentStatus.PLANNED
    assert booking.participant_status is ParticipantStatus.PARTICIPATING
    assert booking.start_date_time.tzinfo == BERLIN


def test_book_sends_a_received_slot_back_byte_for_byte() -> None:
    slot = Slot.from_dict({"startDateTime": "2022-06-22T08:00+02:00[Europe/Berlin]", "endDateTime": END})
    body = AppointmentBookingRequest(
        customer_id=5,
        bookable_appointment_id=12,
        start_date_time=slot.start_date_time,
        end_date_time=slot.end_date_time,
    )
    sent = json.loads(json.dumps(book_appointment_booking.build_request(body=body).json))
    assert sent["startDateTime"] == "2022-06-22T08:00+02:00[Europe/Berlin]"
    assert sent["endDateTime"] == END
    assert "instructorIds" not in sent


def test_get_appointment_booking() -> None:
    request = get_appointment_booking.build_request(99)
    assert_request(request, "GET", "/v1/appointments/booking/99", {})
    booking = get_appointment_booking.parse_response(200, {**BOOKING, "customerId": 5})
    assert isinstance(booking, CustomerAppointmentBooking)
    assert (booking.booking_id, booking.customer_id) == (99, 5)


def test_cancel_appointment_booking() -> None:
    request = delete_appointment_booking.build_request(99)
    assert_request(request, "DELETE", "/v1/appointments/booking/99", {})
    result = delete_appointment_booking.parse_response(200, {"success": "Booking 99 was canceled."})
    assert isinstance(result, CancelResult)
    assert result.success == "Booking 99 was canceled."


@pytest.mark.parametrize("answer", [{}, {"success": None}])
def test_a_cancel_answer_without_text_parses(answer: dict[str, Any]) -> None:
    # The official VoidResult: success is not required.
    result = delete_appointment_booking.parse_response(200, answer)
    assert isinstance(result, CancelResult)
    assert result.success is None


def test_get_appointment_bookings() -> None:
    request = get_appointment_bookings.build_request(customer_id=5)
    assert_request(request, "GET", "/v1/appointments/booking", {"customerId": 5})
    bookings = get_appointment_bookings.parse_response(
        200, [BOOKING, {**BOOKING, "bookingId": 100, "instructors": None}]
    )
    assert isinstance(bookings, list)
    assert [b.booking_id for b in bookings] == [99, 100]
    assert bookings[1].instructors is None


@pytest.mark.parametrize("operation", WITH_PATH_PARAMETER, ids=op_id)
def test_path_parameters_are_quoted(operation: ModuleType) -> None:
    _, kwargs = MINIMAL_ARGS[operation]
    request = operation.build_request(cast(Any, "a/b c?#%"), **kwargs)
    [placeholder] = re.findall(r"\{[^}]+\}", operation.PATH)
    assert request.path == operation.PATH.replace(placeholder, "a%2Fb%20c%3F%23%25")


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if op is not check_api_key], ids=op_id)
@pytest.mark.parametrize("language", [Language.DE_CH, Language("pt-BR")], ids=str)
def test_accept_language_header(operation: ModuleType, language: Language) -> None:
    plain = build_minimal(operation)
    request = build_minimal(operation, accept_language=language)
    assert request.headers == {**plain.headers, "Accept-Language": str(language)}
    assert "Accept-Language" not in plain.headers
    # Nothing else about the request changes.
    assert request._replace(headers=plain.headers) == plain


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
@pytest.mark.parametrize("status", [204, 400, 401, 403, 404, 409, 429, 500, 503])
def test_every_other_status_raises_unexpected_status(operation: ModuleType, status: int) -> None:
    with pytest.raises(UnexpectedStatus) as info:
        operation.parse_response(status, ERROR_BODY)
    assert info.value.status_code == status
    assert str(status) in str(info.value)


def test_error_response_parses_the_error_body() -> None:
    parsed = ErrorResponse.from_dict(ERROR_BODY)
    assert isinstance(parsed, ErrorResponse)
    assert (parsed.error_message, parsed.error_code, parsed.trace_id, parsed.reference) == (
        "nope",
        "SOME_CODE",
        "abc123",
        "customerId",
    )
    assert parsed.args == ["customerId"]
    assert isinstance(parsed.typed_args, list)
    assert parsed.typed_args[0].type_ == "STRING"


def test_unset_shows_as_unset() -> None:
    assert repr(UNSET) == "UNSET"
    body = AppointmentBookingRequest(
        customer_id=5,
        bookable_appointment_id=12,
        start_date_time=dt.datetime(2022, 6, 22, 8, 0, tzinfo=BERLIN),
        end_date_time=dt.datetime(2022, 6, 22, 9, 0, tzinfo=BERLIN),
    )
    assert "instructor_ids=UNSET" in repr(body)
    assert "instructor_ids=[7]" in repr(booking_request())


def test_operations_are_the_nine_modules() -> None:
    assert set(OPERATIONS) == set(MINIMAL_ARGS)
    assert len(OPERATIONS) == len(MINIMAL_ARGS) == 9
    assert len({op.OPERATION_ID for op in OPERATIONS}) == len(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=op_id)
def test_operation_constants_agree_with_its_request(operation: ModuleType) -> None:
    operation_id = operation.OPERATION_ID
    assert isinstance(operation_id, str)
    assert re.fullmatch(r"[a-z][A-Za-z]+", operation_id)
    # The module is the snake_case of its operationId.
    assert operation.__name__.rsplit(".", 1)[1] == re.sub(
        r"[A-Z]", lambda m: "_" + m[0].lower(), operation_id
    )
    assert operation.METHOD in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
    assert build_minimal(operation).method == operation.METHOD
    assert isinstance(operation.PATH, str)
    assert operation.PATH.startswith("/v1/appointments/")
    # The path's placeholders are exactly build_request's positional parameters.
    positional = [
        name
        for name, parameter in inspect.signature(operation.build_request).parameters.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert re.findall(r"\{([^}]+)\}", operation.PATH) == positional
    if not positional:
        assert build_minimal(operation).path == operation.PATH
    scope = operation.REQUIRED_SCOPE
    if operation is check_api_key:  # HEAD checks the key alone
        assert scope is None
    else:
        assert isinstance(scope, str)
        assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", scope)
    assert isinstance(operation.SUMMARY, str)
    assert operation.SUMMARY
    assert (operation.build_request.__doc__ or "").splitlines()[0] == operation.SUMMARY
    assert isinstance(operation.SUCCESS_STATUSES, frozenset)
    assert operation.SUCCESS_STATUSES
    assert all(isinstance(s, int) and 200 <= s < 300 for s in operation.SUCCESS_STATUSES)


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
    # Written back as received, but a null optional field reads as None, like a missing one, and
    # to_dict leaves both out.
    assert instructor.to_dict() == {k: v for k, v in data.items() if v is not None}
    # Each object owns its extras: changing one touches neither the input nor another object.
    instructor["added"] = 1
    assert "added" not in data
    assert "added" not in Instructor.from_dict(data).additional_properties


@given(
    st.dictionaries(
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=20),
        st.one_of(st.integers(), st.text(), st.dates(), st.booleans()),
        max_size=4,
    )
)
def test_the_request_layer_encodes_a_query_as_urlencode_does(params: dict[str, Any]) -> None:
    # Its own encoder leaves ints unquoted (urlencode's cost); anything else is quoted the same.
    assert _query_string(params) == urlencode(params)
