"""openapi.yaml: valid, and describes the API the way the issue and the API docs say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

ROOT = Path(__file__).resolve().parent.parent
ERROR_CODES = ["400", "401", "403", "404", "409", "429", "500", "503"]
OPERATIONS = {
    ("get", "/v1/appointments/bookable"): "getBookableAppointments",
    ("get", "/v1/appointments/bookable/{bookableAppointmentId}"): "getBookableAppointment",
    ("get", "/v1/appointments/bookable/{bookableAppointmentId}/slots"): "getBookableAppointmentSlots",
    ("post", "/v1/appointments/bookable/validate"): "validateForAppointmentBooking",
    ("post", "/v1/appointments/booking/book"): "bookAppointmentBooking",
    ("get", "/v1/appointments/booking/{bookingId}"): "getAppointmentBooking",
    ("delete", "/v1/appointments/booking/{bookingId}"): "deleteAppointmentBooking",
    ("get", "/v1/appointments/booking"): "getAppointmentBookings",
}


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_spec_is_valid_openapi() -> None:
    spec_dict, _ = read_from_filename(str(ROOT / "openapi.yaml"))
    validate(spec_dict)


def test_info_servers_and_security(spec: dict[str, Any]) -> None:
    assert spec["info"]["title"] == "PerfectGym Next API: appointments"
    # Not restated here: the version is the spec's, and it reaches the package, the User-Agent,
    # the client and the README's marked line (scripts/generate.py writes them).
    from perfectgym_appointments_client import API_VERSION, AppointmentsClient
    from perfectgym_appointments_client._request import USER_AGENT

    version = str(spec["info"]["version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert version == API_VERSION
    assert f"API {version})" in USER_AGENT
    assert AppointmentsClient(api_key="k", base_url="https://t.example").api_version == version
    assert f"<!-- api-version -->{version}<!-- /api-version -->" in (ROOT / "README.md").read_text()
    assert spec["servers"][0]["url"] == "https://open-api-demo.open-api.perfectgym.com"
    scheme = spec["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-KEY"}
    assert spec["security"] == [{"ApiKeyAuth": []}]


def test_the_eight_official_operations(spec: dict[str, Any]) -> None:
    ops = _operations(spec)
    # The official operationIds at their paths; a later spec may add operations.
    assert {key: ops[key]["operationId"] for key in OPERATIONS if key in ops} == OPERATIONS
    for op in ops.values():
        assert op["summary"]
        assert op.get("security", spec["security"]) == [{"ApiKeyAuth": []}]


@pytest.mark.parametrize("key", list(OPERATIONS))
def test_every_error_status_uses_error_response(spec: dict[str, Any], key: tuple[str, str]) -> None:
    op = _operations(spec)[key]
    for code in ERROR_CODES:
        response = _resolve(spec, op["responses"][code])
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (key, code)
    assert "200" in op["responses"]


def test_error_response_shape(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["ErrorResponse"]
    assert schema["required"] == ["errorMessage"]
    assert set(schema["properties"]) == {
        "errorMessage",
        "errorCode",
        "traceId",
        "reference",
        "args",
        "typedArgs",
    }
    typed = _resolve(spec, schema["properties"]["typedArgs"]["items"])
    assert set(typed["properties"]) == {"value", "type"}
    assert "type" not in typed["properties"]["value"]  # any JSON value
    kinds = _resolve(spec, typed["properties"]["type"])["enum"]
    assert set(kinds) >= {
        "TIMESTAMP", "BOOLEAN", "DATE", "MONTH_DAY", "TIME", "TERM", "TERM_LIST", "INTEGER", "DECIMAL",
        "STRING", "MONEY", "LIMITABLE_CONFIG_PROPERTY", "I18N_KEY", "I18N_KEY_LIST", "PERMISSION_LIST",
        "ENUM", "AVAILABILITY_LIST",
    }  # fmt: skip
    args = schema["properties"]["args"]
    assert args["type"] == "array"
    assert args["items"]["type"] == "object"
    assert "translation key" in schema["properties"]["errorCode"]["description"]


def test_every_date_time_references_the_zoned_schema(spec: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if path.endswith("/properties") and key.endswith("DateTime"):
                    refs.append(path + "/" + key)
                    assert value == {"$ref": "#/components/schemas/ZonedDateTime"}, path + "/" + key
                walk(value, path + "/" + key)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}/{i}")

    walk(spec["components"]["schemas"], "")
    assert len(refs) == 6  # Slot, AppointmentBookingRequest, AppointmentBooking: start and end


def test_examples_match_the_zoned_pattern(spec: dict[str, Any]) -> None:
    zoned = spec["components"]["schemas"]["ZonedDateTime"]
    pattern = re.compile(zoned["pattern"])
    good = [
        zoned["example"],
        "2022-06-22T08:00+02:00[Europe/Berlin]",
        "2022-06-22T08:00:00Z",
        "2022-06-22T08:00:00.123456789+05:30[Asia/Kolkata]",
        "2022-06-22T08:00:00-04:00",
    ]
    bad = ["2022-06-22 08:00:00", "2022-06-22T08:00:00", "22-06-22T08:00Z", "2022-06-22T08:00:00+0200"]
    assert all(pattern.match(text) for text in good)
    assert not any(pattern.match(text) for text in bad)

    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("DateTime") and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec["paths"])
    assert found, "the operations' examples show date-times"
    assert all(pattern.match(text) for text in found)


def test_enums_as_documented(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    # The 14 values of the official contract (../shared/api-facts.md), NOT_AVAILABLE since 1.7.0.
    # A later spec may add more (enums grow): at least these, none lost.
    assert set(schemas["ValidationStatus"]["enum"]) >= {
        "AVAILABLE",
        "PAST_START_DATE_TIME",
        "END_DATE_TIME_NOT_AFTER_START_DATE_TIME",
        "PERIOD_DOES_NOT_MATCH",
        "CUSTOMER_IN_OTHER_BOOKING",
        "CUSTOMER_IDLE",
        "NO_CONTINGENT",
        "BOOKABLE_APPOINTMENT_RESTRICTIONS_NOT_FULFILLED",
        "BOOKING_LIMIT_REACHED",
        "DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME",
        "DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME",
        "STUDIO_CLOSED",
        "RESOURCE_NOT_AVAILABLE",
        "NOT_AVAILABLE",
    }
    description = schemas["ValidationStatus"]["description"]
    assert "too soon" in description.split("`DATE_TIME_BEFORE_EARLIEST_BOOKING_DATE_TIME`")[1].split("\n")[0]
    assert (
        "too far ahead" in description.split("`DATE_TIME_AFTER_LATEST_BOOKING_DATE_TIME`")[1].split("\n")[0]
    )
    assert set(schemas["BookingStatus"]["enum"]) >= {
        "BOOKED",
        "CANCELED",
        "BOOKED_WITH_CONFIRMATION_REQUIRED",
    }
    assert set(schemas["AppointmentStatus"]["enum"]) >= {"COMPLETED", "CANCELED", "PLANNED"}
    assert set(schemas["ParticipantStatus"]["enum"]) >= {"PARTICIPATING", "UNSET", "NOT_PARTICIPATING"}
    for name in ("ValidationStatus", "BookingStatus", "AppointmentStatus", "ParticipantStatus"):
        description = schemas[name]["description"]
        for value in schemas[name]["enum"]:
            assert f"`{value}`" in description, (name, value)


def test_required_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["BookableAppointmentSlice"]["required"] == ["result", "hasNext", "offset"]
    assert schemas["BookableAppointmentSlice"]["properties"]["offset"]["type"] == "string"
    assert schemas["BookableAppointment"]["required"] == ["id"]
    assert schemas["Instructor"]["required"] == ["id", "firstName", "lastName"]
    assert schemas["AppointmentBookingRequest"]["required"] == [
        "customerId",
        "bookableAppointmentId",
        "startDateTime",
        "endDateTime",
    ]
    assert set(schemas["AppointmentBooking"]["required"]) == {
        "bookingId",
        "bookingStatus",
        "startDateTime",
        "endDateTime",
        "appointmentStatus",
        "participantStatus",
    }
    customer = schemas["CustomerAppointmentBooking"]["allOf"]
    assert customer[0] == {"$ref": "#/components/schemas/AppointmentBooking"}
    assert customer[1]["required"] == ["customerId"]


def test_the_cancel_answer_needs_no_text(spec: dict[str, Any]) -> None:
    # The official VoidResult {success}: success is not required, so {} is a valid answer.
    op = _operations(spec)[("delete", "/v1/appointments/booking/{bookingId}")]
    schema = _resolve(spec, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert "success" not in schema.get("required", [])
    assert schema["properties"]["success"]["type"] == "string"


# Whether an optional answer field is `nullable` no longer matters to the client: the templates read
# every optional field of an answer as None when it is missing or null (templates/model.py.jinja;
# tests/test_generation.py generates fields written the vendor's way, without `nullable`, and parses
# them), so a spec bump needs no hand edit for it (tests/test_bump.py).


def test_x_after_names_required_date_times(spec: dict[str, Any]) -> None:
    # templates/model.py.jinja compares the two fields of each x-after pair after parsing them.
    schemas = spec["components"]["schemas"]
    pairs = [
        (name, later, earlier)
        for name, s in schemas.items()
        for later, earlier in s.get("x-after", {}).items()
    ]
    assert ("Slot", "endDateTime", "startDateTime") in pairs
    for name, later, earlier in pairs:
        for field in (later, earlier):
            assert field in schemas[name]["required"], (name, field)
            assert schemas[name]["properties"][field] == {"$ref": "#/components/schemas/ZonedDateTime"}


def _parameter(spec: dict[str, Any], key: tuple[str, str], name: str) -> dict[str, Any]:
    params = [_resolve(spec, p) for p in _operations(spec)[key].get("parameters", [])]
    return next(p for p in params if p["name"] == name)


def test_parameter_bounds_and_defaults(spec: dict[str, Any]) -> None:
    slice_size = _parameter(spec, ("get", "/v1/appointments/bookable"), "sliceSize")["schema"]
    assert (slice_size["minimum"], slice_size["maximum"], slice_size["default"]) == (10, 100, 50)
    offset = _parameter(spec, ("get", "/v1/appointments/bookable"), "offset")["schema"]
    assert (offset["type"], offset["default"]) == ("string", "0")
    slots = ("get", "/v1/appointments/bookable/{bookableAppointmentId}/slots")
    days = _parameter(spec, slots, "daysAhead")["schema"]
    assert (days["minimum"], days["maximum"], days["default"]) == (1, 6, 1)
    customer = _parameter(spec, ("get", "/v1/appointments/booking"), "customerId")
    assert customer["required"] is True


def test_bookings_list_window_is_documented(spec: dict[str, Any]) -> None:
    description = _operations(spec)[("get", "/v1/appointments/booking")]["description"]
    assert "two weeks" in description
    assert "canceled bookings stay" in description


SCOPES = {
    "getBookableAppointments": "BOOKABLE_APPOINTMENTS_READ",
    "getBookableAppointment": "BOOKABLE_APPOINTMENTS_READ",
    "getBookableAppointmentSlots": "BOOKABLE_APPOINTMENTS_READ",
    "validateForAppointmentBooking": "BOOKABLE_APPOINTMENTS_READ",
    "bookAppointmentBooking": "APPOINTMENTS_WRITE",
    "deleteAppointmentBooking": "APPOINTMENTS_WRITE",
    "getAppointmentBooking": "APPOINTMENTS_READ",
    "getAppointmentBookings": "APPOINTMENTS_READ",
}


def test_each_operation_names_its_scope(spec: dict[str, Any]) -> None:
    for op in _operations(spec).values():
        scope = op["x-required-scope"]
        assert scope == SCOPES.get(op["operationId"], scope)
        assert f"`{scope}`" in op["description"]


def test_each_generated_operation_names_itself_as_the_spec_does(spec: dict[str, Any]) -> None:
    """operationId, method, path and scope come from the generated operations alone; here they are
    held to openapi.yaml (the template rebuilds the camelCase id and reads the scope line)."""
    from perfectgym_appointments_client._generated.api.appointments import OPERATIONS as GENERATED

    def shape(path: str) -> str:  # the generator names path parameters in snake_case
        return re.sub(r"\{[^}]+\}", "{}", path)

    from_spec = {
        op["operationId"]: (method.upper(), shape(path), op.get("x-required-scope"))
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    generated = {op.OPERATION_ID: (op.METHOD, shape(op.PATH), op.REQUIRED_SCOPE) for op in GENERATED}
    assert generated == from_spec
    for op in GENERATED:
        assert {200} == op.SUCCESS_STATUSES


def test_accept_language_and_head(spec: dict[str, Any]) -> None:
    for key in OPERATIONS:
        header = _parameter(spec, key, "Accept-Language")
        assert header["in"] == "header"
        assert header["required"] is False
        languages = _resolve(spec, header["schema"])["enum"]
        assert set(languages) >= {
            "cs", "de", "en", "es", "fr", "hu", "it", "nb", "nl", "pl", "ro", "ru", "sl", "sv", "tr",
            "de-CH", "de-LI", "en-CA", "en-GB", "en-US", "fr-LU",
        }  # fmt: skip
    head = spec["paths"]["/v1/appointments/bookable"]["head"]
    assert head["operationId"] == "checkApiKey"
    assert set(head["responses"]) == {"200", "401"}


def test_error_statuses_say_what_they_mean(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    assert "modified by another request" in responses["Conflict"]["description"]
    assert "headers" not in responses["TooManyRequests"]  # no Retry-After is documented
    assert "next minute" in responses["TooManyRequests"]["description"]
    assert responses["BadRequest"]["content"]["application/json"]["example"]["errorCode"] == (
        "errormessage.validation.max"
    )
