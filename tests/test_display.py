"""What a notebook shows: every model as an HTML table of its fields (``_repr_html_``, escaped,
date-times with their zone), ``to_rows`` as a table, one name per instructor on every surface, and
``to_dataframe``: pandas or polars frames with typed, tz-aware columns, an empty list keeping them.

The HTML is parsed as XML: what a test reads from it is there, and it is well formed."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from datetime import UTC, timedelta
from typing import Any

import attrs
import pandas as pd
import pytest
from not_in_spec import field_name

from perfectgym_appointments_client import (
    BookableAppointment,
    Booking,
    ConfigurationError,
    Instructor,
    Slot,
    parse_zoned_datetime,
    slots_chart,
    to_dataframe,
    to_rows,
)
from perfectgym_appointments_client._display import _COLUMNS
from perfectgym_appointments_client._generated import models as generated
from perfectgym_appointments_client._generated.models import AppointmentBooking
from perfectgym_appointments_client._generated.types import UNSET, Unset

ANNA = Instructor(id=1, first_name="Anna", last_name="Richter", public_name="Coach Anna")
BEN = Instructor(id=2, first_name="Ben", last_name="Cole")  # no public name
EVIL = Instructor(id=3, first_name="<b>x</b>", last_name="y & z", public_name="<script>alert(1)</script>")
BOOKING = {
    "bookingId": 1300243050,
    "bookingStatus": "BOOKED",
    "startDateTime": "2026-12-01T08:00:00.000+01:00[Europe/Berlin]",
    "endDateTime": "2026-12-01T09:00:00+01:00[Europe/Berlin]",
    "appointmentStatus": "PLANNED",
    "participantStatus": "PARTICIPATING",
    "title": "Personal Training Express",
    "instructors": [
        {"id": 1, "firstName": "Anna", "lastName": "Richter", "publicName": "Coach Anna"},
        {"id": 2, "firstName": "Ben", "lastName": "Cole"},
    ],
}


def slot(start: str, *instructors: Instructor, minutes: int = 30) -> Slot:
    begin = parse_zoned_datetime(start)
    return Slot(
        start_date_time=begin,
        end_date_time=begin + timedelta(minutes=minutes),
        instructors=list(instructors) if instructors else None,
    )


def booking(customer_id: int | None = 1210005199, **changes: Any) -> Booking:
    return Booking.from_api(AppointmentBooking.from_dict({**BOOKING, **changes}), customer_id=customer_id)


def parse(html: str) -> ET.Element:
    return ET.fromstring(html)  # noqa: S314 - our own output, parsed to prove it is well formed


def text(element: ET.Element | None) -> str:
    assert element is not None
    return "".join(element.itertext())


def fields(html: str) -> dict[str, ET.Element]:
    """A model's table: field name -> its value cell (in order)."""
    table = parse(html)
    assert table.tag == "table"
    return {text(row.find("th")): row.find("td") for row in table.iterfind("tbody/tr")}  # type: ignore[misc]


def grid(table: ET.Element) -> tuple[list[str], list[list[str]]]:
    """A table with a header: its column names and the text of each row's cells."""
    head = [text(th) for th in table.iterfind("thead/tr/th")]
    return head, [[text(td) for td in row.iterfind("td")] for row in table.iterfind("tbody/tr")]


# -- _repr_html_ ----------------------------------------------------------------------------------


def test_every_generated_model_shows_as_a_table() -> None:
    models = [getattr(generated, name) for name in generated.__all__]
    with_fields = [m for m in models if attrs.has(m)]
    assert {m.__name__ for m in with_fields} >= {
        "BookableAppointment",
        "Slot",
        "Instructor",
        "AppointmentBooking",
    }
    assert [m.__name__ for m in with_fields if "_repr_html_" not in vars(m)] == []


def test_a_slot_shows_its_fields_with_zones_and_its_instructors_as_a_nested_table() -> None:
    shown = fields(slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]", ANNA, BEN)._repr_html_())
    assert list(shown) == ["start_date_time", "end_date_time", "instructors"]
    assert text(shown["start_date_time"]) == "2026-11-30 08:00 CET"
    assert text(shown["end_date_time"]) == "2026-11-30 08:30 CET"
    nested = shown["instructors"].find("table")
    assert nested is not None
    assert grid(nested) == (
        ["id", "first_name", "last_name", "public_name"],
        [["1", "Anna", "Richter", "Coach Anna"], ["2", "Ben", "Cole", ""]],
    )
    assert (
        parse(slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]")._repr_html_()).findtext("caption")
        == "Slot"
    )


