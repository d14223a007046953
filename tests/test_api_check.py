"""scripts/api_check.py: the public Python API against the last release's committed snapshot
(griffe), on a copy of the package in a git repository of its own, tagged and snapshotted as a
release is, then changed as a careless commit would."""

from __future__ import annotations

import contextlib
import io
import re
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


def _snapshot(repo: Path, ref: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert api_check.main(["--repo", str(repo), "--snapshot", ref]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def release_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding today's package and changelog, tagged v0.1.0, with the snapshot of
    that release committed after it (as a release does: ``--snapshot v0.1.0 > api/0.1.0.json``).
    Made once (the snapshot loads the tag with griffe, a second a time); each test changes a copy."""
    repo = tmp_path_factory.mktemp("released") / "repo"
    shutil.copytree(
        PACKAGE, repo / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "sandbox", "cli")
    )
    shutil.copy(ROOT / "CHANGELOG.md", repo / "CHANGELOG.md")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "release")
    _git(repo, "tag", "v0.1.0")
    (repo / "api").mkdir()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert api_check.main(["--repo", str(repo), "--snapshot", "v0.1.0"]) == 0
    (repo / "api" / "0.1.0.json").write_text(out.getvalue())
    _git(repo, "add", "api")
    _git(repo, "commit", "-q", "-m", "the API snapshot of 0.1.0")
    return repo


@pytest.fixture
def released(release_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the released repository (release_template), to change."""
    repo = tmp_path / "repo"
    shutil.copytree(release_template, repo, symlinks=True)
    return repo


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _drop_telemetry(repo: Path) -> None:
    """``Telemetry`` out of the package's exports, as a careless edit of ``__init__`` would."""
    init = repo / PACKAGE.name / "__init__.py"
    _edit(init, "    from ._telemetry import Telemetry\n", "")
    _edit(init, '    "Telemetry": "_telemetry",\n', "")
    _edit(init, '    "Telemetry",\n', "")


def _list_breaking(repo: Path, line: str) -> None:
    _edit(repo / "CHANGELOG.md", "## [Unreleased]\n", f"## [Unreleased]\n\n### Breaking\n\n- {line}\n")


def test_the_package_as_committed_has_no_unlisted_breaking_change_since_the_last_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No tag needed: the snapshot is in the repository.
    assert api_check.last_snapshot(ROOT) == ROOT / "api" / "0.1.0.json"
    assert api_check.main([]) == 0, capsys.readouterr().err
    assert "against api/0.1.0.json" in capsys.readouterr().out


def _tags(repo: Path) -> list[str]:
    out = subprocess.run(["git", "tag", "--list", "v*"], cwd=repo, capture_output=True, text=True, check=True)  # noqa: S607
    return out.stdout.split()


def test_the_committed_snapshot_is_what_the_release_tag_holds(capsys: pytest.CaptureFixture[str]) -> None:
    """Written by the script from the tag, not by hand; checked wherever the tag is (not in a clone
    without tags, where the snapshot is all there is)."""
    if "v0.1.0" not in _tags(ROOT):
        pytest.skip("this clone has no v0.1.0 tag to compare the snapshot with (git fetch --tags)")
    assert _snapshot(ROOT, "v0.1.0", capsys) == (ROOT / "api" / "0.1.0.json").read_text()


def test_the_newest_release_in_the_changelog_has_its_snapshot() -> None:
    """A release adds ``api/X.Y.Z.json``; without it the guard would compare with an older one."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert newest is not None
    assert api_check.last_snapshot(ROOT) == ROOT / "api" / f"{newest.group(1)}.json", (
        f"write it: scripts/api_check.py --snapshot v{newest.group(1)} > api/{newest.group(1)}.json"
    )


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
    _drop_telemetry(released)
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


def test_a_fresh_clone_without_tags_still_catches_a_break_by_the_snapshot(
    released: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What CI and a newcomer have: a clone of the branch, no tag. The guard compared with the tag
    and passed there; the snapshot is in the clone."""
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--no-tags", str(released), str(clone))
    assert _tags(clone) == []
    assert api_check.main(["--repo", str(clone)]) == 0, capsys.readouterr().err

    _edit(clone / PACKAGE.name / "_client.py", "async def get_booking(self, booking_id: int)",
          "async def get_booking(self, id: int)")  # fmt: skip
    _drop_telemetry(clone)
    capsys.readouterr()
    assert api_check.main(["--repo", str(clone)]) == 1
    err = capsys.readouterr().err
    assert "since api/0.1.0.json" in err
    assert "AppointmentsClient.get_booking" in err
    assert "booking_id" in err
    assert "Telemetry" in err


def test_the_snapshot_and_the_tag_find_the_same_breakages(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snapshot is the release as griffe loads it from the tag: same findings, same words (but
    the line of a removed export, which griffe leaves out for a release read from a git worktree)."""
    client = released / PACKAGE.name / "_client.py"
    _edit(client, "async def get_booking(self, booking_id: int)", "async def get_booking(self, id: int)")
    _drop_telemetry(released)

    def found(against: str) -> list[str]:
        breakages, _ = api_check.check(released, against)
        return sorted(re.sub(r":\d+:", ":", api_check.public_path(b) + ": " + b.explain()) for b in breakages)

    by_snapshot, by_tag = found("api/0.1.0.json"), found("v0.1.0")
    assert len(by_snapshot) >= 2
    assert by_snapshot == by_tag


def test_additions_since_the_release_are_not_breaking(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = released / PACKAGE.name / "_client.py"
    _edit(client, "    async def get_booking(self, booking_id: int)",
          "    async def added(self) -> None:\n        pass\n\n"
          "    async def get_booking(self, booking_id: int, *, extra: bool = False)")  # fmt: skip
    assert api_check.main(["--repo", str(released)]) == 0, capsys.readouterr().err


def test_without_a_snapshot_the_check_says_so_and_fails(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (released / "api" / "0.1.0.json").unlink()
    assert api_check.main(["--repo", str(released)]) == 2
    assert "no snapshot of a release in api/" in capsys.readouterr().err


def test_the_newest_snapshot_is_chosen_by_version_order(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    for name in ("0.9.0.json", "0.10.0.json", "0.2.1.json", "notes.json"):
        (tmp_path / "api" / name).write_text("{}")
    assert api_check.last_snapshot(tmp_path) == tmp_path / "api" / "0.10.0.json"
