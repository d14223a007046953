"""ZonedDateTime at its edges: against naive datetimes and dates, subtracted from a plain datetime,
at the ends of the calendar, and the general parser (nanoseconds, offsets with seconds) refusing
and resolving what the fast path refuses and resolves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from perfectgym_appointments_client import parse_zoned_datetime
from perfectgym_appointments_client._zoned import instant

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
