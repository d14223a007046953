"""Java ``ZonedDateTime`` strings <-> tz-aware ``datetime``.

The API writes date-times the way Java's ``ZonedDateTime.toString()`` does:
``2022-06-22T08:00:00.000+02:00[Europe/Berlin]``. Plain ISO parsers reject the bracketed
zone id, and Java drops zero seconds (``08:00+02:00``) and may print up to nine fraction
digits. The generated models call :func:`parse_zoned_datetime` and :func:`format_zoned_datetime`
(see docs/guides/regenerating.md), so every date-time a user sees is aware, and a value we received is
sent back byte for byte as the server wrote it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

__all__ = ["ZonedDateTime", "format_zoned_datetime", "instant", "parse_zoned_datetime", "require_aware"]

_EPOCH = datetime(1, 1, 1)


def instant(value: datetime) -> timedelta:
    """The point in time an aware datetime names, as a key that orders and compares exactly.

    Python compares two datetimes that share a tzinfo by their wall-clock fields and ignores
    ``fold``: ``01:30-04:00`` and ``01:30-05:00`` in America/New_York, an hour apart, compare
    equal. Every comparison of API date-times in this package goes through this key instead.
    A timedelta from year 1 has room for any datetime and offset, unlike a UTC datetime.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {value.isoformat()!r} names no instant")
    return (value.replace(tzinfo=None, fold=0) - _EPOCH) - offset


_PATTERN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\[(?P<zone>[^\[\]]+)\])?"
)
# The common case, read by datetime.fromisoformat: seconds optional, at most six fraction
# digits, offset Z or +HH:MM. Anything else the pattern allows goes the slow way.
_FAST = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})")
_ZONE_ID = re.compile(r"[^\[\]]+")
# Java prints fixed-offset regions as ``UTC+01:00`` / ``GMT`` / ``UT``; zoneinfo knows none of them.
_FIXED_REGION = re.compile(r"(?:UTC|GMT|UT)(?P<offset>[+-]\d{2}:\d{2}(?::\d{2})?)?")


class ZonedDateTime(datetime):
    """A tz-aware ``datetime`` that remembers the exact string the API sent.

    It behaves as a plain ``datetime`` (arithmetic with timedeltas, formatting), except that it
    compares, hashes and subtracts by instant (:func:`instant`), also against datetimes that
    share its tzinfo: two values an hour apart across a DST change never compare equal. Only
    :func:`format_zoned_datetime` looks at :attr:`wire`. Anything derived from it
    (``replace``, arithmetic, ``astimezone``) is a new value with no wire form.
    """

    # No __new__ of our own: a Python-level constructor would triple the cost of every parse.
    # The slot stays unset until parse_zoned_datetime fills it, and ``wire`` reads it with a
    # default.
    __slots__ = ("_instant", "_wire")
    _wire: str | None
    # instant(self), kept by parse_zoned_datetime (parsed once per distinct string): the
    # generated models order a slot's start and end by it (x-after) at the cost of two reads.
    _instant: timedelta

    @property
    def wire(self) -> str | None:
        """The string the server sent, or None for a value built or derived locally."""
        # datetime's C code builds some derived values (replace, arithmetic) without calling
        # __new__, so the slot may be unset.
        wire: str | None = getattr(self, "_wire", None)
        return wire

    # By instant: datetime's own operators compare wall clocks when both sides share a tzinfo.
    # A naive other side falls back to datetime's rules (== is False, < raises TypeError).
    def __eq__(self, other: object) -> bool:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) == instant(other)
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __lt__(self, other: date) -> bool:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) < instant(other)
        return super().__lt__(other)  # type: ignore[operator]  # datetime refuses a date: as it should

    def __le__(self, other: date) -> bool:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) <= instant(other)
        return super().__le__(other)  # type: ignore[operator]  # datetime refuses a date: as it should

    def __gt__(self, other: date) -> bool:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) > instant(other)
        return super().__gt__(other)  # type: ignore[operator]  # datetime refuses a date: as it should

    def __ge__(self, other: date) -> bool:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) >= instant(other)
        return super().__ge__(other)  # type: ignore[operator]  # datetime refuses a date: as it should

    def __hash__(self) -> int:
        # The hash of the same instant in UTC: a plain aware datetime hashes that way too, so a
        # ZonedDateTime and a datetime that are equal also hash equal (in one set, one dict key).
        key = instant(self)
        try:
            return hash((_EPOCH + key).replace(tzinfo=UTC))
        except OverflowError:  # year 1 or 9999 pushed past the calendar by the offset
            return hash(key)

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(self) - instant(other)
        return super().__sub__(other)

    def __rsub__(self, other: Any) -> Any:
        if isinstance(other, datetime) and other.utcoffset() is not None:
            return instant(other) - instant(self)
        return NotImplemented

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # datetime's own reduce drops instance state; keep the wire form across copy/pickle.
        reduced = super().__reduce_ex__(protocol)
        assert isinstance(reduced, tuple)
        return (_rebuild, (reduced[1], self.wire))


