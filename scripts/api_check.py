"""The guard on the public Python API: the package now against the last release, compared by
griffe; a breaking change fails unless CHANGELOG.md names it under ``### Breaking`` in
``## [Unreleased]``.

    python scripts/api_check.py                          # what ./scripts/test runs
    python scripts/api_check.py --against api/0.1.0.json # a given snapshot
    python scripts/api_check.py --against v0.1.0         # a git ref (a tag this clone holds)
    python scripts/api_check.py --snapshot v0.1.0 > api/0.1.0.json   # once per release

The release is the newest snapshot in ``api/`` (``api/X.Y.Z.json``, by version order): the public
API of that release as griffe's JSON (no docstrings, file paths relative to the repository),
written once from the release's tag and committed with it. The repository holds it, so the guard
compares the same thing in a fresh clone, a shallow CI clone without tags, or a checkout here.

A breakage is "named" when the Unreleased Breaking section mentions its public dotted path without
the package prefix (``AppointmentsClient.book``) or with it. Only what ``__all__`` exports counts:
griffe follows the package's ``__init__`` (its ``TYPE_CHECKING`` imports are the exports' aliases),
and changes inside private modules that no public name reaches are not breaking for callers.
Additions (a new name, a new optional parameter) are not breaking.

The HTTP API has its own diff (``scripts/generate.py --from``); this one guards the Python surface.
Exit status: 0 clean (or every breakage listed), 1 an unlisted breakage, 2 nothing to compare with
(no snapshot in ``api/``: a repository that lost it, or a release that did not write it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "perfectgym_appointments_client"
SNAPSHOTS = "api"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_VERSION = re.compile(r"\d+(?:\.\d+)*")


def last_snapshot(repo: Path) -> Path | None:
    """The newest ``api/X.Y.Z.json`` by version order, or None."""
    versions = [
        (tuple(int(n) for n in path.stem.split(".")), path)
        for path in (repo / SNAPSHOTS).glob("*.json")
        if _VERSION.fullmatch(path.stem)
    ]
    return max(versions)[1] if versions else None


def _portable(data: Any) -> None:
    """In place: docstrings dropped (the comparison reads none), file paths made relative to the
    release's root (griffe loads a ref in a temporary worktree)."""
    if isinstance(data, dict):
        if "kind" in data and "name" in data:
            if isinstance(data.get("docstring"), dict):
                del data["docstring"]
            filepath = data.get("filepath")
            if isinstance(filepath, str):
                parts = Path(filepath).parts
                if PACKAGE in parts:
                    data["filepath"] = Path(*parts[parts.index(PACKAGE) :]).as_posix()
        for value in data.values():
            _portable(value)
    elif isinstance(data, list):
        for value in data:
            _portable(value)


def snapshot(repo: Path, ref: str) -> str:
    """The public API of the package at git ``ref`` in ``repo``, as the JSON a snapshot holds."""
    # search_paths are relative to the release's worktree (an absolute one would load the new code).
    old = griffe.load_git(PACKAGE, ref=ref, repo=repo, search_paths=["."], resolve_aliases=True)
    data = json.loads(old.as_json(full=False))
    _portable(data)
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def load_snapshot(path: Path) -> griffe.Module:
    """A snapshot back as griffe's module, in a modules collection of its own (its aliases resolve
    there: an exported name's target in a private module)."""
    module = json.loads(path.read_text(encoding="utf-8"), object_hook=griffe.json_decoder)
    if not isinstance(module, griffe.Module) or module.path != PACKAGE:
        raise ValueError(f"{path}: not a snapshot of {PACKAGE} (write one with --snapshot REF)")
    collection = griffe.ModulesCollection()
    collection.set_member(module.path, module)
    # What griffe's loader sets on a module it loads; its decoder takes no collection.
    module._modules_collection = collection
    return module


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


def released(repo: Path, against: str) -> griffe.Object | griffe.Alias:
    """The release to compare with: a snapshot file (``api/0.1.0.json``) or a git ref (``v0.1.0``)."""
    path = Path(against) if Path(against).is_absolute() else repo / against
    if against.endswith(".json"):
        return load_snapshot(path)
    return griffe.load_git(PACKAGE, ref=against, repo=repo, search_paths=["."], resolve_aliases=True)


def check(repo: Path, against: str) -> tuple[list[griffe.Breakage], list[griffe.Breakage]]:
    """(every breakage, those CHANGELOG.md does not list) of the package in ``repo`` against ``against``
    (a snapshot file or a git ref)."""
    old = released(repo, against)
    # Not a path relative to the working directory (griffe's default): the package in ``repo``.
    new = griffe.load(PACKAGE, search_paths=[repo], try_relative_path=False, resolve_aliases=True)
    found = list(griffe.find_breaking_changes(old, new))
    listed = unreleased_breaking((repo / "CHANGELOG.md").read_text(encoding="utf-8"))
    return found, unlisted(found, listed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--against",
        help="the release to compare with: a snapshot (.json) or a git ref (default: the newest api/X.Y.Z.json)",
    )
    parser.add_argument(
        "--snapshot",
        metavar="REF",
        help="print the snapshot of the package at git REF (a release tag) and exit",
    )
    parser.add_argument("--repo", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repo: Path = args.repo.resolve()
    if args.snapshot:
        sys.stdout.write(snapshot(repo, args.snapshot))
        return 0
    against: str | None = args.against
    if against is None:
        newest = last_snapshot(repo)
        if newest is None:
            print(
                f"api_check: no snapshot of a release in {SNAPSHOTS}/ to compare the public API with "
                f"(write it from the release's tag: scripts/api_check.py --snapshot vX.Y.Z > {SNAPSHOTS}/X.Y.Z.json)",
                file=sys.stderr,
            )
            return 2
        against = newest.relative_to(repo).as_posix()
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
