"""The perfectgym-appointments CLI, through typer's CliRunner, against real local sandboxes.

The ``sandbox`` command and the scripts run as subprocesses: they serve in the foreground or
install packages, neither of which fits in-process (the ``sandbox`` options it refuses are
checked in-process: a refusal starts nothing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client.cli import app
from perfectgym_appointments_client.sandbox import Sandbox
from perfectgym_appointments_client.sandbox._serving import Served

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = os.path.join(os.path.dirname(sys.executable), "perfectgym-appointments")
DEMO_CUSTOMER = "1210005199"


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


def nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_error_line(stderr: str, *needles: str) -> None:
    lines = nonblank(stderr)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


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
        )  # more than the API's 6 days per request: the client splits the window
        if slots:
            break
    assert slots, "the seeded sandbox offers slots this week"
    start, end = slots[0]["startDateTime"], slots[0]["endDateTime"]
    assert start.endswith("[Europe/Berlin]")
    status = run_json(runner, "validate", customer, str(appointment["id"]), start, end)
    assert status == {"validationStatus": "AVAILABLE"}
    booking = run_json(runner, "book", customer, str(appointment["id"]), start, end)
    assert booking["alreadyExisted"] is False
    assert booking["startDateTime"] == start
    assert booking["bookingStatus"] in ("BOOKED", "BOOKED_WITH_CONFIRMATION_REQUIRED")
    assert booking["needsConfirmation"] == (booking["bookingStatus"] == "BOOKED_WITH_CONFIRMATION_REQUIRED")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_http_backend_can_be_chosen(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from perfectgym_appointments_client._aiohttp_backend import AiohttpBackend

    sent: list[str] = []
    send = AiohttpBackend.send

    async def counted(self: AiohttpBackend, method: str, url: str, *args: Any) -> Any:
        sent.append(method)
        return await send(self, method, url, *args)

    monkeypatch.setattr(AiohttpBackend, "send", counted)
    if how == "environment":
        monkeypatch.setenv("PERFECTGYM_HTTP_BACKEND", "aiohttp")
        args = ["bookable", "--limit", "3", "--json", "--sandbox"]
    else:
        args = ["--http-backend", "aiohttp", "bookable", "--limit", "3", "--json", "--sandbox"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3
    assert sent, "nothing went through aiohttp"
    assert set(sent) == {"GET"}
    result = runner.invoke(app, ["--http-backend", "curl", "bookable", "--sandbox"])
    assert result.exit_code == 2
    assert "--http-backend must be one of httpx, aiohttp" in result.output


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
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "START", "tomorrow at 8")


def test_missing_configuration_and_the_key_is_never_printed(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, seed42: Sandbox
) -> None:
    monkeypatch.delenv("PERFECTGYM_API_KEY", raising=False)
    monkeypatch.delenv("PERFECTGYM_BASE_URL", raising=False)
    # A missing setting is a bad setting, as the help says: exit status 2, not 1 (the API's).
    result = runner.invoke(app, ["bookings", "5"])
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "PERFECTGYM_API_KEY")
    monkeypatch.setenv("PERFECTGYM_API_KEY", "some-key")
    for command in (["bookings", "5"], ["check-key"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, "PERFECTGYM_BASE_URL")
    monkeypatch.setenv("PERFECTGYM_BASE_URL", "ftp://example.com")
    result = runner.invoke(app, ["bookings", "5"])
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "http:// or https://")

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
    for command in (
        "demo",
        "sandbox",
        "bookable",
        "slots",
        "validate",
        "book",
        "bookings",
        "get-booking",
        "reschedule",
        "cancel",
        "check-key",
    ):
        assert command in proc.stdout


# -- slots, validate, check-key, Accept-Language --------------------------------------------------


@pytest.mark.parametrize("bad", ["2026-13-45", "2026-02-30", "tomorrow", "20261201", "2026-W48-1"])
def test_slots_bad_start_date_is_one_line_and_exit_2(runner: CliRunner, bad: str) -> None:
    result = runner.invoke(app, ["slots", "1", "--start-date", bad, "--sandbox"])
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, "--start-date", repr(bad), "2026-12-01")
    assert result.stdout == ""


def test_slots_days_ahead_beyond_six_and_the_api_default(runner: CliRunner) -> None:
    appointment = run_json(runner, "bookable", "--limit", "1")[0]["id"]
    start = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    found = run_json(
        runner,
        "slots",
        str(appointment),
        "--days-ahead",
        "13",
        "--start-date",
        start,
        "--customer-id",
        DEMO_CUSTOMER,
    )
    days = sorted({s["startDateTime"][:10] for s in found})
    assert days, "the seeded sandbox offers slots within 13 days"
    # Windows of at most 6 days were asked for and merged: slots reach past the first window.
    assert dt.date.fromisoformat(days[-1]) - dt.date.fromisoformat(start) >= dt.timedelta(days=7)
    # Without --days-ahead the API's default window applies: one day.
    one_day = run_json(runner, "slots", str(appointment), "--start-date", start)
    assert {s["startDateTime"][:10] for s in one_day} <= {start}
    result = runner.invoke(app, ["slots", str(appointment), "--days-ahead", "0", "--sandbox"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_validate_exits_3_unless_available(runner: CliRunner) -> None:
    appointment = str(run_json(runner, "bookable", "--limit", "1")[0]["id"])
    past = ("2024-06-03T08:00:00.000+02:00[Europe/Berlin]", "2024-06-03T09:00:00.000+02:00[Europe/Berlin]")
    result = runner.invoke(app, ["validate", DEMO_CUSTOMER, appointment, *past, "--sandbox"])
    assert result.exit_code == 3, result.output
    assert result.stdout.strip() == "PAST_START_DATE_TIME"
    result = runner.invoke(app, ["validate", DEMO_CUSTOMER, appointment, *past, "--sandbox", "--json"])
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout) == {"validationStatus": "PAST_START_DATE_TIME"}
    help_text = runner.invoke(app, ["validate", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert "Exit status 0 if it is AVAILABLE, 3" in " ".join(help_text.stdout.split())


def test_check_key(runner: CliRunner, seed42: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["check-key", "--sandbox"])
    assert (result.exit_code, result.stdout.strip()) == (0, "valid")

    monkeypatch.setenv("PERFECTGYM_BASE_URL", seed42.base_url)
    monkeypatch.setenv("PERFECTGYM_API_KEY", "not-the-key-5d2e")
    result = runner.invoke(app, ["check-key"])
    assert (result.exit_code, result.stdout.strip()) == (1, "invalid"), result.output
    assert "not-the-key-5d2e" not in result.output

    # The read-only key is a valid key: HEAD checks the key, not its scopes.
    assert seed42.read_only_api_key is not None
    for key in (seed42.api_key, seed42.read_only_api_key):
        monkeypatch.setenv("PERFECTGYM_API_KEY", key)
        result = runner.invoke(app, ["check-key"])
        assert (result.exit_code, result.stdout.strip()) == (0, "valid"), result.output
        assert key not in result.output


def test_accept_language_option_and_environment(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["cancel", "999", "--sandbox", "--accept-language", "de"])
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "HTTP 404", "Die Terminbuchung 999 existiert nicht")

    monkeypatch.setenv("PERFECTGYM_ACCEPT_LANGUAGE", "DE-ch")  # any case: the API's tag is de-CH
    result = runner.invoke(app, ["bookings", "999", "--sandbox"])
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "Der Kunde 999 existiert nicht")

    result = runner.invoke(app, ["bookings", "999", "--sandbox", "--accept-language", "xx"])
    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "--accept-language", "de-CH", "'xx'")

    monkeypatch.delenv("PERFECTGYM_ACCEPT_LANGUAGE")
    result = runner.invoke(app, ["cancel", "999", "--sandbox"])
    assert "Appointment booking 999 does not exist" in result.stderr


def test_slice_size_within_the_api_bounds(runner: CliRunner) -> None:
    help_text = runner.invoke(app, ["bookable", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert "[10<=x<=100]" in help_text.stdout
    for bad in ("5", "101"):
        result = runner.invoke(app, ["bookable", "--slice-size", bad, "--sandbox"])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert len(run_json(runner, "bookable", "--slice-size", "10", "--limit", "25")) == 25


# -- exit statuses, already booked, get-booking and reschedule ------------------------------------


def test_bad_arguments_and_usage_errors_exit_2_with_one_line(runner: CliRunner) -> None:
    # typer's bound (the help shows it), before anything starts.
    result = runner.invoke(app, ["slots", "1", "--days-ahead", "400", "--sandbox"])
    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, "--days-ahead", "400", "1<=x<=366", "slots --help")
    assert result.stdout == ""
    help_text = runner.invoke(app, ["slots", "--help"], env={"COLUMNS": "200"}).stdout
    assert "DAYS [1<=x<=366]" in help_text
    # The library's own check, before any request: END not after START.
    appointment = str(run_json(runner, "bookable", "--limit", "1")[0]["id"])
    start, end = "2026-12-08T07:00+01:00", "2026-12-08T06:30+01:00"
    for command in ("validate", "book"):
        result = runner.invoke(app, [command, DEMO_CUSTOMER, appointment, start, end, "--sandbox"])
        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, "invalid argument", "before it starts")
    # Every usage error is one line, as the command's own errors are.
    for args, needle in (
        (["bookings"], "Missing argument 'CUSTOMER_ID'"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["bookings", "5", "--bogus"], "No such option: --bogus"),
        (["--bogus"], "No such option: --bogus"),
        (["bookable", "--limit", "0", "--sandbox"], "--limit"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert_one_error_line(result.stderr, needle)


def test_help_shows_what_rich_would_read_as_markup() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "or aiohttp (the [aiohttp] extra)" in proc.stdout


def test_book_from_the_slots_table_twice_then_get_booking_and_reschedule(runner: CliRunner) -> None:
    from perfectgym_appointments_client import parse_zoned_datetime

    with Sandbox(seed=42) as sb:
        env = {"PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key}
        customer = str(sb.demo_customer_id)
        appointment = str(
            next(a.id for a in sb.store.listed() if not (a.requires_confirmation or a.premium_only))
        )
        args = ["slots", appointment, "--customer-id", customer, "--days-ahead", "7"]
        table = runner.invoke(app, args, env=env)
        assert table.exit_code == 0, table.output
        assert "(times in Europe/Berlin)" in table.stdout
        rows = [line.split() for line in table.stdout.splitlines() if re.match(r" *\d+  \w{3}  \d{4}-", line)]
        listed = json.loads(runner.invoke(app, [*args, "--json"], env=env).stdout)
        assert len(rows) == len(listed) >= 2
        # The table shows each slot's full date and time in the studio's zone: the same instants.
        for (_, day, start, end, *_), slot in zip(rows, listed, strict=True):
            assert parse_zoned_datetime(start) == parse_zoned_datetime(slot["startDateTime"])
            assert parse_zoned_datetime(end) == parse_zoned_datetime(slot["endDateTime"])
            assert day == parse_zoned_datetime(slot["startDateTime"]).strftime("%a")
        (_, _, start, end, *_), (_, _, later_start, later_end, *_) = rows[0], rows[1]

        # Booked from what the table shows; the second time it says the customer holds it already.
        first = runner.invoke(app, ["book", customer, appointment, start, end], env=env)
        assert first.exit_code == 0, first.output
        assert re.search(r"^ *booked *$", first.stdout, re.MULTILINE), first.stdout
        assert "already" not in first.stdout
        again = runner.invoke(app, ["book", customer, appointment, start, end], env=env)
        assert again.exit_code == 0, again.output
        assert re.search(r"^ *already booked *$", again.stdout, re.MULTILINE), again.stdout
        assert f"already booked: customer {customer} holds booking" in again.stdout
        assert "nothing new was booked" in again.stdout
        booking = run_json_against(runner, env, "book", customer, appointment, start, end)
        assert booking["alreadyExisted"] is True
        assert booking["startDateTime"] == listed[0]["startDateTime"]  # the API's own form
        booking_id = booking["bookingId"]
        assert str(booking_id) in first.stdout
        assert str(booking_id) in again.stdout

        got = run_json_against(runner, env, "get-booking", str(booking_id))
        assert got == {k: v for k, v in booking.items() if k != "alreadyExisted"}
        shown = runner.invoke(app, ["get-booking", str(booking_id)], env=env)
        assert f"booking {booking_id} of customer {customer}" in shown.stdout

        moved = run_json_against(runner, env, "reschedule", str(booking_id), later_start, later_end)
        assert moved["oldBookingId"] == booking_id
        assert moved["bookingId"] != booking_id
        assert moved["startDateTime"] == listed[1]["startDateTime"]
        assert run_json_against(runner, env, "get-booking", str(booking_id))["bookingStatus"] == "CANCELED"
        back = runner.invoke(
            app, ["reschedule", str(moved["bookingId"]), start, end, "--appointment-id", appointment], env=env
        )
        assert back.exit_code == 0, back.output
        assert f"old booking {moved['bookingId']} canceled" in back.stdout
        result = runner.invoke(app, ["get-booking", "999"], env=env)
        assert result.exit_code == 1
        assert_one_error_line(result.stderr, "HTTP 404")


def run_json_against(runner: CliRunner, env: dict[str, str], *args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- at a terminal's width: 80 and 120 columns ------------------------------------------------------


def run_in_terminal(*args: str, columns: int, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The CLI with its stdout on a terminal (a pty) ``columns`` wide: exit status, what the
    terminal shows (colour codes left out) and stderr."""
    return _in_terminal([SCRIPT, *args], columns=columns, env=env)


