"""The public API is what the site's API reference (docs/reference/) renders, and every part of it
has a docstring."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import perfectgym_appointments_client as package
from perfectgym_appointments_client import AppointmentsClient

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"

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


def _reference_entries() -> list[str]:
    """The objects the API reference renders: each page's ``::: identifier`` lines, in order."""
    return [
        match
        for page in sorted(REFERENCE.glob("*.md"))
        for match in re.findall(r"^::: *(\S+)", page.read_text(), flags=re.MULTILINE)
    ]


def test_the_reference_pages_render_exactly_the_names_of_all_each_once() -> None:
    entries = _reference_entries()
    prefix = f"{package.__name__}."
    names = [entry.removeprefix(prefix) for entry in entries]
    assert [entry for entry in entries if not entry.startswith(prefix) or "." in entry[len(prefix) :]] == []
    assert sorted(set(package.__all__) - set(names)) == [], "in __all__ but on no reference page"
    assert sorted(set(names) - set(package.__all__)) == [], "on a reference page but not in __all__"
    assert sorted(name for name in set(names) if names.count(name) > 1) == [], "rendered twice"
    assert len(package.__all__) == len(set(package.__all__))  # no name twice in __all__ either


def test_the_reference_overview_links_every_name_of_all() -> None:
    text = (REFERENCE / "index.md").read_text()
    linked = re.findall(
        rf"\[`([A-Za-z_][A-Za-z0-9_]*)`\]\[{package.__name__}\.([A-Za-z_][A-Za-z0-9_]*)\]", text
    )
    assert [(label, target) for label, target in linked if label != target] == []
    assert sorted({target for _, target in linked}) == sorted(package.__all__)


def test_the_reference_pages_are_all_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {f"reference/{page.name}" for page in REFERENCE.glob("*.md")}
    assert sorted(page for page in pages if page not in nav) == []
    assert "reference/client.md" in pages


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


def _loaded_as_the_reference_renders_it() -> Any:
    import griffe

    extensions = griffe.load_extensions(f"{REFERENCE / 'griffe_sphinx_roles.py'}:SphinxRoles")
    return griffe.load(package.__name__, search_paths=[str(ROOT)], extensions=extensions)


def test_the_reference_turns_roles_into_links_to_public_names_and_never_to_private_ones() -> None:
    loaded = _loaded_as_the_reference_renders_it()
    book = loaded["_client.AppointmentsClient.book"].docstring.value
    assert "[`SlotNotBookableError`][perfectgym_appointments_client.SlotNotBookableError]" in book
    assert ":class:" not in book
    # A bare :meth: in a model's docstring means the client's method; a private helper stays code.
    booking = loaded["_models.Booking"].docstring.value
    assert "[`get_booking()`][perfectgym_appointments_client.AppointmentsClient.get_booking]" in booking
    zoned = loaded["_zoned.ZonedDateTime"].docstring.value
    assert "`instant()`" in zoned
    assert "][perfectgym_appointments_client.instant]" not in zoned
    assert "[`wire`][perfectgym_appointments_client.ZonedDateTime.wire]" in zoned


def test_the_reference_shows_attrs_signatures_and_no_private_base() -> None:
    loaded = _loaded_as_the_reference_renders_it()
    options = loaded["_call_options.CallOptions"].members["__init__"].parameters
    assert [(p.name, p.kind.value, str(p.default)) for p in options][1:] == [
        ("max_rate_limit_wait", "keyword-only", "None"),
        ("deadline", "keyword-only", "None"),
    ]
    client = loaded["_client.AppointmentsClient"].members["__init__"].parameters
    assert str(client["max_retries"].default) == "2"  # the constant's value, not its private name
    rate_limit_error = loaded["_exceptions.RateLimitError"]
    assert [str(base) for base in rate_limit_error.bases] == ["APIStatusError"]
    assert rate_limit_error.members["retry_after"].docstring is not None


def test_importing_the_client_loads_no_optional_library_nor_what_only_some_calls_need() -> None:
    # What a user pays before the first call (benchmarks/RESULTS.md, section 6: at most 1.25 x
    # `import httpx`): the core dependencies and the request path, nothing a feature they may
    # not use needs. A fresh interpreter, so that no other test's imports count.
    code = textwrap.dedent(
        """
        import sys
        import httpx
        before = set(sys.modules)
        from perfectgym_appointments_client import AppointmentsClient
        new = set(sys.modules) - before
        print(sorted({m.split(".")[0] for m in new}))
        print(sorted(m for m in new if m.startswith("perfectgym_appointments_client.")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    libraries, ours = (set(ast.literal_eval(line)) for line in done.stdout.splitlines())
    assert libraries <= {
        "perfectgym_appointments_client",
        "attr",
        "attrs",
        "anyio",
        "contextvars",
        "_contextvars",
    }
    loaded_on_first_use = {
        "_aiohttp_backend", "_booking", "_journal", "_telemetry", "_pagination", "_models", "_zoned",
        "_field_paths", "_display", "_html", "_concurrency", "_tls", "cli", "sandbox", "_generated.models",
        "_generated.api",
    }  # fmt: skip
    assert not {m.removeprefix("perfectgym_appointments_client.") for m in ours} & loaded_on_first_use
