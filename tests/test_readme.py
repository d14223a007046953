"""README.md says what works: its Example runs verbatim against a sandbox, its commands exist.

The guides' code and claims are tested in tests/test_docs_examples.py."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from perfectgym_appointments_client.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = os.path.join(os.path.dirname(sys.executable), "perfectgym-appointments")


def section(title: str) -> str:
    """The text under a ``## title`` heading, up to the next heading (``##`` or ``###``) or the end."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^###? |\Z)", README, re.MULTILINE | re.DOTALL)
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


def test_readme_is_a_landing_page() -> None:
    # The facts live on the site's pages; the README says what this is and points there.
    assert len(README.splitlines()) <= 200
    headings = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert headings == ["Install", "The two commands", "Example", "Documentation"]
    # The site includes these by their markers (docs/index.md); a lost marker would lose the text.
    for name in ("intro", "install", "commands", "example"):
        assert README.count(f"<!-- --8<-- [start:{name}] -->") == 1, name
        assert README.count(f"<!-- --8<-- [end:{name}] -->") == 1, name
    assert "./scripts/docs" in section("Documentation")
