"""Tables and charts for people: ``to_rows`` flattens models into dicts, which render as an HTML
table in Jupyter without pandas; ``to_dataframe`` makes them a pandas or polars DataFrame (typed
columns, also for an empty list); ``slots_chart`` draws free slots per day and instructor as an SVG
bar chart (no plotting library). Every surface names an instructor by one rule
(:func:`~._models.instructor_name`)."""

from __future__ import annotations

import html
import importlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ._exceptions import ConfigurationError
from ._generated.types import Unset
from ._html import rows_table
from ._models import BookableAppointment, Booking, Instructor, Slot, instructor_name
from ._zoned import instant

__all__ = ["Rows", "SlotsChart", "slots_chart", "slots_per_day_and_instructor", "to_dataframe", "to_rows"]


class Rows(list[dict[str, Any]]):
    """A list of flat dicts that Jupyter shows as a table."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>no rows</em></p>"
        return rows_table(list(dict.fromkeys(key for row in self for key in row)), self)


# The row of each kind of model: its columns, in order, and what their values are. to_rows writes
# exactly these keys, and to_dataframe types a frame's columns by them, so that an empty list keeps
# its columns and their types. (Booking.to_row writes the booking's; a test holds the two together.)
_Type = Literal["datetime", "date", "int", "str"]
_COLUMNS: dict[type[Any], tuple[tuple[str, _Type], ...]] = {
    Booking: (
        ("booking_id", "int"),
        ("customer_id", "int"),
        ("title", "str"),
        ("start", "datetime"),
        ("end", "datetime"),
        ("booking_status", "str"),
        ("appointment_status", "str"),
        ("participant_status", "str"),
        ("instructors", "str"),
    ),
    Slot: (("day", "date"), ("start", "datetime"), ("end", "datetime"), ("instructors", "str")),
    BookableAppointment: (("id", "int"), ("title", "str"), ("category", "str"), ("duration", "int")),
    Instructor: (("id", "int"), ("name", "str")),
}


def _kind(item: object) -> type[Any]:
    for model in _COLUMNS:
        if isinstance(item, model):
            return model
    raise _not_a_model(item)


def _not_a_model(item: object) -> TypeError:
    kinds = ", ".join(m.__name__ for m in _COLUMNS)
    return TypeError(f"cannot show a {type(item).__name__}: rows are made of {kinds}")


def to_rows(items: Iterable[BookableAppointment | Slot | Booking | Instructor]) -> Rows:
    """One flat dict per model (date-times stay aware ``datetime``s).

    The columns per kind: a slot's ``day`` (its date in the studio's zone), ``start``, ``end``,
    ``instructors``; a booking's :meth:`Booking.to_row`; an appointment's ``id``, ``title``,
    ``category``, ``duration``; an instructor's ``id``, ``name``. Instructors are named by their
    public name when the API gives one, else by first and last name.
    """
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
                    "instructors": ", ".join(instructor_name(i) for i in item.instructors or []),
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
            rows.append({"id": item.id, "name": instructor_name(item)})
        else:
            raise _not_a_model(item)
    return rows


def to_dataframe(
    items: Iterable[BookableAppointment | Slot | Booking | Instructor],
    *,
    kind: type[BookableAppointment | Slot | Booking | Instructor] | None = None,
    library: Literal["pandas", "polars"] = "pandas",
) -> Any:
    """Slots, bookings, bookable appointments or instructors as a DataFrame, one row per model.

    The columns are those of :func:`to_rows` for the kind of model, typed: ``start`` and ``end``
    timezone-aware (in the studio's zone, ``Europe/Berlin``, when every value names the same one;
    in UTC otherwise), ids and ``duration`` integers (missing ones null), a slot's ``day`` a date,
    the rest strings. An empty list gives an empty frame with the same columns and types, which
    needs ``kind`` (``Slot``, ``Booking``, ``BookableAppointment``, ``Instructor``): a list of
    models says its kind, an empty one cannot. One kind per frame.

    ``library`` is ``"pandas"`` (a ``pandas.DataFrame``) or ``"polars"`` (a ``polars.DataFrame``),
    imported on this first call: ``pip install 'perfectgym-appointments-client[pandas]'`` (or
    ``[polars]``); without it this raises :class:`ConfigurationError` saying so.
    """
    if library not in ("pandas", "polars"):
        raise ValueError(f"to_dataframe: library must be 'pandas' or 'polars', not {library!r}")
    models = list(items)
    if kind is not None and kind not in _COLUMNS:
        raise TypeError(
            f"to_dataframe: kind must be one of {', '.join(m.__name__ for m in _COLUMNS)}, not {kind!r}"
        )
    found = {_kind(item) for item in models}
    if len(found) > 1:
        names = ", ".join(sorted(m.__name__ for m in found))
        raise TypeError(f"to_dataframe: one kind of model per frame, got {names}")
    if kind is None:
        if not found:
            raise ValueError(
                "to_dataframe: an empty list has no kind to take its columns from: pass kind= "
                "(Slot, Booking, BookableAppointment or Instructor)"
            )
        kind = found.pop()
    elif found and found != {kind}:
        raise TypeError(f"to_dataframe: kind={kind.__name__} but the items are {found.pop().__name__}s")
    module = _import(library)
    columns = _COLUMNS[kind]
    rows = to_rows(models)
    values = {name: [row[name] for row in rows] for name, _ in columns}
    if library == "pandas":
        return module.DataFrame(
            {name: _pandas_column(module, values[name], type_) for name, type_ in columns}
        )
    return module.DataFrame([_polars_column(module, name, values[name], type_) for name, type_ in columns])


def _import(library: str) -> Any:
    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise ConfigurationError(
            f"to_dataframe(library={library!r}) needs {library}: "
            f"pip install 'perfectgym-appointments-client[{library}]'"
        ) from exc


def _zone_of(values: list[datetime]) -> str:
    """The IANA zone every value names, or UTC when they name several or only offsets."""
    keys = {getattr(v.tzinfo, "key", None) for v in values}
    key = keys.pop() if len(keys) == 1 else None
    return key if isinstance(key, str) else "UTC"


def _pandas_column(pd: Any, values: list[Any], type_: _Type) -> Any:
    if type_ == "datetime":
        # Through UTC: the instants stay exact across a DST change, whatever the zones.
        return pd.Series(pd.to_datetime(values, utc=True).as_unit("us").tz_convert(_zone_of(values)))
    if type_ == "int":
        return pd.Series(pd.array(values, dtype="Int64"))
    if type_ == "str":
        return pd.Series(values, dtype=str)
    return pd.Series(values, dtype=object)  # dates: datetime.date values, as pandas keeps them


def _polars_column(pl: Any, name: str, values: list[Any], type_: _Type) -> Any:
    if type_ == "datetime":
        utc = [v.astimezone(UTC) for v in values]
        return pl.Series(name, utc, dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone(_zone_of(values))
    dtype = {"int": pl.Int64, "str": pl.String, "date": pl.Date}[type_]
    return pl.Series(name, values, dtype=dtype)


def slots_per_day_and_instructor(slots: Iterable[Slot]) -> Rows:
    """How many free slots each instructor has per day: one row per day, one column per instructor.

    Days are the studio's: each slot's date in its own zone (the API's ``[Europe/Berlin]``).
    """
    counts, _, _ = _count(slots)
    days = sorted({day for day, _ in counts})
    names = sorted({name for _, name in counts})
    return Rows({"day": _day_label(day), **{name: counts[(day, name)] for name in names}} for day in days)


# Weekday and month names spelt out here, not by strftime: the output must not depend on the locale.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NO_INSTRUCTOR = "(none)"


def _day_label(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.isoformat()}"


def _count(slots: Iterable[Slot]) -> tuple[Counter[tuple[date, str]], list[tzinfo | None], int]:
    """Slots per (studio day, instructor name), the zones the slots are in, and how many slots."""
    counts: Counter[tuple[date, str]] = Counter()
    zones: list[tzinfo | None] = []
    n_slots = 0
    # By instant (ZonedDateTime's own order, made explicit): wall clocks repeat across a DST change.
    for slot in sorted(slots, key=lambda s: instant(s.start_date_time)):
        n_slots += 1
        start = slot.start_date_time
        day = start.date()  # the wall-clock date in the slot's own zone: the studio's day
        if start.tzinfo not in zones:
            zones.append(start.tzinfo)
        instructors: list[Instructor | None] = [*slot.instructors] if slot.instructors else [None]
        for instructor in instructors:
            counts[(day, instructor_name(instructor) if instructor else _NO_INSTRUCTOR)] += 1
    return counts, zones, n_slots


# Tableau 10: ten hues that stay distinct on white (more instructors: hues spread round the wheel).
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Helvetica, Arial, sans-serif"
# Characters XML 1.0 forbids: one of them in a name would make the whole SVG unreadable.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_PLOT_WIDTH = 760  # the plot area aimed at, in px (the legend comes on top)
_MIN_BAR = 5  # narrower bars side by side are unreadable: they are stacked instead
_LABEL_WIDTH = 52  # a day's label ("Mon" over "30 Nov") needs about this many pixels
_LEGEND_CHARS = 28  # longer names are shortened in the legend; the full name is its tooltip


def _text(value: str) -> str:
    """Text for SVG content and attributes: XML-safe and escaped."""
    return html.escape(_NOT_XML.sub("\ufffd", value), quote=True)


def _colour(index: int) -> str:
    if index < len(_PALETTE):
        return _PALETTE[index]
    return f"hsl({(index * 137) % 360}, 55%, 50%)"  # golden-angle hues past the palette


def _text_width(value: str, size: float) -> float:
    """A generous estimate: the SVG is drawn without measuring fonts."""
    return len(value) * size * 0.62


def _shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def _zone_name(zone: tzinfo | None) -> str:
    if isinstance(zone, ZoneInfo):
        return zone.key
    return (zone.tzname(None) if zone else None) or "UTC"


def _nice_step(top: int, ticks: int = 5) -> int:
    """An axis step of 1, 2 or 5 times a power of ten giving about ``ticks`` ticks up to ``top``."""
    raw = max(top, 1) / ticks
    power: int = 10 ** max(0, math.floor(math.log10(raw)))
    return next(factor * power for factor in (1, 2, 5, 10) if factor * power >= raw)


class SlotsChart:
    """Free slots per day and instructor as a bar chart: Jupyter shows it as SVG (``_repr_svg_``).

    ``days`` runs from the first slot's day to the last one's (a day without slots, say a closed
    Sunday, stays on the axis, empty), ``instructors`` is sorted by name and ``counts`` maps
    ``(day, instructor)`` to the number of slots. The SVG is the same, byte for byte, for the same
    slots: no random ids, no clock, no locale.
    """

    def __init__(
        self,
        counts: Counter[tuple[date, str]],
        zone: str | None,
        *,
        slots: int,
        title: str | None = None,
        stacked: bool | None = None,
    ) -> None:
        self.counts: dict[tuple[date, str], int] = dict(counts)
        self.instructors: tuple[str, ...] = tuple(sorted({name for _, name in counts}))
        present = sorted({day for day, _ in counts})
        self.days: tuple[date, ...] = (
            tuple(present[0] + timedelta(days=n) for n in range((present[-1] - present[0]).days + 1))
            if present
            else ()
        )
        self.zone = zone
        # Slots, each once (a slot two instructors can lead is one slot but a bar for each).
        self.slots = slots
        self.title = title
        if stacked is None:  # side by side while every bar can be _MIN_BAR px wide, stacked past that
            stacked = (
                bool(self.days) and _PLOT_WIDTH // (len(self.days) * (len(self.instructors) + 1)) < _MIN_BAR
            )
        self.stacked: bool = stacked

    def count(self, day: date, instructor: str) -> int:
        """Free slots of ``instructor`` on ``day`` (0 when none)."""
        return self.counts.get((day, instructor), 0)

    def __repr__(self) -> str:
        if not self.days:
            return "SlotsChart(no slots)"
        return (
            f"SlotsChart({len(self.days)} days {self.days[0].isoformat()}..{self.days[-1].isoformat()}, "
            f"{len(self.instructors)} instructors, zone={self.zone!r})"
        )

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def to_svg(self) -> str:
        """The chart as a standalone SVG document (write it to a ``.svg`` file as it is)."""
        heading = (
            f"{self.title}: free slots per day and instructor"
            if self.title
            else "Free slots per day and instructor"
        )
        if not self.days:
            return self._svg(
                math.ceil(max(420, 32 + _text_width(heading, 15))),
                84,
                heading,
                [
                    f'<text x="16" y="28" font-size="15" font-weight="600">{_text(heading)}</text>',
                    '<text x="16" y="60" font-size="13" fill="#555">no slots</text>',
                ],
            )

        n_days, n_names = len(self.days), len(self.instructors)
        # Bars as wide as fit _PLOT_WIDTH px of plot (up to 22 px, 28 stacked). A day is as wide as
        # its label when that still fits; past that, day labels are thinned out, never overlapped.
        if self.stacked:
            bar = max(6, min(28, _PLOT_WIDTH * 3 // 5 // n_days))
            group = bar + max(6, bar * 2 // 3)
        else:
            bar = max(3, min(22, _PLOT_WIDTH // (n_days * (n_names + 1))))
            group = n_names * bar + max(6, bar)
        if group < _LABEL_WIDTH and n_days * _LABEL_WIDTH <= 820:
            group = _LABEL_WIDTH
        group = max(group, 240 // n_days)  # a day or two still make a plot, not a sliver
        label_every = math.ceil(_LABEL_WIDTH / group)

        peak = max(
            (sum(self.count(d, n) for n in self.instructors) for d in self.days)
            if self.stacked
            else self.counts.values()
        )
        step = _nice_step(peak)
        axis_top = max(step, math.ceil(peak / step) * step)

        plot_w, plot_h = n_days * group, 260
        # Left: the rotated axis title, then the widest tick label; top: the title, the subtitle and
        # room for the numbers above the highest bar.
        left, top = math.ceil(36 + _text_width(str(axis_top), 11)), 70
        legend_x = left + plot_w + 28
        entries = [f"{_shorten(name, _LEGEND_CHARS)} ({self._total_of(name)})" for name in self.instructors]
        legend_w = 22 + max(_text_width(e, 12) for e in entries)
        width = math.ceil(max(legend_x + legend_w + 16, 32 + _text_width(heading, 15)))
        height = max(top + plot_h + 64, top + 20 * n_names + 16)

        def y(value: float) -> float:
            return top + plot_h - plot_h * value / axis_top

        first, last = self.days[0], self.days[-1]
        span = f"{_WEEKDAYS[first.weekday()]} {first.day} {_MONTHS[first.month - 1]} {first.year}"
        if last != first:
            span += f" \u2013 {_WEEKDAYS[last.weekday()]} {last.day} {_MONTHS[last.month - 1]} {last.year}"
        slots_word = "slot" if self.slots == 1 else "slots"
        subtitle = f"{self.slots} free {slots_word}, {span}"
        # Numbers above the bars, when they fit: above each bar, or above each day's stack.
        room = group - 4 if self.stacked else bar + 2
        value_labels = room >= 14 and _text_width(str(peak), 10) <= room
        parts = [
            f'<text x="16" y="24" font-size="15" font-weight="600">{_text(heading)}</text>',
            f'<text x="16" y="44" font-size="12" fill="#555">{_text(subtitle)}</text>',
        ]
        # Value axis: grid lines and tick labels, then its title, rotated.
        for value in range(0, axis_top + 1, step):
            ty = y(value)
            parts.append(
                f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" '
                f'stroke="{"#888" if value == 0 else "#e4e4e4"}" stroke-width="1"/>'
            )
            parts.append(
                f'<text x="{left - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end" fill="#444">'
                f"{value}</text>"
            )
        mid = top + plot_h / 2
        parts.append(
            f'<text x="16" y="{mid:.1f}" font-size="12" text-anchor="middle" fill="#333" '
            f'transform="rotate(-90 16 {mid:.1f})">'
            f"{'free slots, all instructors' if self.stacked else 'free slots per instructor'}</text>"
        )
        # Bars, day by day.
        for i, day in enumerate(self.days):
            x0 = left + i * group
            day_text = _day_label(day)
            if self.stacked:
                bx, base = x0 + (group - bar) / 2, 0
                for j, name in enumerate(self.instructors):
                    value = self.count(day, name)
                    if value:
                        parts.append(
                            self._bar(
                                bx, y(base + value), bar, y(base) - y(base + value), j, name, day_text, value
                            )
                        )
                        base += value
                if base and value_labels:
                    parts.append(self._value_label(bx + bar / 2, y(base), base))
            else:
                bx = x0 + (group - n_names * bar) / 2
                for j, name in enumerate(self.instructors):
                    value = self.count(day, name)
                    if value:
                        parts.append(
                            self._bar(
                                bx + j * bar, y(value), bar - 1, y(0) - y(value), j, name, day_text, value
                            )
                        )
                        if value_labels:
                            parts.append(self._value_label(bx + j * bar + (bar - 1) / 2, y(value), value))
            cx = x0 + group / 2
            parts.append(
                f'<line x1="{cx:.1f}" y1="{top + plot_h}" x2="{cx:.1f}" y2="{top + plot_h + 4}" stroke="#888"/>'
            )
            if i % label_every == 0:
                parts.append(
                    f'<text x="{cx:.1f}" y="{top + plot_h + 18}" font-size="12" text-anchor="middle" '
                    f'fill="#222">{_WEEKDAYS[day.weekday()]}</text>'
                )
                parts.append(
                    f'<text x="{cx:.1f}" y="{top + plot_h + 33}" font-size="11" text-anchor="middle" '
                    f'fill="#555">{day.day} {_MONTHS[day.month - 1]}</text>'
                )
        axis_title = f"day ({self.zone})" if self.zone else "day"
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 54}" font-size="12" '
            f'text-anchor="middle" fill="#333">{_text(axis_title)}</text>'
        )
        # Legend: one swatch per instructor, with their slots in the window.
        for j, (name, entry) in enumerate(zip(self.instructors, entries, strict=True)):
            ly = top + 20 * j
            parts.append(
                f'<g class="legend"><title>{_text(name)}</title>'
                f'<rect x="{legend_x}" y="{ly}" width="12" height="12" fill="{_colour(j)}"/>'
                f'<text x="{legend_x + 18}" y="{ly + 10}" font-size="12" fill="#222">{_text(entry)}</text></g>'
            )
        return self._svg(width, height, f"{heading}: {subtitle}", parts)

    def _total_of(self, name: str) -> int:
        return sum(value for (_, who), value in self.counts.items() if who == name)

    @staticmethod
    def _bar(x: float, y: float, w: float, h: float, index: int, name: str, day: str, value: int) -> str:
        tip = f"{name}, {day}: {value} free {'slot' if value == 1 else 'slots'}"
        return (
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'fill="{_colour(index)}"><title>{_text(tip)}</title></rect>'
        )

    @staticmethod
    def _value_label(x: float, y: float, value: int) -> str:
        return f'<text x="{x:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle" fill="#333">{value}</text>'

    @staticmethod
    def _svg(width: float, height: float, label: str, parts: list[str]) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_text(label)}" '
            f'font-family="{_text(_FONT)}">\n'
            f"<title>{_text(label)}</title>\n"
            f'<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(parts) + "\n</svg>\n"
        )


def slots_chart(
    slots: Iterable[Slot], *, title: str | None = None, stacked: bool | None = None
) -> SlotsChart:
    """Free slots per day and instructor, as a bar chart Jupyter shows inline (SVG).

    One group of bars per day (the studio's day: each slot's date in its own zone), one bar and
    colour per instructor, with a legend; ``stacked=True`` stacks them into one bar per day (the
    default does that only when there are too many bars to put side by side).
    A slot that several instructors can lead counts for each of them; one with no instructor
    counts as ``(none)``. ``title`` (an appointment's, say) heads the chart.
    """
    counts, zones, n_slots = _count(slots)
    zone: str | None = None
    if counts:
        names = {_zone_name(z) for z in zones}
        zone = names.pop() if len(names) == 1 else None
    return SlotsChart(counts, zone, slots=n_slots, title=title, stacked=stacked)


def _plain(value: Any) -> Any:
    return None if isinstance(value, Unset) else value