def _in_terminal(command: list[str], *, columns: int, env: dict[str, str] | None) -> tuple[int, str, str]:
    """``command`` with its stdout on a terminal (a pty) ``columns`` wide: exit status, what the
    terminal shows (colour codes left out) and stderr."""
    import pty
    import select
    import tempfile

    environ = {**os.environ, **(env or {}), "COLUMNS": str(columns), "TERM": "xterm-256color"}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TERMINAL_WIDTH"):
        environ.pop(name, None)
    chunks: list[bytes] = []
    master, slave = pty.openpty()
    try:
        with (
            tempfile.TemporaryFile() as stderr,
            subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=slave, stderr=stderr, env=environ
            ) as proc,
        ):
            os.close(slave)
            slave = -1
            deadline = time.monotonic() + 120
            while True:
                ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    proc.kill()
                    raise AssertionError(f"{command} did not finish: {b''.join(chunks)!r}")
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the command ended and the terminal closed
                    break
                if not data:
                    break
                chunks.append(data)
            status = proc.wait(timeout=30)
            stderr.seek(0)
            errors = stderr.read().decode()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    shown = b"".join(chunks).decode().replace("\r\n", "\n")
    return status, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", shown), errors


@pytest.mark.parametrize("columns", [80, 120])
def test_demo_fits_the_terminal_and_cuts_no_status(columns: int) -> None:
    status, shown, errors = run_in_terminal("demo", columns=columns)
    assert status == 0, errors
    assert "…" not in shown
    lines = shown.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    # Each booking row holds its three statuses whole, on its first line.
    rows = [
        line for line in lines if re.match(r"\d{10}  ", line) and re.search(r"\b(BOOKED|CANCELED)\b", line)
    ]
    assert len(rows) == 6, shown  # 1 booked, 1 listed, 2 after the reschedule, 2 at the end
    for row in rows:
        assert re.search(
            r"  (BOOKED|CANCELED)  +(PLANNED|CANCELED)  +(PARTICIPATING|NOT_PARTICIPATING) *$", row
        ), row
    assert any(row.rstrip().endswith("  NOT_PARTICIPATING") for row in rows)
    # The slots table: the full start and end of each slot, as book takes them.
    assert re.search(r"^ *1  \w{3}  \d{4}-\d{2}-\d{2}T\d{2}:\d{2}[+-]\d{2}:\d{2}  ", shown, re.MULTILINE), (
        shown
    )


