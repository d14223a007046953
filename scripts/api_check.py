"""The guard on the public Python API: the package now against the last release (a ``v*`` git tag),
compared by griffe; a breaking change fails unless CHANGELOG.md names it under ``### Breaking`` in
``## [Unreleased]``.

    python scripts/api_check.py            # what ./scripts/test runs
    python scripts/api_check.py --against v0.1.0

A breakage is "named" when the Unreleased Breaking section mentions its public dotted path without
the package prefix (``AppointmentsClient.book``) or with it. Only what ``__all__`` exports counts:
griffe follows the package's ``__init__`` (its ``TYPE_CHECKING`` imports are the exports' aliases),
and changes inside private modules that no public name reaches are not breaking for callers.

The HTTP API has its own diff (``scripts/generate.py --from``); this one guards the Python surface.
Exit status: 0 clean (or every breakage listed), 1 an unlisted breakage, 2 no release to compare
with (a checkout without tags: ``git fetch --tags``), which ``--allow-missing-tag`` turns into 0
with a note.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "perfectgym_appointments_client"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def last_release(repo: Path) -> str | None:
    """The newest ``v*`` tag by version order, or None."""
    tags = subprocess.run(
        ["git", "tag", "--list", "v*", "--sort=-v:refname"],  # noqa: S607 - git from PATH, as developers run it
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return tags[0] if tags else None


def unreleased_breaking(changelog: str) -> str:
    """The text of ``### Breaking`` under ``## [Unreleased]`` (empty when there is none)."""
    unreleased = re.search(r"^## \[Unreleased\][^\n]*\n(.*?)(?=^## |\Z)", changelog, re.MULTILINE | re.DOTALL)
    if unreleased is None:
        return ""
    breaking = re.search(
        r"^### Breaking[^\n]*\n(.*?)(?=^### |\Z)", unreleased.group(1), re.MULTILINE | re.DOTALL
    )
    return "" if breaking is None else breaking.group(1)


def public_path(breakage: griffe.Breakage) -> str:
    """``AppointmentsClient.book`` for a breakage of ``perfectgym_appointments_client.AppointmentsClient.book``
    (its parameter, for a parameter's breakage, is in the explanation, not the path)."""
    parts = breakage.obj.path.removeprefix(PACKAGE + ".").split(".")
    # The defining private module (``_client.AppointmentsClient``) is not part of the public name.
    while len(parts) > 1 and parts[0].startswith("_") and not parts[0].startswith("__"):
        parts.pop(0)
    return ".".join(parts)


def unlisted(breakages: Iterable[griffe.Breakage], listed: str) -> list[griffe.Breakage]:
    return [
        b
        for b in breakages
        if not re.search(rf"(?<![\w.]){re.escape(public_path(b))}(?![\w])", listed)
        and f"{PACKAGE}.{public_path(b)}" not in listed
    ]


def check(repo: Path, against: str) -> tuple[list[griffe.Breakage], list[griffe.Breakage]]:
    """(every breakage, those CHANGELOG.md does not list) of the package in ``repo`` against ``against``."""
    # search_paths are relative to the release's worktree (an absolute one would load the new code).
    old = griffe.load_git(PACKAGE, ref=against, repo=repo, search_paths=["."], resolve_aliases=True)
    # Not a path relative to the working directory (griffe's default): the package in ``repo``.
    new = griffe.load(PACKAGE, search_paths=[repo], try_relative_path=False, resolve_aliases=True)
    found = list(griffe.find_breaking_changes(old, new))
    listed = unreleased_breaking((repo / "CHANGELOG.md").read_text(encoding="utf-8"))
    return found, unlisted(found, listed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", help="the release to compare with (default: the newest v* tag)")
    parser.add_argument("--repo", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--allow-missing-tag", action="store_true", help="no release tag in this checkout: say so and pass"
    )
    args = parser.parse_args(argv)
    repo: Path = args.repo.resolve()
    against = args.against or last_release(repo)
    if against is None:
        message = "api_check: no release tag (v*) in this checkout to compare the public API with (git fetch --tags)"
        print(message, file=sys.stderr)
        return 0 if args.allow_missing_tag else 2
    found, missing = check(repo, against)
    if not missing:
        listed = f"; {len(found)} listed in CHANGELOG.md" if found else ""
        print(f"api_check: public API against {against}: no unlisted breaking change{listed}")
        return 0
    print(
        f"api_check: {len(missing)} breaking change(s) to the public API since {against} that CHANGELOG.md "
        "does not list under '## [Unreleased]' / '### Breaking':",
        file=sys.stderr,
    )
    for breakage in missing:
        explained = _ANSI.sub("", breakage.explain(style=griffe.ExplanationStyle.ONE_LINE))
        print(f"  {public_path(breakage)}: {explained}", file=sys.stderr)
    print(
        "Restore compatibility, or list each one there by its name (e.g. `AppointmentsClient.book`).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
