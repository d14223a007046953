"""Names and values the API's spec (openapi.yaml) does not have, for the tests of what the client does
with one: derived from the spec, so that a spec that adds the name a test once picked (as
tests/test_bump.py's bumped spec adds ``roomName`` and ``WAITLIST_ONLY``) does not turn the test's
"unknown" into a known one.

``field_name("AppointmentBooking", like="roomName")`` is ``like`` when none of the schemas has a
property of that name, else ``like`` with the first number after it that none has (``roomName2``);
``enum_value`` likewise for the values of enum schemas (``WAITLIST_ONLY_2``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


@cache
def _schemas() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh)["components"]["schemas"])


def _schema(name_or_ref: str) -> dict[str, Any]:
    return dict(_schemas()[name_or_ref.rpartition("/")[2]])


def properties(schema: str) -> set[str]:
    """The property names of ``schema``, those it takes from ``allOf``/``anyOf``/``oneOf`` parts too."""

    def walk(node: dict[str, Any]) -> Iterator[str]:
        if "$ref" in node:
            yield from walk(_schema(node["$ref"]))
        yield from node.get("properties", {})
        for part in (*node.get("allOf", ()), *node.get("anyOf", ()), *node.get("oneOf", ())):
            yield from walk(part)

    return set(walk(_schema(schema)))


def _first_free(like: str, taken: set[str], separator: str) -> str:
    candidates = itertools.chain([like], (f"{like}{separator}{n}" for n in itertools.count(2)))
    return next(name for name in candidates if name not in taken)


def field_name(*schemas: str, like: str) -> str:
    """A property name none of ``schemas`` has."""
    return _first_free(like, set().union(*(properties(s) for s in schemas)), "")


def enum_value(*schemas: str, like: str) -> str:
    """A value none of the enum ``schemas`` lists."""
    return _first_free(like, {str(v) for s in schemas for v in _schema(s)["enum"]}, "_")