def book_one_needing_confirmation(sb: Sandbox) -> None:
    async def book() -> None:
        async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client:
            for appointment in sb.store.listed():
                if not appointment.requires_confirmation:
                    continue
                slots = await client.get_slots(appointment.id, customer_id=sb.demo_customer_id, days_ahead=6)
                if slots:
                    await client.book(
                        customer_id=sb.demo_customer_id,
                        bookable_appointment_id=appointment.id,
                        slot=slots[-1],
                    )
                    return
        raise AssertionError("no appointment needing confirmation has a free slot")

    anyio.run(book)


def test_a_table_too_wide_for_the_terminal_is_shown_row_by_row() -> None:
    with Sandbox(seed=42) as sb:
        book_one_needing_confirmation(sb)
        env = {"PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key}
        # 120 columns: a table, the long status whole on the booking's row (its note may wrap).
        status, shown, errors = run_in_terminal("bookings", DEMO_CUSTOMER, columns=120, env=env)
        assert status == 0, errors
        assert "…" not in shown
        assert re.search(r"^\d{10}  .*  BOOKED_WITH_CONFIRMATION_REQUIRED\b", shown, re.MULTILINE), shown
        # 80 columns cannot hold that status beside the rest: one block per booking, nothing cut.
        status, shown, errors = run_in_terminal("bookings", DEMO_CUSTOMER, columns=80, env=env)
        assert status == 0, errors
        assert "…" not in shown
        assert max(len(line.rstrip()) for line in shown.splitlines()) <= 80
        assert re.search(
            r"^status +BOOKED_WITH_CONFIRMATION_REQUIRED \(awaiting studio", shown, re.MULTILINE
        ), shown
        assert re.search(r"^booking +\d{10} *$", shown, re.MULTILINE), shown


def _help_cases() -> list[str]:
    from typer.main import get_command

    return ["", *get_command(app).commands]  # type: ignore[attr-defined]


# Every command's --help, one after another in one process (a process each took ~0.4 s), as the
# installed script runs them (tests/test_cli.py's SCRIPT: main() with sys.argv), each ended by a mark.
_HELP_MARK = "=== pgac help done, exit status"
_HELPS = f"""
import sys
from perfectgym_appointments_client.cli import main

for name in sys.argv[1:]:
    sys.argv = [{SCRIPT!r}, *([name] if name else []), "--help"]
    try:
        main()
        status = 0
    except SystemExit as exc:
        status = exc.code
    sys.stdout.flush()
    print("\\n{_HELP_MARK}", status, flush=True)
"""


@functools.cache
def helps_in_terminal(columns: int) -> dict[str, tuple[int, str, str]]:
    """Each command's ``--help`` (``""``: the program's) on a terminal ``columns`` wide: its exit
    status, what the terminal shows and the run's stderr."""
    names = _help_cases()
    status, shown, errors = _in_terminal([sys.executable, "-c", _HELPS, *names], columns=columns, env=None)
    assert status == 0, errors
    parts = re.split(rf"\n?{re.escape(_HELP_MARK)} (\S+)\n", shown)
    assert len(parts) == 2 * len(names) + 1, shown
    assert parts[-1] == "", shown
    return {
        name: (int(code) if code.isdigit() else -1, text, errors)
        for name, text, code in zip(names, parts[0:-1:2], parts[1:-1:2], strict=True)
    }


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("name", _help_cases())
def test_help_fits_the_terminal_whole(name: str, columns: int) -> None:
    from typer.main import get_command

    group = get_command(app)
    command = group.commands[name] if name else group  # type: ignore[attr-defined]
    status, shown, errors = helps_in_terminal(columns)[name]
    assert status == 0, errors
    assert "…" not in shown
    lines = shown.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    flowing = " ".join(shown.split())
    tokens = set(shown.replace("│", " ").split())
    # The command's text: every paragraph whole, wrapped by rich, not at the source's line breaks.
    for paragraph in (command.help or "").split("\n\n"):
        assert " ".join(paragraph.replace("\\[", "[").split()) in flowing, paragraph
    usage = next(i for i, line in enumerate(lines) if "Usage:" in line)
    after_usage = next(i for i in range(usage, len(lines)) if not lines[i].strip())
    text_lines = [line.strip() for line in lines[after_usage:] if not line.startswith(("│", "╭", "╰"))]
    for line, following in itertools.pairwise(text_lines):
        if line and following:
            # A break before a word that would have fitted on the line is a hard line break.
            assert len(line) + 1 + len(following.split()[0]) > columns - 2, (line, following)
    # Every option and argument: its name and its help, word for word (as written, brackets too).
    for param in command.params:
        for option in param.opts:
            assert option in tokens or option.upper() in tokens or param.metavar in tokens, option
        for word in (getattr(param, "help", None) or "").replace("\\[", "[").split():
            assert word in tokens, (param.name, word)


# -- tables when stdout is not a terminal ------------------------------------------------------------


def test_demo_piped_shows_every_column_whole(runner: CliRunner) -> None:
    titles = [a["title"] for a in run_json(runner, "bookable", "--limit", "8")]
    env = {**os.environ, "COLUMNS": "40"}  # a narrow "terminal" must not matter when piped
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    proc = subprocess.run([SCRIPT, "demo"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "…" not in text
    assert "\x1b[" not in text  # no terminal, no colour codes
    for title in titles:  # the first table: every title whole, on its row
        assert re.search(rf"^ *\d+  {re.escape(title)}  ", text, re.MULTILINE), title
    rows = [
        line for line in text.splitlines() if re.search(r"\w{3} \d{2} \w{3} \d{2}:\d{2}-\d{2}:\d{2}", line)
    ]
    assert rows, "booking rows show the whole time span"
    assert all(len(re.split(r"  +", line.strip())) == 6 for line in rows), rows  # six columns, none wrapped
    # Laid out for one width: the rules span it and no table is wider.
    rules = [len(line) for line in text.splitlines() if line.startswith("─")]
    assert rules, text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= min(rules) == max(rules)
    assert max(rules) > 40


def test_tables_are_not_squashed_for_a_pipe(runner: CliRunner, seed42: Sandbox) -> None:
    book_one_needing_confirmation(seed42)
    env = {"PERFECTGYM_BASE_URL": seed42.base_url, "PERFECTGYM_API_KEY": seed42.api_key, "COLUMNS": "50"}
    result = runner.invoke(app, ["bookings", DEMO_CUSTOMER], env=env)
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert re.search(r"\bBOOKED_WITH_CONFIRMATION_REQUIRED\b", result.stdout)
    for word in ("(awaiting", "studio", "confirmation)"):  # the note after it, wrapped in its column
        assert word in result.stdout.split(), word
    assert max(len(line) for line in result.stdout.splitlines()) > 50  # laid out wider than $COLUMNS
    # --json stays plain JSON, whatever the width.
    result = runner.invoke(app, ["bookings", DEMO_CUSTOMER, "--json"], env=env)
    assert any(b["needsConfirmation"] for b in json.loads(result.stdout))


# -- the sandbox command ----------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_process(
    *args: str, until: str = "read-only"
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``perfectgym-appointments sandbox`` in the foreground; yields it and its banner, by first word
    (read up to the line starting with ``until``)."""
    proc = subprocess.Popen(
        [SCRIPT, "sandbox", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    banner: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while until not in banner:
            assert time.monotonic() < deadline, "".join(stderr)
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert proc.poll() is None, "".join(stderr)
                continue
            banner.setdefault(line.split()[0], line.strip())
        yield proc, banner
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        assert "Traceback" not in "".join(stderr)


def test_sandbox_command_banner_is_ready_to_use(runner: CliRunner) -> None:
    with sandbox_process("--port", "0", "--api-key", "my-key-123", "--rate-limit", "3/60", "--quiet") as (
        _,
        banner,
    ):
        match = re.fullmatch(
            r"sandbox listening on (http://127\.0\.0\.1:(\d+)) \(seed 42, rate limit 3 requests per 60 s per endpoint\); Ctrl-C stops it",
            banner["sandbox"],
        )
        assert match, banner
        base_url, port = match.group(1), int(match.group(2))
        assert port != 0  # port 0: the one chosen is printed
        assert banner["export"] == f"export PERFECTGYM_BASE_URL={base_url} PERFECTGYM_API_KEY=my-key-123"
        assert DEMO_CUSTOMER in banner["customer"]
        env = {"PERFECTGYM_BASE_URL": base_url, "PERFECTGYM_API_KEY": "my-key-123"}
        result = runner.invoke(app, ["bookings", DEMO_CUSTOMER, "--json"], env=env)
        assert result.exit_code == 0, result.output
        assert runner.invoke(app, ["check-key"], env=env).exit_code == 0
        # The banner's count is what bookable lists (an appointment switched off for online
        # booking is not listed), and the help's default count says the same.
        listed = len(run_json(runner, "bookable"))
        assert banner[str(listed)].startswith(f"{listed} bookable appointments listed, and 2 switched off")
        sandbox_help = runner.invoke(app, ["sandbox", "--help"], env={"COLUMNS": "200"}).stdout
        assert f"by default it lists {listed}." in " ".join(sandbox_help.split())

        read_only = banner["read-only"].split()[-1]
        result = runner.invoke(app, ["cancel", "1", "--json"], env={**env, "PERFECTGYM_API_KEY": read_only})
        assert result.exit_code == 1
        assert "HTTP 403" in result.stderr

        # --rate-limit 3/60: the fourth request to one endpoint is refused, other endpoints answer.
        headers = {"X-API-KEY": "my-key-123"}
        statuses = [
            httpx.get(f"{base_url}/v1/appointments/bookable", headers=headers, timeout=10).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        answer = httpx.get(f"{base_url}/v1/appointments/booking?customerId={DEMO_CUSTOMER}", headers=headers)
        assert answer.status_code == 200
        assert "retry-after" not in {k.lower() for k in answer.headers}


def test_sandbox_command_rate_limit_off_and_the_access_log() -> None:
    with sandbox_process("--port", "0", "--rate-limit", "off") as (_, banner):
        assert "no rate limit" in banner["sandbox"]
        assert banner["export"].endswith("PERFECTGYM_API_KEY=sandbox-key")


def run_sandbox_command(*args: str) -> subprocess.CompletedProcess[str]:
    # A check that fails to refuse would serve forever: the timeout turns that into a failure.
    return subprocess.run([SCRIPT, "sandbox", *args], capture_output=True, text=True, timeout=60)


def refused_sandbox_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``sandbox`` with options it must refuse, run in this process (its checks start nothing;
    a process each cost ~0.4 s): the exit status and output, as ``run_sandbox_command`` gives
    them. A check that fails to refuse would serve: that fails at once instead."""

    def serve(*_: object, **__: object) -> None:
        raise AssertionError(f"sandbox {' '.join(args)} served instead of refusing")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Served, "_serve_here", serve)
        result = CliRunner().invoke(app, ["sandbox", *args])
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\n{result.exception!r}"
    return subprocess.CompletedProcess(["sandbox", *args], result.exit_code, result.stdout, stderr)


def test_sandbox_port_in_use_is_refused_before_any_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_sandbox_command("--port", str(port))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, f"cannot listen on 127.0.0.1:{port}", "in use")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--port", "70000"], ["--port must be 1-65535", "70000"]),
        (["--port", "-1"], ["--port must be 1-65535"]),
        (["--rate-limit", "60"], ["--rate-limit must be REQUESTS/SECONDS", "'60'"]),
        (["--rate-limit", "0/10"], ["--rate-limit"]),
        (["--rate-limit", "ten/second"], ["--rate-limit"]),
        (["--host", "no-such-host.invalid"], ["cannot listen on no-such-host.invalid"]),
        (["--ssl-certfile", "/nonexistent/cert.pem"], ["both --ssl-certfile and --ssl-keyfile"]),
        (
            ["--ssl-certfile", "/nonexistent/cert.pem", "--ssl-keyfile", "/nonexistent/key.pem"],
            ["--ssl-certfile /nonexistent/cert.pem", "No such file"],
        ),
        (["--api-key", "sandbox-read-only-key"], ["must differ"]),
        (["--studios", "0"], ["--studios must be 1 or more", "0"]),
        (["--studios", "5", "--varied"], ["--varied needs --studios 6 or more", "5"]),
        (["--varied"], ["--varied needs --studios 6 or more"]),
        (["--studios", "3", "--port", "65534"], ["--studios 3 from --port 65534 runs past port 65535"]),
        (["--studios", "2", "--api-key", "mine"], ["--api-key", "studio-<i>-key"]),
        (["--studios", "2", "--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem"], ["HTTP only"]),
        (["--studios", "2", "--host", "no-such-host.invalid"], ["cannot listen on no-such-host.invalid"]),
        (["--studios", "2", "--rate-limit", "0/10"], ["--rate-limit"]),
    ],
)
def test_sandbox_bad_options_are_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    proc = refused_sandbox_command("--port", "0", *args)
    assert proc.returncode == 2, proc.stderr
    assert_one_error_line(proc.stderr, *needles)
    assert "listening" not in proc.stderr


