"""Date-times compare by instant, never by wall clock (issue: booking safety, part 1).

Python compares two datetimes that share a tzinfo by their local fields and ignores ``fold``, so
``01:30-04:00`` and ``01:30-05:00`` in America/New_York (an hour apart) compare equal. API values
(ZonedDateTime) and every comparison the client makes must not.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfectgym_appointments_client import Booking, BookingStatus, parse_zoned_datetime
from perfectgym_appointments_client._arguments import check_slot, start_filter
from perfectgym_appointments_client._generated.models import AppointmentStatus, ParticipantStatus, Slot
from perfectgym_appointments_client._operations import merge_slots as _merge_slots
from perfectgym_appointments_client._zoned import format_zoned_datetime, instant

ZONES = [ZoneInfo(z) for z in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata")]
UTC = dt.UTC


def wire_of(moment: dt.datetime, zone: ZoneInfo) -> str:
    """How the API writes an instant in a zone: wall time, that moment's offset, the zone id."""
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{sign}{minutes // 60:02d}:{minutes % 60:02d}[{zone.key}]"


# Instants around every DST change of these zones in a few years, and anywhere else.
moments = st.one_of(
    st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
    st.sampled_from(
        [
            dt.datetime(2022, 11, 6, 5, 30, tzinfo=UTC),  # New York 01:30 EDT
            dt.datetime(2022, 11, 6, 6, 30, tzinfo=UTC),  # New York 01:30 EST
            dt.datetime(2022, 10, 30, 0, 30, tzinfo=UTC),  # Berlin 02:30 CEST
            dt.datetime(2022, 10, 30, 1, 30, tzinfo=UTC),  # Berlin 02:30 CET
            dt.datetime(2023, 4, 1, 14, 45, tzinfo=UTC),  # Lord Howe 01:45 (+11:00), first of two
            dt.datetime(2023, 4, 1, 15, 15, tzinfo=UTC),  # Lord Howe 01:45 (+10:30), second
        ]
    ),
)


@given(a=moments, b=moments, zone=st.sampled_from(ZONES))
def test_parsed_values_compare_as_their_instants(a: dt.datetime, b: dt.datetime, zone: ZoneInfo) -> None:
    x, y = parse_zoned_datetime(wire_of(a, zone)), parse_zoned_datetime(wire_of(b, zone))
    assert (x == y) == (a == b)
    assert (x != y) == (a != b)
    assert (x < y) == (a < b)
    assert (x <= y) == (a <= b)
    assert (x > y) == (a > b)
    assert (x >= y) == (a >= b)
    assert x - y == a - b
    if x == y:
        assert hash(x) == hash(y)
    # against plain aware datetimes too, either side
    assert x == a
    assert a == x
    assert hash(x) == hash(a)
    assert (a < y) == (a < b)
    assert sorted([y, x]) == sorted([x, y], key=instant)
    # and the wire form still round-trips byte for byte
    assert format_zoned_datetime(x) == wire_of(a, zone)


def test_the_autumn_change_in_new_york() -> None:
    first = parse_zoned_datetime("2022-11-06T01:30:00.000-04:00[America/New_York]")
    second = parse_zoned_datetime("2022-11-06T01:30:00.000-05:00[America/New_York]")
    assert first != second
    assert first < second
    assert second - first == dt.timedelta(hours=1)
    assert len({first, second}) == 2
    assert format_zoned_datetime(second) == "2022-11-06T01:30:00.000-05:00[America/New_York]"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # 60 minutes across the autumn change: the wall clock goes 01:30 -> 01:30
        ("2022-11-06T01:30:00.000-04:00[America/New_York]", "2022-11-06T01:30:00.000-05:00[America/New_York]"),
        # 60 minutes across the spring change: 01:30 -> 03:30
        ("2022-03-13T01:30:00.000-05:00[America/New_York]", "2022-03-13T03:30:00.000-04:00[America/New_York]"),
        ("2022-10-30T02:30:00.000+02:00[Europe/Berlin]", "2022-10-30T02:00:00.000+01:00[Europe/Berlin]"),
        # Lord Howe moves by 30 minutes
        ("2023-04-02T01:45:00.000+11:00[Australia/Lord_Howe]", "2023-04-02T01:45:00.000+10:30[Australia/Lord_Howe]"),
    ],
)  # fmt: skip
def test_a_slot_across_a_dst_change_is_accepted(start: str, end: str) -> None:
    slot = Slot(parse_zoned_datetime(start), parse_zoned_datetime(end))
    checked_start, checked_end = check_slot(slot)
    assert instant(checked_end) > instant(checked_start)


def test_a_slot_that_ends_before_it_starts_by_instant_is_refused() -> None:
    start = parse_zoned_datetime("2022-11-06T01:30:00.000-05:00[America/New_York]")
    end = parse_zoned_datetime("2022-11-06T01:45:00.000-04:00[America/New_York]")  # wall clock later
    with pytest.raises(ValueError, match="before it starts"):
        check_slot(Slot(start, end))


def test_merging_orders_and_dedupes_by_instant() -> None:
    edt = "2022-11-06T01:30:00.000-04:00[America/New_York]"
    est = "2022-11-06T01:30:00.000-05:00[America/New_York]"
    later_est = "2022-11-06T01:15:00.000-05:00[America/New_York]"  # after 01:30 EDT, earlier wall time
    slots = [
        Slot(
            parse_zoned_datetime(est), parse_zoned_datetime("2022-11-06T02:30:00.000-05:00[America/New_York]")
        ),
        Slot(parse_zoned_datetime(later_est), parse_zoned_datetime(est)),
        Slot(parse_zoned_datetime(edt), parse_zoned_datetime(est)),
        Slot(parse_zoned_datetime(edt), parse_zoned_datetime(est)),  # a window edge repeats it
    ]
    merged = _merge_slots(slots)
    assert [format_zoned_datetime(s.start_date_time) for s in merged] == [edt, later_est, est]


def test_filters_bound_the_instant_or_the_studio_wall_clock() -> None:
    edt = parse_zoned_datetime("2022-11-06T01:30:00.000-04:00[America/New_York]")
    est = parse_zoned_datetime("2022-11-06T01:30:00.000-05:00[America/New_York]")
    after_first = start_filter(edt + dt.timedelta(minutes=1), None)
    assert not after_first(edt)
    assert after_first(est)  # an hour later, same wall time
    by_wall_clock = start_filter(dt.time(1, 0), dt.time(2, 0))
    assert by_wall_clock(edt)
    assert by_wall_clock(est)


def test_bookings_compare_and_hash_by_instant() -> None:
    def booking(start: str) -> Booking:
        value = parse_zoned_datetime(start)
        return Booking(
            booking_id=1,
            booking_status=BookingStatus.BOOKED,
            start_date_time=value,
            end_date_time=parse_zoned_datetime("2022-11-06T07:30:00.000Z"),
            appointment_status=AppointmentStatus.PLANNED,
            participant_status=ParticipantStatus.PARTICIPATING,
        )

    first = booking("2022-11-06T01:30:00.000-04:00[America/New_York]")
    second = booking("2022-11-06T01:30:00.000-05:00[America/New_York]")
    same_as_first = booking("2022-11-06T05:30:00.000Z")
    assert first != second
    assert first == same_as_first
    assert hash(first) == hash(same_as_first)