def _rebuild(args: tuple[Any, ...], wire: str | None) -> ZonedDateTime:
    value = ZonedDateTime(*args)
    value._wire = wire
    value._instant = instant(value)
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
    # Imported with the first zone, not with the package: zoneinfo loads sysconfig to find tzdata.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder: IsADirectoryError
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
    try:
        return _parse(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


# Answers repeat the same date-times over and over (every appointment's slots sit on the same
# grid; a booking echoes its slot), and parsing is most of the cost of reading a slot list.
# Values are immutable, so equal strings can share one parsed value.
@lru_cache(maxsize=4096)
def _parse(value: str) -> ZonedDateTime:
    base, bracket, rest = value.partition("[")
    zone_name = rest[:-1] if bracket else None
    if _FAST.fullmatch(base) and (
        zone_name is None or (rest.endswith("]") and _ZONE_ID.fullmatch(zone_name))
    ):
        # What Java writes (up to microseconds, offset in hours and minutes) is exactly what
        # fromisoformat reads, in C.
        try:
            with_offset = datetime.fromisoformat(base)
        except ValueError as exc:
            raise ValueError(f"not a date-time: {value!r} ({exc})") from None
        aware = with_offset
        if zone_name is not None:
            zone = _named_zone(zone_name, value)
            offset = with_offset.utcoffset()
            # Keep the wall time as written when the zone agrees with the offset (either side of
            # a fold, or a time in a spring gap written with its pre-gap offset, as Java does)...
            aware = with_offset.replace(tzinfo=zone)
            if aware.utcoffset() != offset:
                aware = aware.replace(fold=1)
                if aware.utcoffset() != offset:
                    # ...otherwise trust the instant the offset gives.
                    aware = with_offset.astimezone(zone)
        result = ZonedDateTime(
            aware.year, aware.month, aware.day, aware.hour, aware.minute, aware.second, aware.microsecond,
            tzinfo=aware.tzinfo, fold=aware.fold,
        )  # fmt: skip
    else:
        result = _parse_any(value)
    result._wire = value
    result._instant = instant(result)
    return result


def _named_zone(name: str, value: str) -> tzinfo:
    try:
        return _zone(name)
    except (KeyError, ValueError, OSError):  # KeyError: zoneinfo's ZoneInfoNotFoundError
        raise ValueError(f"unknown time zone {name!r} in {value!r}") from None


def _parse_any(value: str) -> ZonedDateTime:
    """Every form the API's pattern allows: nine fraction digits, offsets with seconds..."""
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(f"not a date-time: {value!r}")
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
        raise ValueError(f"not a date-time: {value!r} ({exc})") from None
    offset = _offset(match["offset"])
    if abs(offset) >= timedelta(hours=24):
        raise ValueError(f"offset out of range: {value!r}")
    zone_name = match["zone"]
    zone: tzinfo = (
        (UTC if not offset else timezone(offset)) if zone_name is None else _named_zone(zone_name, value)
    )
    aware = naive.replace(tzinfo=zone)
    if aware.utcoffset() != offset:
        aware = aware.replace(fold=1)
        if aware.utcoffset() != offset:
            # Not a local time of that zone with that offset: trust the instant the offset gives.
            aware = (naive - offset).replace(tzinfo=UTC).astimezone(zone)
    return ZonedDateTime(
        aware.year, aware.month, aware.day, aware.hour, aware.minute, aware.second, aware.microsecond,
        tzinfo=zone, fold=aware.fold,
    )  # fmt: skip


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
