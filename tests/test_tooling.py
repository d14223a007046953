"""The tooling around the tests: pre-commit runs what scripts/test runs, the lock files hold what
pyproject.toml pins, and scripts/test measures coverage of the whole suite, subprocesses and xdist
workers included, without leaving data files behind."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "perfectgym_appointments_client"


def dev_group() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"])


def pinned(name: str) -> str:
    """The version the dev dependency group pins for ``name``."""
    [version] = [
        req.split("==", 1)[1] for req in dev_group() if re.fullmatch(rf"{re.escape(name)}==[\w.]+", req)
    ]
    return version


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str) -> dict[str, set[str]]:
    """Package -> the versions ``lock`` (a requirements file with hashes) installs (one per marker)."""
    versions: dict[str, set[str]] = {}
    for line in (ROOT / lock).read_text().splitlines():
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if found:
            versions.setdefault(canonical(found[1]), set()).add(found[2])
    return versions


def stamp_hash(root: Path) -> str:
    """The hash scripts/_venv.sh records: pyproject.toml and the two lock files, a missing one empty."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements-dev.txt", "requirements-cli.txt"):
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"")
        digest.update(b"\0")
    return digest.hexdigest()


def scripts_test_ruff_commands() -> list[list[str]]:
    lines = (ROOT / "scripts" / "test").read_text().splitlines()
    return [shlex.split(line) for line in lines if line.startswith("ruff ")]


def ruff_hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    return [hook for hook in hooks if hook["entry"].split()[0] == "ruff"]


# -- pre-commit and scripts/test cannot drift apart --------------------------------------------------


def test_pre_commit_runs_the_ruff_commands_of_scripts_test() -> None:
    commands = scripts_test_ruff_commands()
    assert [cmd[:2] for cmd in commands] == [["ruff", "check"], ["ruff", "format"]]
    assert [shlex.split(hook["entry"]) for hook in ruff_hooks()] == commands
    for hook in ruff_hooks():
        # The commands name the whole tree ("."), as in scripts/test: no file list is appended, and
        # they run whatever the commit touches (a notebook, pyproject.toml's ruff settings).
        assert hook["pass_filenames"] is False, hook["id"]
        assert hook["always_run"] is True, hook["id"]


def test_pre_commit_runs_the_ruff_version_the_dev_group_pins() -> None:
    version = pinned("ruff")
    hooks = ruff_hooks()
    assert hooks
    for hook in hooks:
        assert hook["language"] == "python", hook["id"]  # its own environment, installed from PyPI
        assert hook["additional_dependencies"] == [f"ruff=={version}"], hook["id"]


def test_pre_commit_accepts_the_config() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the lock files -----------------------------------------------------------------------------------


def test_the_dev_lock_holds_every_pin_of_the_dev_group() -> None:
    lock = locked("requirements-dev.txt")
    pins = [req.split("==", 1) for req in dev_group() if "==" in req]
    assert ["pytest-xdist", pinned("pytest-xdist")] in pins
    for name, version in pins:
        assert lock.get(canonical(name)) == {version}, name


def test_the_demo_lock_installs_the_versions_of_the_dev_lock() -> None:
    dev, cli = locked("requirements-dev.txt"), locked("requirements-cli.txt")
    assert {"typer", "rich", "starlette", "uvicorn", "httpx"} <= cli.keys()
    for name, versions in cli.items():
        assert versions <= dev.get(name, set()), name


def test_every_locked_requirement_has_hashes() -> None:
    for lock in ("requirements-dev.txt", "requirements-cli.txt"):
        text = (ROOT / lock).read_text()
        entries = re.findall(
            r"^[A-Za-z0-9][^\n]*==[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}[ \\]*\n)+)", text, re.M
        )
        assert len(entries) == sum(len(v) for v in locked(lock).values()), lock


# -- scripts/test and coverage -------------------------------------------------------------------------


def fake_checkout(tmp_path: Path, pyproject: str, pytest_exit: int = 0) -> tuple[Path, Path, dict[str, str]]:
    """scripts/ in a tree whose venv's python and tools only log what they are asked to run.

    ``python -m ...`` is logged (``-m coverage run`` exits with ``pytest_exit``); anything else
    (the stamp's hash, the floor read from pyproject.toml) runs in the real Python.
    """
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("_venv.sh", "test"):
        (root / "scripts" / name).write_bytes((ROOT / "scripts" / name).read_bytes())
        (root / "scripts" / name).chmod(0o755)
    (root / "pyproject.toml").write_text(pyproject)
    log = tmp_path / "log"
    # The public-API guard (griffe on the package and api/): here it only says it was run.
    (root / "scripts" / "api_check.py").write_text(
        f"import sys\nwith open({str(log)!r}, 'a') as fh:\n    fh.write('api_check ' + ' '.join(sys.argv[1:]) + '\\n')\n"
    )
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ]; then\n'
        f'  echo "python $*" >> "{log}"\n'
        f'  case "$2 $3" in "coverage run") exit {pytest_exit};; esac\n'
        "  exit 0\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    for tool in ("ruff", "mypy", "mkdocs"):
        (venv / "bin" / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
    for path in (venv / "bin").iterdir():
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    # Installed already: the stamp holds the hash of this pyproject.toml (no lock files) and the dev set.
    (venv / ".pgac-installed").write_text(f"{stamp_hash(root)} dev\n")
    # The default worker count is under test: a caller's PGAC_WORKERS must not change it.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PGAC_"))}
    env["PGAC_VENV"] = str(venv)
    return root, log, env


def run_script(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "test"), *args], env=env, capture_output=True, text=True, timeout=60
    )


PYPROJECT_WITH_FLOOR = "[project]\nname = 'x'\n\n[tool.coverage.report]\nfail_under = 95\n"


def test_the_whole_suite_runs_under_coverage_and_reports_the_floor(tmp_path: Path) -> None:
    root, log, env = fake_checkout(tmp_path, PYPROJECT_WITH_FLOOR)
    proc = run_script(root, env)
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    assert lines[:3] == ["ruff check .", "ruff format --check .", "mypy "]
    assert "api_check " in lines  # the public-API guard, before the tests, with no way to skip it
    assert [line for line in lines if "coverage" in line][:4] == [
        "python -m coverage erase",  # no data of an earlier, interrupted run counts
        "python -m coverage run -m pytest -n 4 --dist worksteal",  # on four xdist workers
        "python -m coverage combine --quiet",  # the subprocesses' .coverage.* files into .coverage
        "python -m coverage report",  # the table, the total, and the floor's exit status
    ]
    assert "coverage floor: 95%" in proc.stdout


def test_a_partial_run_is_plain_pytest_with_no_floor(tmp_path: Path) -> None:
    root, log, env = fake_checkout(tmp_path, PYPROJECT_WITH_FLOOR)
    proc = run_script(root, env, "-k", "zoned")
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    assert lines[-1] == "python -m pytest -k zoned"
    assert not [line for line in lines if "coverage" in line]
    assert "coverage floor" not in proc.stdout


def test_a_failing_suite_still_combines_and_keeps_its_exit_status(tmp_path: Path) -> None:
    root, log, env = fake_checkout(tmp_path, PYPROJECT_WITH_FLOOR, pytest_exit=3)
    proc = run_script(root, env)
    assert proc.returncode == 3
    lines = log.read_text().splitlines()
    after = lines[lines.index("python -m coverage run -m pytest -n 4 --dist worksteal") + 1 :]
    # Combined (no .coverage.* left in the tree) and reported, but the floor is not the verdict.
    assert after[:2] == ["python -m coverage combine --quiet", "python -m coverage report --fail-under=0"]
    assert "coverage floor" not in proc.stdout


def test_code_run_in_a_subprocess_is_measured_and_the_generated_layer_is_not(tmp_path: Path) -> None:
    """pyproject.toml's [tool.coverage.run], as scripts/test uses it: a child Python process started
    by the measured one, in another directory, records the package's lines into the same data."""
    child = tmp_path / "elsewhere"
    child.mkdir()
    parent = tmp_path / "parent.py"
    parent.write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys
            code = (
                "from perfectgym_appointments_client._zoned import parse_zoned_datetime\\n"
                "print(parse_zoned_datetime('2026-03-29T03:30:00+02:00[Europe/Berlin]', 'x').wire)\\n"
            )
            out = subprocess.run([sys.executable, "-c", code], cwd={str(child)!r},
                                 capture_output=True, text=True, check=True).stdout
            assert out.strip() == "2026-03-29T03:30:00+02:00[Europe/Berlin]", out
            """
        )
    )
    data_file = tmp_path / "data" / ".coverage"
    data_file.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["COVERAGE_FILE"] = str(data_file)
    run = [sys.executable, "-m", "coverage"]
    subprocess.run([*run, "run", str(parent)], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([*run, "combine", "--quiet"], cwd=ROOT, env=env, check=True, timeout=60)
    # One combined file, nothing in the child's directory.
    assert sorted(p.name for p in data_file.parent.iterdir()) == [".coverage"]
    assert list(child.iterdir()) == []

    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    measured = {Path(name) for name in data.measured_files()}
    zoned = PACKAGE / "_zoned.py"
    assert zoned in measured  # imported only by the child
    # The parser's body ran in the child (the parent never imports the package).
    source = zoned.read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith("def parse_zoned_datetime("))
    body = next(
        i for i, line in enumerate(source[start:], start + 1) if "if not isinstance(value, str)" in line
    )
    assert body in (data.lines(str(zoned)) or [])
    assert not [p for p in measured if "_generated" in p.parts]
    assert all(p.is_relative_to(PACKAGE) for p in measured)


def test_a_full_benchmark_run_keeps_the_sections_measured_alone(tmp_path: Path) -> None:
    from benchmarks.run import measured_alone

    results = tmp_path / "RESULTS.md"
    assert measured_alone(results) == ""
    results.write_text(
        "# Results\n\n## 8. A Redis outage\n\nold figures\n\n## 9. Hostile answers\n\nkept\n\n## 10. More\n\nkept too\n"
    )
    kept = measured_alone(results)
    assert kept == "\n## 9. Hostile answers\n\nkept\n\n## 10. More\n\nkept too\n"
    assert "old figures" not in kept
