"""Java ``ZonedDateTime`` strings <-> tz-aware ``datetime``.

The API writes date-times the way Java's ``ZonedDateTime.toString()`` does:
``2022-06-22T08:00:00.000+02:00[Europe/Berlin]``. Plain ISO parsers reject the bracketed
zone id, and Java drops zero seconds (``08:00+02:00``) and may print up to nine fraction
digits. The generated models call :func:`parse_zoned_datetime` and :func:`format_zoned_datetime`
(see docs/generation.md), so every date-time a user sees is aware, and a value we received is
sent back byte for byte as the server wrote it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ZonedDateTime", "format_zoned_datetime", "parse_zoned_datetime", "require_aware"]

_PATTERN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\[(?P<zone>[^\[\]]+)\])?"
)
# Java prints fixed-offset regions as ``UTC+01:00`` / ``GMT`` / ``UT``; zoneinfo knows none of them.
_FIXED_REGION = re.compile(r"(?:UTC|GMT|UT)(?P<offset>[+-]\d{2}:\d{2}(?::\d{2})?)?")


class ZonedDateTime(datetime):
    """A tz-aware ``datetime`` that remembers the exact string the API sent.

    It behaves as a plain ``datetime`` (comparison, arithmetic, formatting); only
    :func:`format_zoned_datetime` looks at :attr:`wire`. Anything derived from it
    (``replace``, arithmetic, ``astimezone``) is a new value with no wire form.
    """

    __slots__ = ("_wire",)
    _wire: str | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args, **kwargs)
        self._wire = None
        return self

    @property
    def wire(self) -> str | None:
        """The string the server sent, or None for a value built or derived locally."""
        # datetime's C code builds some derived values (replace, arithmetic) without calling
        # __new__, so the slot may be unset.
        wire: str | None = getattr(self, "_wire", None)
        return wire

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # datetime's own reduce drops instance state; keep the wire form across copy/pickle.
        reduced = super().__reduce_ex__(protocol)
        assert isinstance(reduced, tuple)
        return (_rebuild, (reduced[1], self.wire))


def _rebuild(args: tuple[Any, ...], wire: str | None) -> ZonedDateTime:
    value = ZonedDateTime(*args)
    value._wire = wire
    return value


@lru_cache(maxsize=512)
def _offset(text: str) -> timedelta:
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    parts = [int(p) for p in text[1:].split(":")]
    seconds = parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)
    return timedelta(seconds=sign * seconds)


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        fixed = _FIXED_REGION.fullmatch(name)
        if fixed is None:
            raise
        return timezone(_offset(fixed["offset"])) if fixed["offset"] else UTC


def parse_zoned_datetime(value: object, field: str = "date-time") -> ZonedDateTime:
    """Parse an API date-time into an aware :class:`ZonedDateTime`.

    With a bracketed zone id the result's tzinfo is that ``ZoneInfo``; with only an offset
    (or ``Z``) it is a fixed ``timezone``. The offset fixes the instant: it picks the right
    side of a DST fold, and wins if it disagrees with the zone's rules.

    Raises ``ValueError`` (``TypeError`` for a non-string) naming ``field``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected a date-time string, got {type(value).__name__}")
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(f"{field}: not a date-time: {value!r}")
    fraction = match["fraction"] or ""
    year, month, day = match["date"].split("-")
    try:
        naive = datetime(
            int(year),
            int(month),
            int(day),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            int(fraction[:6].ljust(6, "0")) if fraction else 0,
        )
    except ValueError as exc:
        raise ValueError(f"{field}: not a date-time: {value!r} ({exc})") from None
    offset = _offset(match["offset"])
    if abs(offset) >= timedelta(hours=24):
        raise ValueError(f"{field}: offset out of range: {value!r}")
    zone_name = match["zone"]
    if zone_name is None:
        zone: tzinfo = UTC if not offset else timezone(offset)
    else:
        try:
            zone = _zone(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{field}: unknown time zone {zone_name!r} in {value!r}") from None
    aware = naive.replace(tzinfo=zone)
    if aware.utcoffset() != offset:
        aware = aware.replace(fold=1)
        if aware.utcoffset() != offset:
            # Not a local time of that zone with that offset: trust the instant the offset gives.
            aware = (naive - offset).replace(tzinfo=UTC).astimezone(zone)
    result = ZonedDateTime(
        aware.year,
        aware.month,
        aware.day,
        aware.hour,
        aware.minute,
        aware.second,
        aware.microsecond,
        tzinfo=zone,
        fold=aware.fold,
    )
    result._wire = value
    return result


def require_aware(value: datetime, name: str = "date-time") -> datetime:
    """Reject a naive datetime: the API needs an offset, and guessing one books the wrong hour."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}: naive datetime {value.isoformat()!r}; pass a timezone-aware datetime, "
            "e.g. datetime(..., tzinfo=ZoneInfo('Europe/Berlin'))"
        )
    return value


def format_zoned_datetime(value: datetime, field: str = "date-time") -> str:
    """Write a datetime in the API's ``ZonedDateTime`` form.

    A value parsed from the API is written exactly as it was received. Any other aware
    datetime is written with milliseconds (microseconds if it has them), its offset, and
    its zone id in brackets when the tzinfo is a named ``ZoneInfo``.
    """
    if isinstance(value, ZonedDateTime) and value.wire is not None:
        return value.wire
    require_aware(value, field)
    micro = value.microsecond
    text = value.isoformat(timespec="milliseconds" if micro % 1000 == 0 else "microseconds")
    key = getattr(value.tzinfo, "key", None)
    return f"{text}[{key}]" if key else text