def test_sandbox_command_serves_many_studios(runner: CliRunner) -> None:
    args = ("--studios", "7", "--varied", "--port", "0", "--rate-limit", "5/60", "--seed", "3", "--quiet")
    with sandbox_process(*args, until="customer") as (_, banner):
        assert re.fullmatch(
            r"7 studios listening on 127\.0\.0\.1, free ports \(seed 3\+i, rate limit 5 requests per 60 s "
            r"per endpoint\); Ctrl-C stops it",
            banner["7"],
        ), banner
        assert banner["name"].split() == ["name", "base", "URL", "API", "key", "role"]
        rows = [banner[f"studio-{index:03d}"].split(maxsplit=3) for index in range(7)]
        assert [row[2] for row in rows] == [f"studio-{index}-key" for index in range(7)]
        assert [row[3] for row in rows] == ["ordinary", "days-ahead max 3", "slice-size max 50", "down", "slow",
                                            "rate-limited", "ordinary"]  # fmt: skip
        urls = [row[1] for row in rows]
        assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+", url) for url in urls)
        assert len(set(urls)) == 7
        assert banner["export"] == f"export PERFECTGYM_BASE_URL={urls[0]} PERFECTGYM_API_KEY=studio-0-key"
        assert DEMO_CUSTOMER in banner["customer"]

        def status(index: int, key: int | None = None) -> int:
            headers = {"X-API-KEY": f"studio-{index if key is None else key}-key"}
            return httpx.get(
                f"{urls[index]}/v1/appointments/bookable", headers=headers, timeout=10
            ).status_code

        assert [status(index) for index in (0, 1, 2, 3, 5, 6)] == [200, 200, 200, 503, 200, 200]
        assert status(0, key=1) == 401
        # --rate-limit applies to every studio, each counting its own; the varied one keeps its own.
        assert [status(6) for _ in range(5)] == [200] * 4 + [429]
        assert status(0) == 200
        assert [status(5) for _ in range(5)] == [200] * 5
        env = {"PERFECTGYM_BASE_URL": urls[1], "PERFECTGYM_API_KEY": "studio-1-key"}
        result = runner.invoke(app, ["bookings", DEMO_CUSTOMER, "--json"], env=env)
        assert result.exit_code == 0, result.output