def test_date_times_show_their_zone_and_seconds_only_when_there_are_some() -> None:
    summer = fields(slot("2026-06-22T08:00:30.000+02:00[Europe/Berlin]")._repr_html_())
    assert text(summer["start_date_time"]) == "2026-06-22 08:00:30 CEST"
    offset_only = fields(slot("2026-06-22T08:00:00+02:00")._repr_html_())
    assert text(offset_only["start_date_time"]) == "2026-06-22 08:00 UTC+02:00"
    no_one = fields(slot("2026-06-22T08:00:00+02:00")._repr_html_())
    assert text(no_one["instructors"]) == ""  # None: an empty cell


def test_models_escape_what_the_server_sent_and_show_keys_the_spec_does_not_name() -> None:
    unknown = field_name("BookableAppointment", like="roomName")
    appointment = BookableAppointment.from_dict(
        {"id": 7, "title": "Yoga & <b>Pilates</b>", unknown: {"name": "<i>Studio 2</i>"}}
    )
    html = appointment._repr_html_()
    assert "<b>" not in html
    assert "<i>" not in html
    shown = fields(html)
    assert list(shown) == ["id", "title", "duration", "category", "description", "img_url", unknown]
    assert text(shown["title"]) == "Yoga & <b>Pilates</b>"
    assert text(shown["duration"]) == ""  # missing: an empty cell
    assert text(shown[unknown]) == '{"name": "<i>Studio 2</i>"}'  # as sent
    evil = fields(EVIL._repr_html_())
    assert text(evil["public_name"]) == "<script>alert(1)</script>"
    assert "<script>" not in EVIL._repr_html_()


def test_a_booking_shows_its_fields_a_newer_specs_too_and_not_the_raw_model() -> None:
    shown = fields(booking()._repr_html_())
    assert parse(booking()._repr_html_()).findtext("caption") == "Booking"
    assert "raw" not in shown
    assert text(shown["booking_status"]) == "BOOKED"
    assert text(shown["start_date_time"]) == "2026-12-01 08:00 CET"
    assert text(shown["customer_id"]) == "1210005199"
    assert text(shown["already_existed"]) == "False"
    nested = shown["instructors"].find("table")
    assert nested is not None
    assert grid(nested)[1] == [["1", "Anna", "Richter", "Coach Anna"], ["2", "Ben", "Cole", ""]]
    # A field a newer spec adds (once regenerated) and a key beyond the spec are shown too.
    name = field_name("AppointmentBooking", "CustomerAppointmentBooking", like="roomName")
    attribute = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()  # room_name, as the generator names it
    newer = attrs.define(
        type("Newer", (AppointmentBooking,), {"__annotations__": {attribute: str | Unset}, attribute: UNSET})
    )
    raw = newer.from_dict({**BOOKING, "floor": 2})  # the parent's parser: "floor" is beyond the spec
    setattr(raw, attribute, "Studio <2>")
    shown = fields(Booking.from_api(raw)._repr_html_())
    assert text(shown[attribute]) == "Studio <2>"
    assert text(shown["floor"]) == "2"
    assert list(shown)[-2:] == [attribute, "floor"]


