"""The perfectgym-appointments CLI, through typer's CliRunner, against real local sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from perfectgym_appointments_client.cli import app
from perfectgym_appointments_client.sandbox import Sandbox


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def seed42() -> Iterator[Sandbox]:
    """A sandbox with the CLI's default seed: `--sandbox` commands see the same data."""
    with Sandbox(seed=42) as sb:
        yield sb


def run_json(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--json", "--sandbox"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_demo_walks_the_whole_flow(runner: CliRunner) -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for step in (
        "bookable appointments, listed in",
        "2. free slots of",
        "3. validate",
        "AVAILABLE",
        "4. booked: booking",
        "5. bookings of customer",
        "6. rescheduled to",
        "7. canceled booking",
        "demo finished",
    ):
        assert step in text, step
    assert "sandbox-key" not in text


def test_bookable_json(runner: CliRunner) -> None:
    appointments = run_json(runner, "bookable", "--slice-size", "40")
    assert len(appointments) >= 120
    assert len({a["id"] for a in appointments}) == len(appointments)
    assert len(run_json(runner, "bookable", "--limit", "5")) == 5


def test_slots_validate_book_json(runner: CliRunner, seed42: Sandbox) -> None:
    customer = str(seed42.demo_customer_id)
    appointments = run_json(runner, "bookable")
    for appointment in appointments:
        slots = run_json(
            runner, "slots", str(appointment["id"]), "--customer-id", customer, "--days-ahead", "7"
        )
        if slots:
            break
    assert slots, "the seeded sandbox offers slots this week"
    start, end = slots[0]["startDateTime"], slots[0]["endDateTime"]
    assert start.endswith("[Europe/Berlin]")
    status = run_json(runner, "validate", customer, str(appointment["id"]), start, end)
    assert status == {"validationStatus": "AVAILABLE"}
    booking = run_json(runner, "book", customer, str(appointment["id"]), start, end)
    assert booking["startDateTime"] == start
    assert booking["bookingStatus"] in ("BOOKED", "BOOKED_WITH_CONFIRMATION_REQUIRED")
    assert booking["needsConfirmation"] == (booking["bookingStatus"] == "BOOKED_WITH_CONFIRMATION_REQUIRED")


def test_bookings_and_tables(runner: CliRunner, seed42: Sandbox) -> None:
    assert isinstance(run_json(runner, "bookings", str(seed42.demo_customer_id)), list)
    result = runner.invoke(app, ["bookable", "--sandbox", "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert "3 bookable appointments" in result.stdout


def test_error_is_one_line_with_code_and_trace_id(runner: CliRunner) -> None:
    result = runner.invoke(app, ["cancel", "999", "--sandbox"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "HTTP 404" in lines[0]
    assert "trace id" in lines[0]
    assert "Traceback" not in result.output


def test_bad_date_time_argument(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "1", "2", "tomorrow at 8", "2022-06-22T09:00Z", "--sandbox"])
    assert result.exit_code != 0
    assert "start" in result.output


def test_missing_configuration_and_the_key_is_never_printed(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, seed42: Sandbox
) -> None:
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    result = runner.invoke(app, ["bookings", "5"])
    assert result.exit_code == 1
    assert "PERFECTGYM_API_KEY" in result.stderr

    monkeypatch.setenv("PERFECTGYM_BASE_URL", seed42.base_url)
    monkeypatch.setenv("PERFECTGYM_API_KEY", "wrong-secret-7f3c")
    result = runner.invoke(app, ["bookings", "5"])
    assert result.exit_code == 1
    assert "HTTP 401" in result.stderr
    assert "wrong-secret-7f3c" not in result.output

    monkeypatch.setenv("PERFECTGYM_API_KEY", seed42.api_key)
    result = runner.invoke(app, ["bookings", str(seed42.demo_customer_id), "--json"])
    assert result.exit_code == 0, result.output
    assert seed42.api_key not in result.output


def test_installed_entry_point_runs() -> None:
    script = os.path.join(os.path.dirname(sys.executable), "perfectgym-appointments")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "sandbox", "bookable", "slots", "validate", "book", "bookings", "cancel"):
        assert command in proc.stdout
