"""The public API is what docs/api.md says, and every part of it has a docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import perfectgym_appointments_client as package
from perfectgym_appointments_client import AppointmentsClient

ROOT = Path(__file__).resolve().parent.parent

# Methods backed by one generated operation: their docstring starts with the spec's summary.
OPERATION_OF = {
    "bookable_appointments": "getBookableAppointments",
    "get_bookable_appointment": "getBookableAppointment",
    "get_slots": "getBookableAppointmentSlots",
    "validate_slot": "validateForAppointmentBooking",
    "book": "bookAppointmentBooking",
    "get_booking": "getAppointmentBooking",
    "cancel_booking": "deleteAppointmentBooking",
    "list_bookings": "getAppointmentBookings",
    "check_api_key": "checkApiKey",
}


def test_all_is_exactly_the_documented_names() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", text[text.index("## The client") :]))
    exported = set(package.__all__)
    assert exported <= documented, f"exported but not in docs/api.md: {sorted(exported - documented)}"
    listed = {name for name in documented if hasattr(package, name)}
    assert listed == exported, (
        f"in docs/api.md and importable but not in __all__: {sorted(listed - exported)}"
    )
    assert len(package.__all__) == len(exported)  # no name twice


def _public_members(cls: type[Any]) -> dict[str, Any]:
    members = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("perfectgym_appointments_client"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and name not in members:
                members[name] = value
    return members


def test_every_public_class_function_and_method_has_a_docstring() -> None:
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and "_generated" not in obj.__module__:
            for attr, value in _public_members(obj).items():
                function = value.fget if isinstance(value, property) else value
                if isinstance(value, (property, staticmethod, classmethod)) or inspect.isfunction(function):
                    target = getattr(function, "__func__", function)
                    if not (getattr(target, "__doc__", None) or "").strip():
                        missing.append(f"{name}.{attr}")
    assert missing == []


def test_operation_methods_say_the_specs_summary(spec: dict[str, Any]) -> None:
    summaries = {
        op["operationId"]: op["summary"]
        for item in spec["paths"].values()
        for op in item.values()
        if "operationId" in op
    }
    for method, operation in OPERATION_OF.items():
        doc = inspect.getdoc(getattr(AppointmentsClient, method)) or ""
        assert doc.startswith(summaries[operation]), (method, summaries[operation], doc.splitlines()[:1])