def test_rows_show_as_a_table_escaped_with_zones() -> None:
    rows = to_rows([slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]", ANNA, EVIL)])
    html = rows._repr_html_()
    assert "<script>" not in html
    assert grid(parse(html)) == (
        ["day", "start", "end", "instructors"],
        [
            [
                "2026-11-30",
                "2026-11-30 08:00 CET",
                "2026-11-30 08:30 CET",
                "Coach Anna, <script>alert(1)</script>",
            ]
        ],
    )
    assert to_rows([])._repr_html_() == "<p><em>no rows</em></p>"


# -- one name per instructor -----------------------------------------------------------------------


def test_every_surface_names_an_instructor_by_the_public_name_else_first_and_last() -> None:
    nameless = Instructor(id=4, first_name="Cleo", last_name="Dunn", public_name="")
    slots = [slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]", ANNA, BEN, nameless)]
    expected = "Coach Anna, Ben Cole, Cleo Dunn"
    assert to_rows(slots)[0]["instructors"] == expected
    assert slots_chart(slots).instructors == ("Ben Cole", "Cleo Dunn", "Coach Anna")
    with_nameless = {**BOOKING, "instructors": [*BOOKING["instructors"], nameless.to_dict()]}
    held = Booking.from_api(AppointmentBooking.from_dict(with_nameless))
    assert held.to_row()["instructors"] == expected
    assert to_rows([held])[0]["instructors"] == expected
    assert to_rows([ANNA, BEN, nameless]) == [
        {"id": 1, "name": "Coach Anna"},
        {"id": 2, "name": "Ben Cole"},
        {"id": 4, "name": "Cleo Dunn"},
    ]


# -- to_dataframe --------------------------------------------------------------------------------

LIBRARIES = ["pandas", "polars"]


def columns(frame: Any) -> list[str]:
    return [str(c) for c in frame.columns]


def dtypes(frame: Any) -> dict[str, str]:
    if isinstance(frame, pd.DataFrame):
        return {str(c): str(t) for c, t in frame.dtypes.items()}
    return {c: str(t) for c, t in frame.schema.items()}


def values(frame: Any, column: str) -> list[Any]:
    return list(frame[column].to_list())


def is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


PANDAS_STRINGS = str(pd.Series([], dtype=str).dtype)  # "str" from pandas 3 on, "object" before
PANDAS_SLOTS = {
    "day": "object",
    "start": "datetime64[us, {zone}]",
    "end": "datetime64[us, {zone}]",
    "instructors": PANDAS_STRINGS,
}
POLARS_SLOTS = {
    "day": "Date",
    "start": "Datetime(time_unit='us', time_zone='{zone}')",
    "end": "Datetime(time_unit='us', time_zone='{zone}')",
    "instructors": "String",
}


def expected_slot_types(library: str, zone: str) -> dict[str, str]:
    table = PANDAS_SLOTS if library == "pandas" else POLARS_SLOTS
    return {name: kind.format(zone=zone) for name, kind in table.items()}


@pytest.mark.parametrize("library", LIBRARIES)
def test_slots_give_a_frame_in_the_studios_zone_exact_across_a_dst_change(library: str) -> None:
    slots = [
        # 02:30 twice on 25 Oct 2026 in Berlin: CEST, then an hour later CET.
        slot("2026-10-25T02:30:00.000+02:00[Europe/Berlin]", ANNA),
        slot("2026-10-25T02:30:00.000+01:00[Europe/Berlin]", ANNA, BEN),
    ]
    frame = to_dataframe(slots, library=library)  # type: ignore[arg-type]
    assert columns(frame) == list(to_rows(slots)[0])
    assert dtypes(frame) == expected_slot_types(library, "Europe/Berlin")
    starts = values(frame, "start")
    assert [v.astimezone(UTC).isoformat() for v in starts] == [
        "2026-10-25T00:30:00+00:00",
        "2026-10-25T01:30:00+00:00",
    ]
    assert [v.strftime("%H:%M %Z") for v in starts] == ["02:30 CEST", "02:30 CET"]
    assert values(frame, "instructors") == ["Coach Anna", "Coach Anna, Ben Cole"]
    assert [str(d) for d in values(frame, "day")] == ["2026-10-25", "2026-10-25"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_date_times_of_several_zones_or_only_offsets_are_in_utc(library: str) -> None:
    mixed = [
        slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]"),
        slot("2026-11-30T08:00:00.000Z[Europe/London]"),
    ]
    frame = to_dataframe(mixed, library=library)  # type: ignore[arg-type]
    assert dtypes(frame) == expected_slot_types(library, "UTC")
    assert [v.isoformat() for v in values(frame, "start")] == [
        "2026-11-30T07:00:00+00:00",
        "2026-11-30T08:00:00+00:00",
    ]
    offsets = to_dataframe([slot("2026-11-30T08:00:00+01:00")], library=library)  # type: ignore[arg-type]
    assert dtypes(offsets) == expected_slot_types(library, "UTC")


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("kind", list(_COLUMNS), ids=lambda k: k.__name__)
def test_an_empty_list_keeps_the_columns_and_types_of_its_kind(library: str, kind: type[Any]) -> None:
    one = {
        Slot: slot("2026-11-30T08:00:00.000Z[UTC]", ANNA),
        Booking: booking(startDateTime="2026-12-01T08:00:00Z[UTC]", endDateTime="2026-12-01T09:00:00Z[UTC]"),
        BookableAppointment: BookableAppointment(id=7, title="Yoga", duration=60),
        Instructor: ANNA,
    }[kind]
    full = to_dataframe([one], library=library)  # type: ignore[arg-type]
    empty = to_dataframe([], kind=kind, library=library)  # type: ignore[arg-type]
    assert len(empty) == 0
    assert columns(empty) == columns(full) == list(to_rows([one])[0]) == [name for name, _ in _COLUMNS[kind]]
    assert dtypes(empty) == dtypes(full)  # in UTC: an empty list names no zone


def test_the_booking_columns_are_those_of_booking_to_row() -> None:
    assert list(booking().to_row()) == [name for name, _ in _COLUMNS[Booking]]


@pytest.mark.parametrize("library", LIBRARIES)
def test_bookings_and_appointments_keep_integer_ids_and_missing_values_as_nulls(library: str) -> None:
    frame = to_dataframe([booking(), booking(customer_id=None, bookingId=1300243051)], library=library)  # type: ignore[arg-type]
    types = dtypes(frame)
    assert types["booking_id"] == types["customer_id"] == "Int64"
    assert values(frame, "booking_id") == [1300243050, 1300243051]
    assert values(frame, "customer_id")[0] == 1210005199
    assert is_null(values(frame, "customer_id")[1])
    assert values(frame, "booking_status") == ["BOOKED", "BOOKED"]
    assert values(frame, "instructors") == ["Coach Anna, Ben Cole"] * 2
    assert "datetime" in types["start"].lower()
    assert "Europe/Berlin" in types["start"]
    appointments = to_dataframe(
        [BookableAppointment(id=7, title="Yoga", duration=60), BookableAppointment(id=8)],
        library=library,  # type: ignore[arg-type]
    )
    assert values(appointments, "id") == [7, 8]
    assert values(appointments, "duration")[0] == 60
    assert is_null(values(appointments, "duration")[1])
    assert is_null(values(appointments, "title")[1])


def test_to_dataframe_says_what_is_wrong() -> None:
    one = slot("2026-11-30T08:00:00.000+01:00[Europe/Berlin]")
    with pytest.raises(ValueError, match=r"empty list .* pass kind="):
        to_dataframe([])
    with pytest.raises(TypeError, match="one kind of model per frame, got Booking, Slot"):
        to_dataframe([one, booking()])
    with pytest.raises(TypeError, match="kind=Booking but the items are Slots"):
        to_dataframe([one], kind=Booking)
    with pytest.raises(TypeError, match="kind must be one of"):
        to_dataframe([], kind=int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot show a str"):
        to_dataframe(["slot"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="library must be 'pandas' or 'polars', not 'arrow'"):
        to_dataframe([one], library="arrow")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot show a str"):
        to_rows(["slot"])  # type: ignore[list-item]


@pytest.mark.parametrize("library", LIBRARIES)
def test_without_the_library_the_error_names_the_extra(library: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # import now raises ImportError
    with pytest.raises(
        ConfigurationError, match=rf"pip install 'perfectgym-appointments-client\[{library}\]'"
    ):
        to_dataframe([], kind=Slot, library=library)  # type: ignore[arg-type]


def test_neither_the_package_nor_a_model_on_show_imports_pandas_or_polars() -> None:
    code = textwrap.dedent(
        """
        import sys
        import perfectgym_appointments_client as p
        from perfectgym_appointments_client import Instructor
        anna = Instructor(id=1, first_name="Anna", last_name="Richter")
        assert "perfectgym_appointments_client._html" not in sys.modules  # until a model is shown
        assert "<td>Anna</td>" in anna._repr_html_()
        assert "<td>Anna Richter</td>" in p.to_rows([anna])._repr_html_()
        print(sorted(m for m in ("pandas", "polars", "numpy") if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
