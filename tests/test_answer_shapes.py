"""The shapes of answers, as the official schemas allow them (issue 20): a missing optional field
reads as None on every answer model; a nested part that does not parse is a
ResponseValidationError naming its path; a slot whose end is not after its start is refused; an
error body stays readable whatever its deprecated arguments hold; requests are built as before.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import httpx
import pytest
import yaml
from fakeapi import BOOK, BOOKINGS, FakeAPI, answer_once, first_slot, make, slot_json, wire

from perfectgym_appointments_client import (
    BadRequestError,
    BookableAppointment,
    Booking,
    Instructor,
    ResponseValidationError,
    Slot,
)
from perfectgym_appointments_client._field_paths import at_failing_item
from perfectgym_appointments_client._generated import models
from perfectgym_appointments_client._generated.api.appointments import (
    book_appointment_booking,
    get_bookable_appointment_slots,
)
from perfectgym_appointments_client._generated.models import AppointmentBookingRequest
from perfectgym_appointments_client._generated.types import Unset
from perfectgym_appointments_client._zoned import parse_zoned_datetime

pytestmark = pytest.mark.anyio

SLOTS = "/v1/appointments/bookable/1/slots"
START, END = "2022-06-22T08:00:00.000+02:00[Europe/Berlin]", "2022-06-22T09:00+02:00[Europe/Berlin]"


# -- every answer model: a missing optional field is None ------------------------------------------


def _spec() -> dict[str, Any]:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "openapi.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


SPEC = _spec()
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return None if ref is None else str(ref).rsplit("/", 1)[-1]


def _flat(node: dict[str, Any]) -> dict[str, Any]:
    """An object schema with its ``allOf`` parts merged (CustomerAppointmentBooking is one)."""
    if "allOf" not in node:
        return node
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in node["allOf"]:
        ref = _ref_name(part)
        flat = _flat(SCHEMAS[ref] if ref is not None else part)
        merged["properties"].update(flat.get("properties", {}))
        merged["required"] += flat.get("required", [])
    return merged


def _answer_models() -> list[str]:
    """The object schemas a success answer holds, found from the spec (a new one is covered too)."""
    found: list[str] = []

    def visit(node: dict[str, Any]) -> None:
        name = _ref_name(node)
        if name is not None:
            if name in found:
                return
            node = _flat(SCHEMAS[name])
            if node.get("type") == "object":
                found.append(name)
        for child in node.get("properties", {}).values():
            visit(child)
        if "items" in node:
            visit(node["items"])

    for item in SPEC["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for status, response in op.get("responses", {}).items():
                if str(status).startswith("2"):
                    for content in response.get("content", {}).values():
                        visit(content["schema"])
    return found


ANSWER_MODELS = _answer_models()


def _minimal(node: dict[str, Any], name: str = "") -> Any:
    """A valid value of ``node`` with only the required fields (a start before its end)."""
    ref = _ref_name(node)
    if ref == "ZonedDateTime":
        return END if name.startswith("end") else START
    if ref is not None:
        node = _flat(SCHEMAS[ref])
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        return {key: _minimal(node["properties"][key], key) for key in node.get("required", [])}
    return {"integer": 1, "string": "x", "boolean": True, "number": 1.5, "array": []}[kind]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


OPTIONAL_FIELDS = [
    (model, field)
    for model in ANSWER_MODELS
    for field in _flat(SCHEMAS[model]).get("properties", {})
    if field not in _flat(SCHEMAS[model]).get("required", [])
]


def test_the_answer_models_are_found_in_the_spec() -> None:
    # The walk finds what the operations answer; a walk that found nothing would test nothing.
    assert {
        "BookableAppointment",
        "Slot",
        "Instructor",
        "AppointmentBooking",
        "CustomerAppointmentBooking",
        "CancelResult",
    } <= set(ANSWER_MODELS)
    assert "AppointmentBookingRequest" not in ANSWER_MODELS
    assert ("Slot", "instructors") in OPTIONAL_FIELDS
    assert ("CancelResult", "success") in OPTIONAL_FIELDS


@pytest.mark.parametrize(("model", "field"), OPTIONAL_FIELDS, ids=[f"{m}.{f}" for m, f in OPTIONAL_FIELDS])
def test_a_missing_optional_field_reads_as_none(model: str, field: str) -> None:
    cls = getattr(models, model)
    data = _minimal({"$ref": f"#/components/schemas/{model}"})
    assert field not in data
    parsed = cls.from_dict(data)
    assert getattr(parsed, _snake(field)) is None
    assert cls.from_dict({**data, field: None}) == parsed  # a null reads the same
    assert field not in parsed.to_dict()  # and neither is written back
    # Built by hand, the model shows the field the same way.
    required = {f.name: getattr(parsed, f.name) for f in attrs.fields(cls) if f.default is attrs.NOTHING}
    assert getattr(cls(**required), _snake(field)) is None


@pytest.mark.parametrize("model", ANSWER_MODELS)
def test_no_answer_model_holds_unset(model: str) -> None:
    parsed = getattr(models, model).from_dict(_minimal({"$ref": f"#/components/schemas/{model}"}))
    assert not [f.name for f in attrs.fields(type(parsed)) if isinstance(getattr(parsed, f.name), Unset)]


@pytest.mark.parametrize("shape", ["AppointmentBooking", "CustomerAppointmentBooking"])
def test_a_bookings_missing_optional_fields_read_as_none(shape: str) -> None:
    raw = getattr(models, shape).from_dict(_minimal({"$ref": f"#/components/schemas/{shape}"}))
    booking = Booking.from_api(raw)
    schema = _flat(SCHEMAS[shape])
    for field in schema["properties"]:
        if field not in schema["required"] and field != "instructors":
            assert getattr(booking, _snake(field)) is None, field
    assert booking.instructors == ()


def test_the_public_models_show_none_not_unset() -> None:
    slot = Slot.from_dict({"startDateTime": START, "endDateTime": END})
    assert slot.instructors is None
    assert "UNSET" not in repr(slot)
    assert BookableAppointment.from_dict({"id": 1}).title is None
    assert Instructor.from_dict({"id": 1, "firstName": "A", "lastName": "B"}).public_name is None


# -- requests: UNSET still means "not sent" -------------------------------------------------------


def test_a_booking_request_sends_exactly_what_was_given() -> None:
    start, end = parse_zoned_datetime(START, "start"), parse_zoned_datetime(END, "end")
    bare = AppointmentBookingRequest(
        customer_id=5, bookable_appointment_id=12, start_date_time=start, end_date_time=end
    )
    assert book_appointment_booking.build_request(body=bare).json == {
        "customerId": 5,
        "bookableAppointmentId": 12,
        "startDateTime": START,
        "endDateTime": END,
    }
    with_ids = attrs.evolve(bare, instructor_ids=[7])
    assert book_appointment_booking.build_request(body=with_ids).json == {
        "customerId": 5,
        "bookableAppointmentId": 12,
        "startDateTime": START,
        "endDateTime": END,
        "instructorIds": [7],
    }


# -- nested parts that do not parse name their path --------------------------------------------------


def _slots_with(bad_instructor: Any) -> list[dict[str, Any]]:
    good = {"id": 7, "firstName": "Anna", "lastName": "Schmidt"}
    return [
        {"startDateTime": START, "endDateTime": END, "instructors": [good]},
        {"startDateTime": START, "endDateTime": END, "instructors": [good, bad_instructor]},
    ]


@pytest.mark.parametrize(
    ("bad", "error", "path"),
    [
        ({"id": 8, "firstName": "B", "lastName": 5}, TypeError, "[1].instructors[1].lastName"),
        ({"id": 8, "firstName": "B"}, KeyError, "[1].instructors[1].lastName"),
        ({"id": "8", "firstName": "B", "lastName": "C"}, TypeError, "[1].instructors[1].id"),
        ("Anna", TypeError, "[1].instructors[1]"),
    ],
)
def test_a_bad_instructor_in_a_slot_list_is_an_error_naming_its_path(
    bad: Any, error: type[Exception], path: str
) -> None:
    with pytest.raises(error) as info:
        get_bookable_appointment_slots.parse_response(200, _slots_with(bad))
    if error is KeyError:  # the request layer reads a KeyError's argument as the path
        assert info.value.args == (path,)
    else:
        assert str(info.value).startswith(f"{path}: ")


def test_a_list_item_that_fails_only_the_first_time_is_named_without_a_place() -> None:
    # A list of objects is built in one comprehension; which item failed is found by building
    # them again one by one. A build that does not fail again cannot say which: "[?]".
    built: list[object] = []

    def build(item: object) -> object:
        built.append(item)
        if len(built) == 1:
            raise TypeError("id: expected int, got str")
        return item

    items = ["a", "b"]
    with pytest.raises(TypeError) as first:
        [build(item) for item in items]
    error = at_failing_item(first.value, "result", build, items)
    assert isinstance(error, TypeError)
    assert str(error) == "result[?].id: expected int, got str"
    assert built == ["a", "a", "b"], "each item built again once"


@pytest.mark.parametrize("value", ["Anna", {"id": 7}, 3])
def test_instructors_that_are_not_a_list_are_an_error(value: Any) -> None:
    with pytest.raises(TypeError, match=r"^instructors: expected a JSON array or null, got "):
        Slot.from_dict({"startDateTime": START, "endDateTime": END, "instructors": value})


@pytest.mark.usefixtures("http_backend")
async def test_get_slots_with_a_bad_instructor_raises_naming_the_path() -> None:
    api = FakeAPI()
    api.slots[1][2]["instructors"].append({"id": 8, "firstName": "B", "lastName": None})
    async with make(api) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.get_slots(1)
    assert info.value.field == "[2].instructors[1].lastName"
    assert info.value.operation == "getBookableAppointmentSlots"


@pytest.mark.usefixtures("http_backend")
async def test_bookings_with_a_bad_instructor_raise_naming_the_path() -> None:
    api = FakeAPI()
    async with make(api) as client:
        made = await client.book(customer_id=5, bookable_appointment_id=1, slot=await first_slot(client))
        api.bookings[made.booking_id]["instructors"] = [{"id": 7, "firstName": "A", "lastName": 1}]
        with pytest.raises(ResponseValidationError) as one:
            await client.get_booking(made.booking_id)
        with pytest.raises(ResponseValidationError) as listed:
            await client.list_bookings(5)
    assert (one.value.operation, one.value.field) == ("getAppointmentBooking", "instructors[0].lastName")
    assert (listed.value.operation, listed.value.field) == (
        "getAppointmentBookings",
        "[0].instructors[0].lastName",
    )


@pytest.mark.usefixtures("http_backend")
async def test_a_book_answer_with_a_bad_instructor_is_not_a_booking_holding_dicts() -> None:
    api = FakeAPI()
    async with make(api, max_retries=0) as client:
        slot = await first_slot(client)

        def answer_with_bad_instructor(request: httpx.Request) -> httpx.Response | None:
            if request.url.path != BOOK:
                return None
            answer = api.route(request)
            body = {**answer.json(), "instructors": [{"id": 7, "firstName": "A"}]}
            return httpx.Response(200, json=body)

        api.faults.append(answer_with_bad_instructor)
        # The answer cannot be read, so the booking check looks in the list: the booking was made.
        booking = await client.book(customer_id=5, bookable_appointment_id=1, slot=slot)
    assert [booking.booking_id] == [b["bookingId"] for b in api.live_bookings(5)]
    assert booking.instructors == ()  # as the list has it, not the dict the answer held
    assert api.count("POST", BOOK) == 1


# -- a slot whose end is not after its start ---------------------------------------------------------


@pytest.mark.parametrize(
    "end",
    [
        START,  # the same instant
        "2022-06-22T06:00:00Z",  # the same instant, written in UTC
        "2022-06-22T07:59:59.999+02:00[Europe/Berlin]",  # before the start
    ],
)
def test_a_slot_ending_at_or_before_its_start_is_refused(end: str) -> None:
    with pytest.raises(ValueError, match=r"^endDateTime: .* is not after startDateTime ") as info:
        Slot.from_dict({"startDateTime": START, "endDateTime": end})
    assert end in str(info.value)


def test_a_slot_ending_after_its_start_in_another_zone_parses() -> None:
    slot = Slot.from_dict({"startDateTime": START, "endDateTime": "2022-06-22T06:00:00.001Z"})
    assert slot.end_date_time > slot.start_date_time


@pytest.mark.usefixtures("http_backend")
async def test_get_slots_with_an_inverted_slot_raises_naming_it() -> None:
    api = FakeAPI()
    api.slots[1][3] = {**slot_json(11), "endDateTime": wire(10)}
    async with make(api) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.get_slots(1)
    assert info.value.field == "[3].endDateTime"
    assert "is not after startDateTime" in str(info.value)


# -- error bodies: their deprecated arguments never hide the error ------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"args": ["customerId"]},  # older answers: strings
        {"typedArgs": ["customerId"]},
        {"typedArgs": [{"value": 1, "type": 5}]},
        {"args": "customerId", "typedArgs": {"value": 1}},
    ],
)
@pytest.mark.usefixtures("http_backend")
async def test_an_error_body_with_odd_arguments_keeps_its_code(arguments: dict[str, Any]) -> None:
    api = FakeAPI()
    body = {"errorMessage": "Bad value", "errorCode": "errormessage.validation.max", **arguments}
    api.faults.append(answer_once("GET", f"{BOOKINGS}/7", 400, body))
    async with make(api) as client:
        with pytest.raises(BadRequestError) as info:
            await client.get_booking(7)
    assert (info.value.error_code, info.value.error_message) == ("errormessage.validation.max", "Bad value")


def test_an_error_body_keeps_arguments_that_do_not_parse_as_sent() -> None:
    parsed = models.ErrorResponse.from_dict({"errorMessage": "x", "typedArgs": ["a"], "args": [1]})
    assert (parsed.typed_args, parsed.args) == (["a"], [1])
