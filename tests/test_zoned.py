"""Java ZonedDateTime strings <-> aware datetimes (perfectgym_appointments_client._zoned)."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from perfectgym_appointments_client._zoned import (
    ZonedDateTime,
    _parse,
    _parse_any,
    format_zoned_datetime,
    instant,
    parse_zoned_datetime,
    require_aware,
)

ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "America/St_Johns",  # -03:30 / -02:30
        "Pacific/Chatham",  # +12:45 / +13:45
        "UTC",
    )
]


@pytest.mark.parametrize(
    ("text", "wall", "zone", "offset"),
    [
        ("2022-06-22T08:00:00.000+02:00[Europe/Berlin]", (2022, 6, 22, 8, 0, 0, 0), "Europe/Berlin", 120),
        ("2022-06-22T08:00+02:00[Europe/Berlin]", (2022, 6, 22, 8, 0, 0, 0), "Europe/Berlin", 120),
        ("2022-06-22T08:00:05+02:00[Europe/Berlin]", (2022, 6, 22, 8, 0, 5, 0), "Europe/Berlin", 120),
        ("2022-01-10T08:00:00.5+01:00[Europe/Berlin]", (2022, 1, 10, 8, 0, 0, 500000), "Europe/Berlin", 60),
        ("2022-06-22T08:00:00.123456789-04:00[America/New_York]", (2022, 6, 22, 8, 0, 0, 123456), "America/New_York", -240),
        ("2022-06-22T11:30:00.000+05:30[Asia/Kolkata]", (2022, 6, 22, 11, 30, 0, 0), "Asia/Kolkata", 330),
        ("2022-06-22T06:00:00Z[UTC]", (2022, 6, 22, 6, 0, 0, 0), "UTC", 0),
    ],
)  # fmt: skip
def test_parse_named_zones(text: str, wall: tuple[int, ...], zone: str, offset: int) -> None:
    value = parse_zoned_datetime(text)
    assert isinstance(value, datetime)
    assert value.tzinfo == ZoneInfo(zone)
    assert (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    ) == wall
    assert value.utcoffset() == timedelta(minutes=offset)
    assert format_zoned_datetime(value) == text


@pytest.mark.parametrize(
    ("text", "tz"),
    [
        ("2022-06-22T06:00:00Z", UTC),
        ("2022-06-22T06:00:00.000+00:00", UTC),
        ("2022-06-22T08:00:00+02:00", timezone(timedelta(hours=2))),
        ("2022-06-22T08:00:00+02:00[UTC+02:00]", timezone(timedelta(hours=2))),
        ("2022-06-22T06:00:00Z[GMT]", ZoneInfo("GMT")),
        ("2022-06-22T07:00:00+01:00[UT+01:00]", timezone(timedelta(hours=1))),
        ("1890-01-01T00:00:00+00:53:28[Europe/Berlin]", ZoneInfo("Europe/Berlin")),  # local mean time
    ],
)
def test_parse_offsets_and_fixed_regions(text: str, tz: object) -> None:
    value = parse_zoned_datetime(text)
    assert value.tzinfo == tz
    assert format_zoned_datetime(value) == text


def test_fold_is_chosen_by_the_offset() -> None:
    first = parse_zoned_datetime("2022-11-06T01:30:00-04:00[America/New_York]")
    second = parse_zoned_datetime("2022-11-06T01:30:00-05:00[America/New_York]")
    assert (first.fold, second.fold) == (0, 1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)


def test_offset_wins_when_it_disagrees_with_the_zone() -> None:
    # Not a Berlin local time with that offset: keep the instant, show it in Berlin time.
    value = parse_zoned_datetime("2022-06-22T08:00:00+00:00[Europe/Berlin]")
    assert value.astimezone(UTC) == datetime(2022, 6, 22, 8, 0, tzinfo=UTC)
    assert (value.hour, value.tzinfo) == (10, ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    "text",
    [
        "2022-06-22 08:00:00+02:00",
        "2022-06-22T08:00:00",  # no offset: ambiguous instant
        "2022-06-22T08:00:00+02:00[Europe/Berlin",
        "2022-13-22T08:00:00+02:00",
        "2022-06-22T25:00:00+02:00",
        "2022-06-22T08:00:00+25:00",
        "2022-06-22T08:00:00+02:00[Not/AZone]",
        "2022-06-22T08:00:00+02:00[Europe]",  # a folder of the tz database, not a zone
        "2022-06-22T08:00:00+02:00[../../etc/passwd]",
        "2022-06-22T08:00:00+02:00[Europe/Berlin]]",
        "2022-06-22T08:00:00+02:00[]",
        "",
    ],
)
def test_malformed_strings_raise_value_error_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match="^startDateTime: ") as info:
        parse_zoned_datetime(text, "startDateTime")
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("value", [None, 1655877600, ["2022-06-22T08:00Z"]])
def test_non_strings_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="^endDateTime: expected a date-time string"):
        parse_zoned_datetime(value, "endDateTime")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="startDateTime: naive datetime"):
        format_zoned_datetime(datetime(2022, 6, 22, 8, 0), "startDateTime")
    with pytest.raises(ValueError, match="naive"):
        require_aware(datetime(2022, 6, 22, 8, 0))
    with pytest.raises(TypeError):
        require_aware("2022-06-22")  # type: ignore[arg-type]


def test_local_values_are_written_with_zone_id_and_milliseconds() -> None:
    berlin = datetime(2022, 6, 22, 8, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert format_zoned_datetime(berlin) == "2022-06-22T08:00:00.000+02:00[Europe/Berlin]"
    precise = berlin.replace(microsecond=123456)
    assert format_zoned_datetime(precise) == "2022-06-22T08:00:00.123456+02:00[Europe/Berlin]"
    assert format_zoned_datetime(datetime(2022, 6, 22, 6, tzinfo=UTC)) == "2022-06-22T06:00:00.000+00:00"


def test_derived_values_forget_the_wire_form() -> None:
    value = parse_zoned_datetime("2022-06-22T08:00+02:00[Europe/Berlin]")
    assert value.wire == "2022-06-22T08:00+02:00[Europe/Berlin]"
    later = value + timedelta(hours=1)
    assert later.wire is None if isinstance(later, ZonedDateTime) else True
    assert format_zoned_datetime(later) == "2022-06-22T09:00:00.000+02:00[Europe/Berlin]"
    assert format_zoned_datetime(value.replace(minute=30)) == "2022-06-22T08:30:00.000+02:00[Europe/Berlin]"


def test_copy_and_pickle_keep_the_wire_form() -> None:
    value = parse_zoned_datetime("2022-06-22T08:00+02:00[Europe/Berlin]")
    for clone in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert clone == value
        assert clone.tzinfo == value.tzinfo
        assert format_zoned_datetime(clone) == "2022-06-22T08:00+02:00[Europe/Berlin]"


# --- at the edges: naive values, the calendar's ends, the general parser ----------------------

NEW_YORK = ZoneInfo("America/New_York")
# The autumn change in New York: 01:30 happens twice, an hour apart.
FIRST_0130 = "2022-11-06T01:30:00-04:00[America/New_York]"


def test_a_naive_datetime_names_no_instant() -> None:
    with pytest.raises(ValueError, match="naive datetime '2022-06-22T08:00:00' names no instant"):
        instant(datetime(2022, 6, 22, 8, 0))


def test_against_a_naive_datetime_or_a_date_it_behaves_as_a_datetime() -> None:
    value = parse_zoned_datetime("2022-06-22T08:00:00+02:00[Europe/Berlin]")
    naive = datetime(2022, 6, 22, 8, 0)
    assert value != naive
    assert not value == naive  # noqa: SIM201 - __eq__ itself, not __ne__
    for compare in (
        lambda: value < naive,
        lambda: value <= naive,
        lambda: value > naive,
        lambda: value >= naive,
        lambda: value < date(2022, 6, 22),
    ):
        with pytest.raises(TypeError):
            compare()


def test_the_orderings_use_the_instant_across_the_autumn_change() -> None:
    first = parse_zoned_datetime(FIRST_0130)
    # The same wall clock and tzinfo as `first`, an hour later: plain datetime says equal.
    second = datetime(2022, 11, 6, 1, 30, fold=1, tzinfo=NEW_YORK)
    assert second == first.replace(fold=1)  # datetime's own rules: wall clock only
    assert (first < second, first <= second, first > second, first >= second) == (True, True, False, False)
    assert first != second


def test_a_plain_datetime_minus_a_zoned_one_is_the_time_between_their_instants() -> None:
    first = parse_zoned_datetime(FIRST_0130)
    second = datetime(2022, 11, 6, 1, 30, fold=1, tzinfo=NEW_YORK)
    assert second - first == timedelta(hours=1)  # datetime's own subtraction would say 0
    assert first - second == timedelta(hours=-1)
    with pytest.raises(TypeError):
        datetime(2022, 11, 6, 1, 30) - first  # naive minus aware, as datetime refuses it


def test_values_at_the_edge_of_the_calendar_hash_and_equal_ones_hash_alike() -> None:
    # Half past midnight on 1 January of year 1 at +01:00 is before year 1 in UTC.
    early = parse_zoned_datetime("0001-01-01T00:30:00+01:00")
    same = parse_zoned_datetime("0001-01-01T00:00:00+00:30")
    assert early == same
    assert hash(early) == hash(same)
    assert len({early, same}) == 1
    late = parse_zoned_datetime("9999-12-31T23:30:00-01:00")  # after year 9999 in UTC
    assert hash(late) == hash(parse_zoned_datetime("9999-12-31T23:00:00-01:30"))
    assert hash(late) != hash(early)


@pytest.mark.parametrize(
    "text",
    [
        "2022-02-30T08:00:00.123456789+01:00",  # no such day
        "2022-02-28T08:00:00.1234567+01:00[Europe/Berlin",  # unclosed zone
    ],
)
def test_the_general_parser_refuses_what_is_no_date_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"^startDateTime: not a date-time: "):
        parse_zoned_datetime(text, "startDateTime")


@pytest.mark.parametrize("text", ["2022-06-22T08:00:00.123456789+24:00", "2022-06-22T08:00:00-24:00:00"])
def test_the_general_parser_refuses_an_offset_of_a_day_or_more(text: str) -> None:
    with pytest.raises(ValueError, match=r"^endDateTime: offset out of range: "):
        parse_zoned_datetime(text, "endDateTime")


def test_the_general_parser_trusts_the_offset_when_the_zone_disagrees() -> None:
    # Nanoseconds take the general parser; the instant is 08:00 UTC whatever the zone says.
    value = parse_zoned_datetime("2022-06-22T08:00:00.123456789+00:00[Europe/Berlin]")
    assert value.astimezone(UTC) == datetime(2022, 6, 22, 8, 0, 0, 123456, tzinfo=UTC)
    assert (value.hour, value.tzinfo) == (10, ZoneInfo("Europe/Berlin"))
    assert value.wire == "2022-06-22T08:00:00.123456789+00:00[Europe/Berlin]"  # sent back as received


# --- properties ------------------------------------------------------------------------------

aware = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(ZONES)
)


@given(aware)
@example(datetime(2022, 3, 27, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")))  # in the spring gap
@example(datetime(2022, 3, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")))
@example(datetime(2022, 10, 30, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")))  # autumn fold, first
@example(datetime(2022, 10, 30, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")))  # second
def test_round_trip_of_local_values(value: datetime) -> None:
    text = format_zoned_datetime(value)
    back = parse_zoned_datetime(text)
    assert back.tzinfo is value.tzinfo or back.tzinfo == value.tzinfo
    assert back.utcoffset() == value.utcoffset()
    assert back.timestamp() == value.timestamp()
    if back.tzinfo is not UTC:
        assert back.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert format_zoned_datetime(back) == text


def _java_style(value: datetime, fraction_digits: int) -> str:
    """Render like java.time does: seconds omitted when zero and no fraction, 3/6/9 digits."""
    wall = value.strftime("%Y-%m-%dT%H:%M")
    if value.second or value.microsecond or fraction_digits:
        wall += f":{value.second:02d}"
    if fraction_digits:
        wall += "." + f"{value.microsecond:06d}{'000'}"[:fraction_digits]
    offset = value.utcoffset()
    assert offset is not None
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hh, rem = divmod(abs(total), 3600)
    mm, ss = divmod(rem, 60)
    zone = f"{sign}{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")
    if zone == "+00:00":
        zone = "Z"
    return f"{wall}{zone}[{value.tzinfo}]"


@given(aware, st.sampled_from([0, 3, 6, 9]))
def test_wire_strings_round_trip_byte_for_byte(value: datetime, digits: int) -> None:
    if digits == 0:
        value = value.replace(microsecond=0)
    elif digits == 3:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    value = value.astimezone(value.tzinfo)  # a real instant, as a server would send (no gaps)
    text = _java_style(value, digits)
    parsed = parse_zoned_datetime(text)
    assert parsed.timestamp() == value.timestamp()
    assert parsed.tzinfo == value.tzinfo
    assert format_zoned_datetime(parsed) == text


@given(aware, st.sampled_from([0, 3, 6, 9]))
@example(datetime(2022, 3, 27, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")), 3)  # spring gap
@example(datetime(2022, 10, 30, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")), 3)  # fold
def test_fast_path_agrees_with_the_general_parser(value: datetime, digits: int) -> None:
    # parse_zoned_datetime reads the common form with datetime.fromisoformat (and caches it);
    # _parse_any reads every form the spec allows. Both must give the same value.
    text = _java_style(value, digits)
    _parse.cache_clear()
    fast, general = parse_zoned_datetime(text), _parse_any(text)
    assert (fast.replace(tzinfo=None), fast.fold, fast.tzinfo) == (
        general.replace(tzinfo=None),
        general.fold,
        general.tzinfo,
    )
    assert fast.utcoffset() == general.utcoffset()


def test_equal_strings_share_one_parsed_value() -> None:
    text = "2022-06-22T08:00:00.000+02:00[Europe/Berlin]"
    assert parse_zoned_datetime(text) is parse_zoned_datetime(text)
    assert parse_zoned_datetime(text).wire == text
