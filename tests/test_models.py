"""Booking shows every field of the generated model it wraps, also ones a newer spec adds once
regenerated, and what the server sent beyond the spec; copies and pickles keep all of it.

The field beyond the spec is named from the spec (tests/not_in_spec.py): ``roomName`` while
AppointmentBooking has none of that name."""

from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import attrs
import pytest
from not_in_spec import field_name

from perfectgym_appointments_client import Booking, BookingStatus
from perfectgym_appointments_client._generated.models import AppointmentBooking
from perfectgym_appointments_client._generated.types import UNSET, Unset

UNKNOWN = field_name("AppointmentBooking", "CustomerAppointmentBooking", like="roomName")
ATTRIBUTE = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", UNKNOWN).lower()  # room_name, as the generator names it
MISSPELLED = ATTRIBUTE[:-3] + ATTRIBUTE[-2:]  # room_nme
ANSWER: dict[str, Any] = {
    "bookingId": 1300243050,
    "bookingStatus": "BOOKED",
    "startDateTime": "2026-12-01T08:00:00.000+01:00[Europe/Berlin]",
    "endDateTime": "2026-12-01T09:00:00+01:00[Europe/Berlin]",
    "appointmentStatus": "PLANNED",
    "participantStatus": "BOOKED",
    "title": "Personal Training Express",
    UNKNOWN: "Studio 2",  # not in the spec
}


# The generated model as a newer spec would make it: one more optional field.
NewerAppointmentBooking = attrs.define(
    type(
        "NewerAppointmentBooking",
        (AppointmentBooking,),
        {"__annotations__": {ATTRIBUTE: str | Unset}, ATTRIBUTE: UNSET},
    )
)


def test_fields_the_spec_does_not_name_are_in_additional_properties() -> None:
    booking = Booking.from_api(AppointmentBooking.from_dict(ANSWER), customer_id=1210005199)
    assert booking.additional_properties == {UNKNOWN: "Studio 2"}
    booking.additional_properties[UNKNOWN] = "changed"  # a copy: the booking stays as received
    assert booking.additional_properties == {UNKNOWN: "Studio 2"}
    assert booking.raw is not None
    assert booking.raw.to_dict()[UNKNOWN] == "Studio 2"
    assert "additional_properties" in dir(booking)
    assert {"booking_id", "title", "needs_confirmation"} <= set(dir(booking))


def test_a_booking_built_by_hand_has_no_extra_fields() -> None:
    raw = Booking.from_api(AppointmentBooking.from_dict(ANSWER))
    booking = attrs.evolve(raw, raw=None)
    assert booking.additional_properties == {}
    assert "additional_properties" not in dir(booking)
    with pytest.raises(AttributeError, match=f"'Booking' object has no attribute '{ATTRIBUTE}'"):
        _ = getattr(booking, ATTRIBUTE)


def test_a_field_a_newer_generated_model_adds_is_an_attribute_without_an_edit() -> None:
    raw = NewerAppointmentBooking.from_dict(ANSWER)  # the parent's parser: the new field stays unset
    assert getattr(Booking.from_api(raw), ATTRIBUTE) is None  # Unset reads as None, like the other fields
    setattr(raw, ATTRIBUTE, "Studio 2")
    booking = Booking.from_api(raw)
    assert getattr(booking, ATTRIBUTE) == "Studio 2"
    assert ATTRIBUTE in dir(booking)
    with pytest.raises(AttributeError, match=f"no attribute '{MISSPELLED}'"):
        _ = getattr(booking, MISSPELLED)


def test_copies_and_pickles_keep_every_field() -> None:
    booking = Booking.from_api(AppointmentBooking.from_dict(ANSWER), customer_id=1210005199)
    for twin in (copy.copy(booking), copy.deepcopy(booking), pickle.loads(pickle.dumps(booking))):
        assert twin == booking
        assert twin.customer_id == 1210005199
        assert twin.booking_status is BookingStatus.BOOKED
        assert twin.additional_properties == {UNKNOWN: "Studio 2"}
        assert twin.start_date_time.wire == ANSWER["startDateTime"]  # type: ignore[attr-defined]