def test_sandbox_command_serves_studios_on_consecutive_ports() -> None:
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 65000:
            continue
        try:
            with sandbox_process("--studios", "2", "--port", str(port), "--quiet", until="customer") as (
                _,
                banner,
            ):
                assert f"ports {port}-{port + 1}" in banner["2"]
                assert banner["studio-001"].split()[1] == f"http://127.0.0.1:{port + 1}"
                answer = httpx.head(f"http://127.0.0.1:{port + 1}/v1/appointments/bookable",
                                    headers={"X-API-KEY": "studio-1-key"})  # fmt: skip
                assert answer.status_code == 200
        except AssertionError as exc:
            if "in use" in str(exc):
                continue  # the port next to the free one was taken: try others
            raise
        # A port of the range in use: one error line, before anything starts.
        with socket.socket() as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the first run's TIME_WAIT
            busy.bind(("127.0.0.1", port + 1))
            busy.listen()
            proc = refused_sandbox_command("--studios", "2", "--port", str(port))
        assert proc.returncode == 2, proc.stderr
        assert_one_error_line(proc.stderr, f"cannot listen on 127.0.0.1:{port + 1}", "in use")
        return
    pytest.skip("found no two free ports in a row")


def test_sandbox_unreadable_tls_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    proc = refused_sandbox_command("--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "not a PEM certificate")
    if os.geteuid() != 0:  # root reads any file
        key.chmod(0)
        proc = refused_sandbox_command("--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
        assert proc.returncode == 2
        assert_one_error_line(proc.stderr, f"--ssl-keyfile {key}", "Permission denied")


def test_sandbox_https(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    with sandbox_process("--port", "0", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as (
        _,
        banner,
    ):
        base_url = banner["export"].split()[1].split("=", 1)[1]
        assert base_url.startswith("https://127.0.0.1:")
        answer = httpx.head(
            f"{base_url}/v1/appointments/bookable",
            headers={"X-API-KEY": "sandbox-key"},
            verify=ssl.create_default_context(cafile=str(ca_file)),
        )
        assert answer.status_code == 200


# -- scripts/demo and scripts/test share one .venv ---------------------------------------------------


def test_scripts_install_the_extra_they_need_once(tmp_path: Path) -> None:
    """Run the real scripts on a copy of the repository whose python, pip and tools only log."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("_venv.sh", "demo", "test"):
        shutil.copy2(ROOT / "scripts" / name, root / "scripts" / name)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    log = tmp_path / "log"
    # The public-API guard needs git and a release tag; here it only says it was run.
    (root / "scripts" / "api_check.py").write_text(f"open({str(log)!r}, 'a').write('api_check\\n')\n")
    fake_python = tmp_path / "python"
    # -m pip / -m pytest are logged; anything else (the stamp's hash) runs in the real Python.
    fake_python.write_text(
        f'#!/bin/sh\nif [ "$1" = "-m" ]; then echo "python $*" >> "{log}"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    # $PYTHON creates the venv: a bin/ holding the fake python and tools that only log.
    make_venv = tmp_path / "python3-for-venv"
    make_venv.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "Python 3.x (fake)"; exit 0; fi\n'
        f'echo "venv $*" >> "{log}"\n'
        'mkdir -p "$3/bin"\n'
        f'cp "{fake_python}" "$3/bin/python"\n'
        "for tool in perfectgym-appointments ruff mypy mkdocs; do\n"
        f'  printf \'#!/bin/sh\\necho "%s $*" >> "{log}"\\n\' "$tool" > "$3/bin/$tool"; chmod +x "$3/bin/$tool"\n'
        "done\n"
    )
    for path in (fake_python, make_venv):
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    venv = tmp_path / "venv"
    env = {**os.environ, "PGAC_VENV": str(venv), "PYTHON": str(make_venv)}

    def run(script: str, *args: str) -> list[str]:
        before = log.read_text().splitlines() if log.exists() else []
        proc = subprocess.run(
            [str(root / "scripts" / script), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return log.read_text().splitlines()[len(before) :]

    def installs(lines: list[str]) -> list[str]:
        """What each pip run installed: a lock file (``-r``) or the project (``-e``)."""
        found = []
        for line in lines:
            if " -r " in line:
                found.append(Path(line.split(" -r ", 1)[1].split()[0]).name)
            elif " -e " in line:
                found.append(line.split(" -e ", 1)[1])
        return found

    first = run("demo", "--seed", "7")
    assert first[0] == f"venv -m venv {venv}"
    # The demo needs the cli set, not the dev tools: its lock, then the project without deps.
    assert installs(first) == ["requirements-cli.txt", str(root)]
    assert any("--no-deps -e" in line for line in first)
    assert first[-1] == "perfectgym-appointments demo --seed 7"
    assert installs(run("demo")) == []  # installed once
    test_run = run("test", "-k", "zoned")
    assert installs(test_run) == ["requirements-dev.txt", str(root)]
    assert test_run[-6:-2] == ["ruff check .", "ruff format --check .", "mypy ", "api_check"]
    assert test_run[-2].startswith("mkdocs build --strict")  # the site, before the tests that open it
    assert test_run[-1] == "python -m pytest -k zoned"
    assert installs(run("demo")) == []  # dev includes cli
    assert installs(run("test")) == []
    (root / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    assert installs(run("demo")) == ["requirements-cli.txt", str(root)]  # a changed pyproject.toml reinstalls
    assert installs(run("test")) == ["requirements-dev.txt", str(root)]
    (root / "requirements-dev.txt").write_text("# a new lock\n")
    assert installs(run("test")) == ["requirements-dev.txt", str(root)]  # so does a changed lock
