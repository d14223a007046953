"""HTML tables for Jupyter: the one way a value becomes a table cell, used by ``Rows`` (a table of
rows) and by every model's ``_repr_html_`` (a table of its fields; the generated models call
:func:`model_table` from the method ``templates/model.py.jinja`` gives them).

Standard library only, and imported by nobody at import time: the models import it in
``_repr_html_``, when Jupyter first shows one. Every text is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

__all__ = ["cell", "model_table", "rows_table"]


def _is_attrs(value: object) -> bool:
    return hasattr(type(value), "__attrs_attrs__")


def _fields(value: object) -> list[str]:
    """An attrs instance's field names, in declaration order, without ``additional_properties``."""
    return [f.name for f in type(value).__attrs_attrs__ if f.name != "additional_properties"]  # type: ignore[attr-defined]


def text(value: Any) -> str:
    """``value`` as the plain text of a cell: nothing for None or UNSET, an aware date-time with
    its zone (``2026-06-22 08:00 CEST``; seconds only when not zero), an enum as its value."""
    if value is None or type(value).__name__ == "Unset":  # the generated UNSET, not imported here
        return ""
    if isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S" if value.second or value.microsecond else "%Y-%m-%d %H:%M")
        zone = value.tzname()
        return f"{shown} {zone}" if zone else shown
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dict | list):  # JSON the server sent (additional properties)
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def cell(value: Any) -> str:
    """``value`` as the escaped content of a table cell: a model as a nested table of its fields,
    a list of models as a nested table with a row each, anything else as :func:`text`."""
    if _is_attrs(value):
        return model_table(value)
    if isinstance(value, list | tuple) and value and all(_is_attrs(item) for item in value):
        kinds = {type(item) for item in value}
        if len(kinds) == 1:
            return rows_table(_fields(value[0]), ({n: getattr(i, n) for n in _fields(i)} for i in value))
        return "".join(model_table(item) for item in value)
    if isinstance(value, list | tuple):
        return html.escape(", ".join(text(item) for item in value))
    return html.escape(text(value))


def rows_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A table with a header of ``columns`` and a row per mapping (a missing key: an empty cell)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def model_table(model: object, *, exclude: Iterable[str] = (), extra: Mapping[str, Any] | None = None) -> str:
    """An attrs model as a two-column table, one row per field in declaration order (``exclude``
    left out), then ``extra``, then the keys the server sent that the spec does not name
    (``additional_properties``), as sent. The caption is the class name."""
    left_out = set(exclude)
    fields: dict[str, Any] = {n: getattr(model, n) for n in _fields(model) if n not in left_out}
    fields.update(extra or {})
    fields.update(getattr(model, "additional_properties", None) or {})
    body = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{cell(value)}</td></tr>" for name, value in fields.items()
    )
    return f"<table><caption>{html.escape(type(model).__name__)}</caption><tbody>{body}</tbody></table>"