def test_an_unfilled_booking_answers_attribute_errors_not_a_recursion() -> None:
    # What copy and pickle hold for a moment: the object before its fields are set.
    empty = object.__new__(Booking)
    assert getattr(empty, "title", "missing") == "missing"
    assert getattr(empty, ATTRIBUTE, "missing") == "missing"
    assert not hasattr(empty, "__html__")


# -- lists of objects: one loop (_from_dicts), the same objects as from_dict item by item -------------

SLOTS: list[dict[str, Any]] = [
    {
        "startDateTime": "2026-12-01T08:00:00.000+01:00[Europe/Berlin]",
        "endDateTime": "2026-12-01T09:00:00.000+01:00[Europe/Berlin]",
        "instructors": [
            {"id": 1, "firstName": "Anna", "lastName": "Schmidt", "publicName": "Coach Anna"},
            {"id": 2, "firstName": "Ben", "lastName": "Ott"},  # no publicName
            {"id": 3, "firstName": "Cem", "lastName": "Aydin", "publicName": None, "badge": "gold"},
        ],
    },
    {"startDateTime": "2026-12-01T09:00+01:00[Europe/Berlin]", "endDateTime": "2026-12-01T10:00+01:00"},
    {
        "startDateTime": "2026-10-25T02:30:00.000+02:00[Europe/Berlin]",  # the autumn fold, first pass
        "endDateTime": "2026-10-25T02:15:00.000+01:00[Europe/Berlin]",  # a wall clock earlier, 45 min later
        "instructors": None,
        "room": {"name": "Studio 2"},  # not in the spec
    },
]


def test_a_list_of_objects_is_read_as_from_dict_reads_each_item() -> None:
    from perfectgym_appointments_client._generated.models import Instructor, Slot

    slots = Slot._from_dicts(SLOTS)
    assert slots == [Slot.from_dict(item) for item in SLOTS]
    assert [type(slot) for slot in slots] == [Slot] * 3
    assert [slot.additional_properties for slot in slots] == [{}, {}, {"room": {"name": "Studio 2"}}]
    first = slots[0].instructors
    assert first is not None
    assert [i.public_name for i in first] == ["Coach Anna", None, None]
    assert [i.additional_properties for i in first] == [{}, {}, {"badge": "gold"}]
    assert first == [Instructor.from_dict(item) for item in SLOTS[0]["instructors"]]
    assert slots[1].instructors is None
    assert slots[2].instructors is None
    # Each object has its own dict of extra keys: changing one changes no other.
    first[0]["badge"] = "silver"
    assert first[1].additional_properties == {}


def test_a_list_of_a_subclass_is_built_through_its_own_init() -> None:
    """A newer model (a subclass with a field of its own, with its default) read by the parent's
    parser gets that default, in a list as from one object: only the class itself is built
    without its __init__."""
    from perfectgym_appointments_client._generated.models import Instructor

    newer = attrs.define(
        type("NewerInstructor", (Instructor,), {"__annotations__": {"badge": str | None}, "badge": None})
    )
    items = SLOTS[0]["instructors"]
    built = newer._from_dicts(items)
    assert [type(i) for i in built] == [newer] * 3
    assert [i.badge for i in built] == [None] * 3
    assert [i.last_name for i in built] == ["Schmidt", "Ott", "Aydin"]
    assert newer.from_dict(items[0]).badge is None


def test_an_item_a_list_refuses_is_named_by_its_place() -> None:
    from perfectgym_appointments_client._generated.api.appointments import get_bookable_appointment_slots

    broken = copy.deepcopy(SLOTS)
    broken[0]["instructors"][2]["lastName"] = 7
    with pytest.raises(TypeError, match=r"^\[0\]\.instructors\[2\]\.lastName: expected str, got int$"):
        get_bookable_appointment_slots.parse_response(200, broken)
    broken = copy.deepcopy(SLOTS)
    broken[2]["endDateTime"] = broken[2]["startDateTime"]
    with pytest.raises(ValueError, match=r"^\[2\]\.endDateTime: .* is not after startDateTime"):
        get_bookable_appointment_slots.parse_response(200, broken)
