"""Contract test: schemathesis drives the live sandbox from openapi.yaml and checks every answer.

Every operation gets positive (schema-valid) requests from the spec's examples, schemathesis'
coverage phase (boundary values) and Hypothesis fuzzing, and each answer must pass
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance`` and
``response_schema_conformance``. Random ids name nothing in the sandbox and would only ever get
404s, so in most fuzzed requests the hooks below swap ids, dates and booking windows for ones
the live store knows: real appointments, customers, bookings and free slots. That way the 200
answers (slices, slots, validation results, bookings, cancellations) are checked too.

Then: inputs that once made the sandbox answer 500 (each now a documented 400), out-of-range
``sliceSize`` / ``daysAhead`` (400 ``errormessage.validation.min`` / ``.max``, never a 500 and
never silently clamped), and requests without a valid key, which must get 401 with an
``ErrorResponse`` body.

Requests go to the sandbox on 127.0.0.1 only (``base_url`` is passed on every call), never to
the spec's ``servers``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
import yaml
from hypothesis import settings
from openapi_schema_validator import OAS30Validator
from schemathesis import GenerationMode, HookContext
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from perfectgym_appointments_client.sandbox import Sandbox

SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"
# Fuzzed requests per operation: 30 keeps the file within seconds; CONTRACT_MAX_EXAMPLES=1000
# searches longer.
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "30"))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# An explicit Config: nothing from a schemathesis.toml or the environment changes what runs.
schema = schemathesis.openapi.from_path(SPEC, config=schemathesis.Config())
schema.config.generation.update(modes=[GenerationMode.POSITIVE], max_examples=MAX_EXAMPLES)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
# ZonedDateTime says `format: date-time` (RFC 3339), which refuses the `[Europe/Berlin]` suffix
# that the same schema's description and `pattern` require; the pattern is the contract the API
# keeps, so answers are checked against it and not against the RFC 3339 format.
schema.config.checks.response_schema_conformance.validate_formats = False

# Built at import so the generation hooks can read the store; started by the module fixture.
SANDBOX = Sandbox(seed=42, rate_limit=None)  # many examples per endpoint: the limit is tested elsewhere
STORE = SANDBOX.store


def _error_response_validator() -> OAS30Validator:
    with SPEC.open(encoding="utf-8") as fh:
        components = yaml.safe_load(fh)["components"]
    # OAS30Validator knows `nullable`; the local $ref resolves against the embedded components.
    return OAS30Validator({"$ref": "#/components/schemas/ErrorResponse", "components": components})


ERROR_RESPONSE = _error_response_validator()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with SANDBOX as sb:
        yield sb


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


# -- steering generation towards what the store knows -------------------------------------------
def _known(ids: Iterable[int]) -> st.SearchStrategy[int]:
    with STORE.lock:  # the server thread adds bookings meanwhile
        return st.sampled_from(sorted(ids))


def _zoned(value: dt.datetime) -> str:
    return f"{value.isoformat(timespec='milliseconds')}[{value.tzinfo}]"


def _either(generated: dict[str, Any], known: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """The generated value with some fields swapped for known ones (3 in 4), or as it is."""
    swapped = known.map(lambda swap: {**generated, **swap})
    return st.integers(0, 3).flatmap(lambda roll: st.just(generated) if roll == 0 else swapped)


@schema.hook
def flatmap_path_parameters(
    context: HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[Any]:
    if not path_parameters:
        return st.just(path_parameters)
    known: dict[str, st.SearchStrategy[int]] = {}
    if "bookableAppointmentId" in path_parameters:
        known["bookableAppointmentId"] = _known(STORE.appointments)
    if "bookingId" in path_parameters:
        # The seeded history plus whatever bookAppointmentBooking made earlier in this module.
        known["bookingId"] = _known(STORE.bookings)
    return _either(path_parameters, st.fixed_dictionaries(known))


@schema.hook
def flatmap_query(context: HookContext, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    query = query or {}
    path = context.operation.path if context.operation is not None else ""
    if path == "/v1/appointments/bookable":
        offsets = st.one_of(st.just("0"), _known(STORE.appointments).map(str))
        return _either(query, st.fixed_dictionaries({"offset": offsets}))
    if path == "/v1/appointments/booking":
        return _either(query, st.fixed_dictionaries({"customerId": _known(STORE.customers)}))
    if path.endswith("/slots"):
        today = STORE.now().date()
        window = {
            "daysAhead": st.integers(1, 6),
            "slotWindowStartDate": st.integers(-2, 30).map(lambda d: (today + dt.timedelta(d)).isoformat()),
        }
        return _either(query, st.fixed_dictionaries(window, optional={"customerId": _known(STORE.customers)}))
    return st.just(query)


@st.composite
def _bookable_request(draw: st.DrawFn) -> dict[str, Any]:
    """A customer (often the one who may book anything) and a free slot of a real appointment."""
    customer = draw(st.one_of(st.just(STORE.customer_with("demo").id), _known(STORE.customers)))
    appointment = draw(_known(STORE.appointments))
    start_day = STORE.now().date() + dt.timedelta(days=draw(st.integers(0, 10)))
    slots = STORE.slots(appointment, start_day, 3)
    if not slots:  # Sunday, or every slot of the window taken: the generated times stay
        return {"customerId": customer, "bookableAppointmentId": appointment}
    start, end, instructors = draw(st.sampled_from(slots))
    request: dict[str, Any] = {
        "customerId": customer,
        "bookableAppointmentId": appointment,
        "startDateTime": _zoned(start),
        "endDateTime": _zoned(end),
    }
    if draw(st.booleans()):
        request["instructorIds"] = [draw(st.sampled_from(instructors)).id]
    return request


@schema.hook
def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict) or "customerId" not in body:
        return st.just(body)
    return _either(body, _bookable_request())


# -- the contract -----------------------------------------------------------------------------
@schema.parametrize()
@settings(deadline=None)
def test_operation_conforms_to_spec(
    case: schemathesis.Case, sandbox: Sandbox, session: requests.Session
) -> None:
    case.call_and_validate(
        base_url=sandbox.base_url,
        session=session,
        headers={"X-API-KEY": sandbox.api_key},
        checks=CHECKS,
        timeout=10,
    )


# -- inputs the fuzzer rarely draws ---------------------------------------------------------------
def _booking_request(start: str, end: str) -> dict[str, Any]:
    customer, appointment = STORE.customer_with("demo").id, min(STORE.appointments)
    return {
        "customerId": customer,
        "bookableAppointmentId": appointment,
        "startDateTime": start,
        "endDateTime": end,
    }


VALIDATE, BOOK = "/v1/appointments/bookable/validate", "/v1/appointments/booking/book"


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        # str.isdigit() takes "³", int() does not
        pytest.param("GET", "/v1/appointments/bookable", {"query": {"offset": "³"}}, id="offset-superscript"),
        # a window running past 9999-12-31
        pytest.param(
            "GET",
            "/v1/appointments/bookable/{bookableAppointmentId}/slots",
            {
                "path_parameters": {"bookableAppointmentId": min(STORE.appointments)},
                "query": {"slotWindowStartDate": "9999-12-31", "daysAhead": 5},
            },
            id="slot-window-past-year-9999",
        ),
        # valid strings whose instants leave Python's years in UTC or the studio's zone
        pytest.param(
            "POST",
            VALIDATE,
            {"body": _booking_request("0001-01-01T00:00+14:00", "0001-01-01T01:00+14:00")},
            id="year-1-at-plus-14h",
        ),
        pytest.param(
            "POST",
            BOOK,
            {"body": _booking_request("9999-12-31T23:00-14:00", "9999-12-31T23:30-14:00")},
            id="year-9999-at-minus-14h",
        ),
        # a bracketed "zone" that is a folder of the zone database
        pytest.param(
            "POST",
            VALIDATE,
            {"body": _booking_request("2030-01-07T10:00Z[Europe]", "2030-01-07T11:00Z[Europe]")},
            id="zone-is-a-folder",
        ),
    ],
)
def test_edge_input_gets_documented_400(
    sandbox: Sandbox, session: requests.Session, method: str, path: str, data: dict[str, Any]
) -> None:
    case = schema[path][method].Case(**data)
    response = case.call_and_validate(
        base_url=sandbox.base_url,
        session=session,
        headers={"X-API-KEY": sandbox.api_key},
        checks=CHECKS,
        timeout=10,
    )
    assert response.status_code == 400, response.text


SLOTS = "/v1/appointments/bookable/{bookableAppointmentId}/slots"


@pytest.mark.parametrize(
    ("path", "param", "value", "code", "bound"),
    [
        ("/v1/appointments/bookable", "sliceSize", 9, "errormessage.validation.min", 10),
        ("/v1/appointments/bookable", "sliceSize", 0, "errormessage.validation.min", 10),
        ("/v1/appointments/bookable", "sliceSize", -1, "errormessage.validation.min", 10),
        ("/v1/appointments/bookable", "sliceSize", 101, "errormessage.validation.max", 100),
        ("/v1/appointments/bookable", "sliceSize", 2**31, "errormessage.validation.max", 100),
        (SLOTS, "daysAhead", 0, "errormessage.validation.min", 1),
        (SLOTS, "daysAhead", -7, "errormessage.validation.min", 1),
        (SLOTS, "daysAhead", 7, "errormessage.validation.max", 6),
        (SLOTS, "daysAhead", 400, "errormessage.validation.max", 6),
    ],
)
def test_out_of_range_parameter_is_400_never_500_never_clamped(
    sandbox: Sandbox, session: requests.Session, path: str, param: str, value: int, code: str, bound: int
) -> None:
    path_parameters = {"bookableAppointmentId": min(STORE.appointments)} if path == SLOTS else None
    case = schema[path]["GET"].Case(path_parameters=path_parameters, query={param: value})
    response = case.call_and_validate(
        base_url=sandbox.base_url,
        session=session,
        headers={"X-API-KEY": sandbox.api_key},
        checks=CHECKS,
        timeout=10,
    )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert ERROR_RESPONSE.is_valid(payload), payload
    assert payload["errorCode"] == code
    assert payload["reference"] == param
    assert payload["typedArgs"] == [{"value": bound, "type": "INTEGER"}]


def test_deeply_nested_body_is_400_not_500(sandbox: Sandbox, session: requests.Session) -> None:
    depth = 100_000  # deeper than json.loads can recurse
    response = session.post(
        sandbox.base_url + VALIDATE,
        data=b"[" * depth + b"]" * depth,
        headers={"X-API-KEY": sandbox.api_key, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert ERROR_RESPONSE.is_valid(response.json())


# -- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["missing-key", "wrong-key"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/appointments/bookable"),
        ("GET", "/v1/appointments/bookable/1229489651"),
        ("GET", "/v1/appointments/bookable/1229489651/slots"),
        ("POST", "/v1/appointments/bookable/validate"),
        ("POST", "/v1/appointments/booking/book"),
        ("GET", "/v1/appointments/booking/1234567890"),
        ("DELETE", "/v1/appointments/booking/1234567890"),
        ("GET", "/v1/appointments/booking?customerId=1210005199"),
    ],
)
def test_request_without_the_key_is_401_error_response(
    sandbox: Sandbox, session: requests.Session, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-KEY": key}
    body = {"customerId": 1, "bookableAppointmentId": 1} if method == "POST" else None
    response = session.request(method, sandbox.base_url + path, headers=headers, json=body, timeout=10)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    errors = [error.message for error in ERROR_RESPONSE.iter_errors(payload)]
    assert errors == [], payload
    assert payload["errorCode"] == "errormessage.unauthorized"
