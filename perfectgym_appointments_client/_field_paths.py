"""Where in an answer a parse error happened: ``[3].startDateTime``, ``result[0].id``.

The generated models raise ``KeyError(field)`` for a missing required field and ``TypeError`` or
``ValueError`` whose message starts with the field (``startDateTime: not a date-time ...``). A
list that builds its items puts the item's place in front
(templates/property_templates/list_property.py.jinja), so the facade's ResponseValidationError
names the whole path, not just a field name that every item has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FIELD_PATH", "at_failing_item", "at_item"]

_STEP = r"(?:[A-Za-z_][A-Za-z0-9_]*|\[\d+\])"
FIELD_PATH = re.compile(rf"{_STEP}(?:\.?{_STEP})*")


def at_item(exc: Exception, where: str) -> Exception:
    """``exc``, raised while building the list item at ``where``, with its path made whole."""
    if isinstance(exc, KeyError):
        return KeyError(_join(where, str(exc.args[0])))
    head, sep, rest = str(exc).partition(": ")
    message = f"{_join(where, head)}: {rest}" if sep and FIELD_PATH.fullmatch(head) else f"{where}: {exc}"
    return ValueError(message) if isinstance(exc, ValueError) else TypeError(message)


def at_failing_item(
    exc: Exception, where: str, build: Callable[[Any], object], items: Iterable[Any]
) -> Exception:
    """The error of the first of ``items`` that ``build`` refuses, its path led by ``where[index]``.

    A list of objects is built in one comprehension, which does not say which item raised
    ``exc``: on that (rare) path the items are built again one by one until one fails.
    """
    for index, item in enumerate(items):
        try:
            build(item)
        except (TypeError, ValueError, KeyError) as again:
            return at_item(again, f"{where}[{index}]")
    return at_item(exc, f"{where}[?]")  # not again: a build that fails only once names no item


def _join(where: str, path: str) -> str:
    return f"{where}{path}" if path.startswith("[") else f"{where}.{path}"
