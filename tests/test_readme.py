"""README.md says what works: its Example runs verbatim against a sandbox, its commands exist."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from perfectgym_appointments_client.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = os.path.join(os.path.dirname(sys.executable), "perfectgym-appointments")


def section(title: str) -> str:
    """The text under a ``## title`` heading, up to the next heading (``##`` or ``###``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^###? )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def test_the_example_runs_verbatim_against_the_sandbox(tmp_path: Path) -> None:
    [setup] = code_blocks(section("Example"), "bash")
    [example] = code_blocks(section("Example"), "python")
    exports = dict(re.findall(r"(PERFECTGYM_\w+)=(\S+)", setup))
    assert set(exports) == {"PERFECTGYM_BASE_URL", "PERFECTGYM_API_KEY"}
    script = tmp_path / "example.py"
    script.write_text(example)
    with Sandbox() as sb:  # the defaults, like `perfectgym-appointments sandbox`
        assert exports["PERFECTGYM_API_KEY"] == sb.api_key
        expected_titles = [a.title for a in sb.store.listed()[:3]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFECTGYM_")}
        env |= {"PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key}
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == "key valid: True"
    counted = [re.fullmatch(r"(.+): (\d+) free slots this week", line) for line in lines[1:]]
    assert [m.group(1) for m in counted if m] == expected_titles
    firsts = [line.removeprefix("  first: ") for line in lines if line.startswith("  first: ")]
    assert firsts, "the sandbox offers slots this week"
    for first in firsts:
        assert dt.datetime.fromisoformat(first).utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    # What the README says it prints.
    prose = section("Example")
    assert "`key valid: True`" in prose
    assert re.search(r"`[^`]+: \d+ free slots this week`", prose)


def test_the_example_stays_within_the_api_limits() -> None:
    [example] = code_blocks(section("Example"), "python")
    assert "AppointmentsClient()" in example  # configured by the environment, as the setup exports
    assert "1210005199" in example  # sb.demo_customer_id, the same for every seed
    for size in re.findall(r"slice_size=(\d+)", README):
        assert 10 <= int(size) <= 100, size
    for days in re.findall(r"days_ahead=(\d+)", README):
        assert int(days) >= 1, days


def test_the_sandbox_prints_the_export_line_the_readme_shows() -> None:
    [setup] = code_blocks(section("Example"), "bash")
    port = re.search(r"sandbox --port (\d+)", setup)
    assert port
    with subprocess.Popen(
        [SCRIPT, "sandbox", "--port", "0", "--quiet"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stderr is not None
            export = next(line for line in proc.stderr if line.startswith("export "))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    chosen = re.search(r"127\.0\.0\.1:(\d+)", export)
    assert chosen
    assert export.strip().replace(f":{chosen.group(1)}", f":{port.group(1)}") in setup.splitlines()


def test_install_lists_every_runtime_dependency_and_no_pypi_install() -> None:
    install = section("Install")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement)
        assert name
        assert name.group(0) in install, f"README's Install does not name {name.group(0)}"
    # Not on PyPI: an install by name would fail (or install someone else's package).
    assert not re.search(r"pip install ['\"]?perfectgym-appointments-client", README)
    assert "pip install ." in install


@pytest.mark.parametrize(
    "claim",
    [
        "slice_size` is 10 to 100",
        "consecutive windows of at most 6 days",
        "check_api_key()",
        'accept_language="de"',
        "required_scope",
        "typed_args",
        "14 `ValidationStatus` values",
        "getBookableAppointmentSlots",
        "checkApiKey",
        "409 (concurrent modification)",
        "perfectgym-appointments check-key",
        "--rate-limit",
        "booking horizon of 28 days",
        "within two weeks of now",
        "read_only_api_key",
        "`validate`: the slot is not `AVAILABLE`",
    ],
)
def test_readme_states_the_current_contract(claim: str) -> None:
    # As read, not as wrapped: a claim may break across lines anywhere.
    assert claim in " ".join(README.split())


def test_readme_names_every_validation_status() -> None:
    from perfectgym_appointments_client import ValidationStatus

    for status in ValidationStatus:
        assert f"`{status.value}`" in README, status


def test_readme_cli_commands_exist() -> None:
    from typer.main import get_command

    from perfectgym_appointments_client.cli import app

    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    [usage] = code_blocks(section("Command line"), "bash")
    shown = {line.split()[1] for line in usage.splitlines() if line.startswith("perfectgym-appointments ")}
    assert shown == commands


def test_the_web_app_lifespan_example_serves_requests_under_uvicorn(tmp_path: Path) -> None:
    import httpx
    from webapp_harness import Log, free_port

    example, _tracing = code_blocks(section("In a web app"), "python")
    (tmp_path / "readme_app.py").write_text(example)
    with Sandbox() as sb:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFECTGYM_")}
        env |= {"PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key}
        app = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "readme_app:app", "--app-dir", str(tmp_path),
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert app.stderr is not None
        log = Log(app.stderr)
        try:
            log.wait_for("Uvicorn running on")
            appointment = sb.store.listed()[0]
            answer = httpx.get(f"http://127.0.0.1:{port}/appointments/{appointment.id}", timeout=20)
            missing = httpx.get(f"http://127.0.0.1:{port}/appointments/1", timeout=20)
        finally:
            app.terminate()
            app.wait(20)
            log.join()
            app.stderr.close()
    assert answer.status_code == 200, log.text()
    assert answer.json() == {"id": appointment.id, "title": appointment.title}
    # Mapping errors to answers is examples/webapp's errors.py; unmapped, NotFoundError is a 500.
    assert missing.status_code == 500
    assert "NotFoundError" in log.text()
    assert "Application shutdown complete" in log.text()


def test_the_tracing_example_makes_a_client_with_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    _app, tracing = code_blocks(section("In a web app"), "python")
    monkeypatch.setenv("PERFECTGYM_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PERFECTGYM_API_KEY", "readme-key")
    namespace: dict[str, object] = {}
    exec(compile(tracing, "README.md (tracing)", "exec"), namespace)  # noqa: S102 - the README's own code
    client = namespace["client"]
    assert type(client).__name__ == "AppointmentsClient"
    assert client._telemetry is not None  # type: ignore[attr-defined]


def test_the_web_app_command_is_a_script_in_the_repository() -> None:
    [command] = code_blocks(section("In a web app"), "bash")
    script = command.split()[0]
    assert script == "./scripts/webapp"
    assert os.access(ROOT / script, os.X_OK)
