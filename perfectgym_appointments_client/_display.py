"""Tables for people: ``to_rows`` flattens models into dicts (a ``pandas.DataFrame`` takes them),
and the result renders as an HTML table in Jupyter without pandas."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ._generated.types import Unset
from ._models import BookableAppointment, Booking, Instructor, Slot

__all__ = ["Rows", "slots_per_day_and_instructor", "to_rows"]


class Rows(list[dict[str, Any]]):
    """A list of flat dicts that Jupyter shows as a table."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>no rows</em></p>"
        columns = list(dict.fromkeys(key for row in self for key in row))
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
            for row in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or isinstance(value, Unset):
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z")
    return str(value)


def _instructor_name(instructor: Instructor) -> str:
    public = instructor.public_name
    return public if isinstance(public, str) and public else f"{instructor.first_name} {instructor.last_name}"


def to_rows(items: Iterable[BookableAppointment | Slot | Booking | Instructor]) -> Rows:
    """One flat dict per model (date-times stay aware ``datetime``s)."""
    rows = Rows()
    for item in items:
        if isinstance(item, Booking):
            rows.append(item.to_row())
        elif isinstance(item, Slot):
            rows.append(
                {
                    "day": item.start_date_time.date(),
                    "start": item.start_date_time,
                    "end": item.end_date_time,
                    "instructors": ", ".join(_instructor_name(i) for i in item.instructors or []),
                }
            )
        elif isinstance(item, BookableAppointment):
            rows.append(
                {
                    "id": item.id,
                    "title": _plain(item.title),
                    "category": _plain(item.category),
                    "duration": _plain(item.duration),
                }
            )
        elif isinstance(item, Instructor):
            rows.append({"id": item.id, "name": _instructor_name(item)})
        else:
            raise TypeError(f"to_rows: cannot show a {type(item).__name__}")
    return rows


def slots_per_day_and_instructor(slots: Iterable[Slot]) -> Rows:
    """How many free slots each instructor has per day: one row per day, one column per instructor."""
    counts: Counter[tuple[str, str]] = Counter()
    for slot in slots:
        day = slot.start_date_time.strftime("%a %Y-%m-%d")
        instructors: list[Instructor | None] = [*slot.instructors] if slot.instructors else [None]
        for instructor in instructors:
            counts[(day, _instructor_name(instructor) if instructor else "(none)")] += 1
    days = sorted({day for day, _ in counts}, key=lambda d: d[4:])
    names = sorted({name for _, name in counts})
    return Rows({"day": day, **{name: counts[(day, name)] for name in names}} for day in days)


def _plain(value: Any) -> Any:
    return None if isinstance(value, Unset) else value
