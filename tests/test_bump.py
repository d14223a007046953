"""A spec version bump is one command and zero hand edits (scripts/generate.py --from, scripts/api_diff.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "specs"
sys.path.insert(0, str(ROOT / "scripts"))

from api_diff import Change, diff_specs, load_spec, render_changelog  # noqa: E402


def test_the_diff_of_a_pair_of_specs() -> None:
    changes = diff_specs(load_spec(FIXTURES / "old.yaml"), load_spec(FIXTURES / "new.yaml"))
    assert set(changes) == {
        Change("added", "operation `getItem` (GET /items/{id})", False),
        Change("removed", "operation `legacyThing` (GET /legacy)", True),
        Change("added", "`listItems`: optional query parameter `room`", False),
        Change("added", "`listItems`: required header parameter `tenant`", True),
        Change("changed", "`listItems`: query parameter `cursor` became required", True),
        Change("changed", "`listItems`: parameter `size` minimum 1 -> 10", True),  # narrower
        Change("changed", "`listItems`: parameter `size` maximum 100 -> 200", False),  # wider
        Change("changed", "`listItems`: parameter `size` default 50 -> 20", False),
        Change("added", "schema `Brand`", False),
        Change("removed", "schema `Unused`", True),
        Change("added", "`Item.roomName` (optional field)", False),
        Change("added", "`Item.weight` (optional field)", False),
        Change("removed", "`Item.gone` (field)", True),
        Change("changed", "`Item.status` became optional", True),  # an answer's field may be absent now
        Change("added", "`NewItem.owner` (required field)", True),  # callers send NewItem
        Change("added", "`NewItem.color` (optional field)", False),
        Change("added", "`Status`: enum value `WAITLISTED`", False),  # enums are open here
        Change("removed", "`Status`: enum value `ARCHIVED`", True),
    }


def test_no_change_is_no_change() -> None:
    spec = load_spec(ROOT / "openapi.yaml")
    assert diff_specs(spec, spec) == []
    text = render_changelog(spec, spec, [], "2026-01-01")
    assert "No change a caller of the client can notice." in text


def test_the_changelog_section_keeps_a_changelog_form() -> None:
    old, new = load_spec(FIXTURES / "old.yaml"), load_spec(FIXTURES / "new.yaml")
    text = render_changelog(old, new, diff_specs(old, new), "2026-11-29")
    assert text.startswith("## [API 1.1.0] - 2026-11-29\n")
    assert text.index("### Added") < text.index("### Changed") < text.index("### Removed")
    assert "- **breaking**: operation `legacyThing` (GET /legacy)" in text
    assert "9 breaking changes for callers." in text


def test_the_diff_command_exits_1_on_a_breaking_change() -> None:
    run = [sys.executable, str(ROOT / "scripts" / "api_diff.py")]
    breaking = subprocess.run(
        [*run, FIXTURES / "old.yaml", FIXTURES / "new.yaml"], capture_output=True, text=True
    )
    same = subprocess.run(
        [*run, ROOT / "openapi.yaml", ROOT / "openapi.yaml"], capture_output=True, text=True
    )
    assert breaking.returncode == 1
    assert "### Removed" in breaking.stdout
    assert same.returncode == 0


def bumped_spec() -> dict[str, Any]:
    """openapi.yaml as a newer API might publish it: four kinds of change at once."""
    spec = load_spec(ROOT / "openapi.yaml")
    spec["info"]["version"] = "1.13.2"
    schemas = spec["components"]["schemas"]
    # Written as the vendor writes an optional field: no `nullable` (the API still sends null).
    schemas["AppointmentBooking"]["properties"]["roomName"] = {
        "type": "string",
        "description": "The room the appointment takes place in.",
    }
    status = schemas["ValidationStatus"]
    status["enum"].append("WAITLIST_ONLY")
    status["description"] += "* `WAITLIST_ONLY`: the slot is full; the customer may join its waiting list.\n"
    slots = spec["paths"]["/v1/appointments/bookable/{bookableAppointmentId}/slots"]["get"]
    slots["parameters"].append(
        {
            "name": "roomId",
            "in": "query",
            "required": False,
            "description": "Only slots in this room.",
            "schema": {"type": "integer", "format": "int64"},
        }
    )
    return spec


@pytest.fixture(scope="module")
def bumped_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project, bumped with one command, as a maintainer would."""
    repo = tmp_path_factory.mktemp("bump") / "repo"
    ignore = shutil.ignore_patterns("__pycache__", ".ruff_cache", ".mypy_cache")
    repo.mkdir()
    for name in ("openapi.yaml", "generator-config.yml", "pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("templates", "scripts", "perfectgym_appointments_client"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=ignore)
    (repo / "tests").mkdir()
    for name in ("test_spec.py", "conftest.py"):
        shutil.copy(ROOT / "tests" / name, repo / "tests" / name)
    new_spec = repo / "new-openapi.yaml"
    new_spec.write_text(yaml.safe_dump(bumped_spec(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "scripts/generate.py", "--from", str(new_spec)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (repo / "bump-output.txt").write_text(result.stdout, encoding="utf-8")
    return repo


def run_in(repo: Path, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_bumped_package_imports_and_shows_the_new_things(bumped_repo: Path) -> None:
    out = run_in(
        bumped_repo,
        """
import perfectgym_appointments_client as p
from perfectgym_appointments_client._request import USER_AGENT
from perfectgym_appointments_client._generated.models import AppointmentBooking
from perfectgym_appointments_client._generated.api.appointments import get_bookable_appointment_slots as s
assert p.__file__.startswith(__import__("os").getcwd()), p.__file__
raw = AppointmentBooking.from_dict({
    "bookingId": 1, "bookingStatus": "BOOKED", "appointmentStatus": "PLANNED", "participantStatus": "UNSET",
    "startDateTime": "2027-06-22T08:00:00.000+02:00[Europe/Berlin]",
    "endDateTime": "2027-06-22T09:00:00.000+02:00[Europe/Berlin]", "roomName": "Studio 2"})
booking = p.Booking.from_api(raw, customer_id=5)
print("room", booking.room_name, booking.additional_properties)
base = {k: v for k, v in raw.to_dict().items() if k != "roomName"}
for answer in (base, {**base, "roomName": None}):
    other = AppointmentBooking.from_dict(answer)
    print("absent", other.room_name, p.Booking.from_api(other).room_name, "roomName" in other.to_dict())
print("status", p.ValidationStatus.WAITLIST_ONLY.is_known, p.ValidationStatus("WAITLIST_ONLY") is p.ValidationStatus.WAITLIST_ONLY)
print("param", s.build_request(1, room_id=7).params)
print("version", p.API_VERSION, p.AppointmentsClient(api_key="k", base_url="https://t.example").api_version, USER_AGENT)
""",
    )
    assert "room Studio 2 {}" in out  # an attribute, no longer an unknown extra
    assert out.count("absent None None False") == 2  # missing or null: None, as every optional field
    assert "status True True" in out
    assert "'roomId': 7" in out
    assert "version 1.13.2 1.13.2" in out
    assert "PerfectGym Next API 1.13.2)" in out


def test_the_bumped_repo_passes_its_spec_tests(bumped_repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_spec.py", "-q", "-p", "no:cacheprovider"],
        cwd=bumped_repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_the_changelog_and_the_readme_say_what_changed(bumped_repo: Path) -> None:
    changelog = (bumped_repo / "CHANGELOG.md").read_text(encoding="utf-8")
    section = changelog[changelog.index("## [API 1.13.2]") :]
    section = section[: section.find("\n## [", 1)] if "\n## [" in section[1:] else section
    assert "- non-breaking: `AppointmentBooking.roomName` (optional field)" in section
    assert "- non-breaking: `ValidationStatus`: enum value `WAITLIST_ONLY`" in section
    assert "- non-breaking: `getBookableAppointmentSlots`: optional query parameter `roomId`" in section
    current = load_spec(ROOT / "openapi.yaml")["info"]["version"]
    assert f"The spec moved from API {current} to 1.13.2." in section
    assert changelog.index("## [Unreleased]") < changelog.index("## [API 1.13.2]")
    assert "0 breaking changes for callers." in section
    printed = (bumped_repo / "bump-output.txt").read_text(encoding="utf-8")
    assert "`AppointmentBooking.roomName`" in printed
    readme = (bumped_repo / "README.md").read_text(encoding="utf-8")
    assert "<!-- api-version -->1.13.2<!-- /api-version -->" in readme
    spec = load_spec(bumped_repo / "openapi.yaml")
    assert spec["info"]["version"] == "1.13.2"
    # a regenerate-and-compare check in the bumped repo passes: nothing was left half done
    check = subprocess.run(
        [sys.executable, "scripts/generate.py", "--check"],
        cwd=bumped_repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr
