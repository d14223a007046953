"""scripts/api_check.py: the public Python API against the last release tag (griffe), on a copy
of the package in a git repository of its own, tagged, then changed as a careless commit would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import api_check  # noqa: E402

PACKAGE = ROOT / "perfectgym_appointments_client"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],  # noqa: S607 - git from PATH
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """A repository holding today's package and changelog, tagged v0.1.0."""
    repo = tmp_path / "repo"
    shutil.copytree(
        PACKAGE, repo / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "sandbox", "cli")
    )
    shutil.copy(ROOT / "CHANGELOG.md", repo / "CHANGELOG.md")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "release")
    _git(repo, "tag", "v0.1.0")
    return repo


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _list_breaking(repo: Path, line: str) -> None:
    _edit(repo / "CHANGELOG.md", "## [Unreleased]\n", f"## [Unreleased]\n\n### Breaking\n\n- {line}\n")


def test_the_package_as_committed_has_no_unlisted_breaking_change_since_the_last_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if api_check.last_release(ROOT) is None:
        pytest.skip("this checkout has no v* tag (a clone without tags): nothing to compare with")
    assert api_check.main([]) == 0, capsys.readouterr().err


def test_a_renamed_parameter_of_a_public_method_fails_until_the_changelog_lists_it(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = released / PACKAGE.name / "_client.py"
    _edit(client, "async def get_booking(self, booking_id: int)", "async def get_booking(self, id: int)")
    assert api_check.main(["--repo", str(released)]) == 1
    err = capsys.readouterr().err
    assert "AppointmentsClient.get_booking" in err
    assert "booking_id" in err

    _list_breaking(released, "`AppointmentsClient.get_booking`: its parameter is `id` now.")
    assert api_check.main(["--repo", str(released)]) == 0, capsys.readouterr().err


def test_a_name_dropped_from_the_exports_is_a_breaking_change(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = released / PACKAGE.name / "__init__.py"
    _edit(init, "    from ._telemetry import Telemetry\n", "")
    _edit(init, '    "Telemetry": "_telemetry",\n', "")
    _edit(init, '    "Telemetry",\n', "")
    assert api_check.main(["--repo", str(released)]) == 1
    assert "Telemetry" in capsys.readouterr().err


def test_a_breaking_change_listed_only_under_a_past_release_still_fails(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = released / PACKAGE.name / "_client.py"
    _edit(client, "async def get_booking(self, booking_id: int)", "async def get_booking(self, id: int)")
    _edit(released / "CHANGELOG.md", "## [0.1.0] - 2026-12-03\n",
          "## [0.1.0] - 2026-12-03\n\n### Breaking\n\n- `AppointmentsClient.get_booking`\n")  # fmt: skip
    assert api_check.main(["--repo", str(released)]) == 1
    assert "AppointmentsClient.get_booking" in capsys.readouterr().err


def test_a_change_inside_a_private_module_is_not_a_breaking_change(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(
        released / PACKAGE.name / "_request.py", "def _size(limit: int) -> str:", "def _size(n: int) -> str:"
    )
    assert api_check.main(["--repo", str(released)]) == 0, capsys.readouterr().err


def test_without_a_release_tag_the_check_says_so_and_fails_unless_allowed(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _git(released, "tag", "-d", "v0.1.0")
    assert api_check.main(["--repo", str(released)]) == 2
    assert "no release tag" in capsys.readouterr().err
    assert api_check.main(["--repo", str(released), "--allow-missing-tag"]) == 0
