"""Booking shows every field of the generated model it wraps, also ones a newer spec adds once
regenerated, and what the server sent beyond the spec; copies and pickles keep all of it."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import attrs
import pytest

from perfectgym_appointments_client import Booking, BookingStatus
from perfectgym_appointments_client._generated.models import AppointmentBooking
from perfectgym_appointments_client._generated.types import UNSET, Unset

ANSWER: dict[str, Any] = {
    "bookingId": 1300243050,
    "bookingStatus": "BOOKED",
    "startDateTime": "2026-12-01T08:00:00.000+01:00[Europe/Berlin]",
    "endDateTime": "2026-12-01T09:00:00+01:00[Europe/Berlin]",
    "appointmentStatus": "PLANNED",
    "participantStatus": "BOOKED",
    "title": "Personal Training Express",
    "roomName": "Studio 2",  # not in the spec
}


@attrs.define
class NewerAppointmentBooking(AppointmentBooking):
    """The generated model as a newer spec would make it: one more optional field."""

    room_name: str | Unset = UNSET


def test_fields_the_spec_does_not_name_are_in_additional_properties() -> None:
    booking = Booking.from_api(AppointmentBooking.from_dict(ANSWER), customer_id=1210005199)
    assert booking.additional_properties == {"roomName": "Studio 2"}
    booking.additional_properties["roomName"] = "changed"  # a copy: the booking stays as received
    assert booking.additional_properties == {"roomName": "Studio 2"}
    assert booking.raw is not None
    assert booking.raw.to_dict()["roomName"] == "Studio 2"
    assert "additional_properties" in dir(booking)
    assert {"booking_id", "title", "needs_confirmation"} <= set(dir(booking))


def test_a_booking_built_by_hand_has_no_extra_fields() -> None:
    raw = Booking.from_api(AppointmentBooking.from_dict(ANSWER))
    booking = attrs.evolve(raw, raw=None)
    assert booking.additional_properties == {}
    assert "additional_properties" not in dir(booking)
    with pytest.raises(AttributeError, match="'Booking' object has no attribute 'room_name'"):
        _ = booking.room_name


def test_a_field_a_newer_generated_model_adds_is_an_attribute_without_an_edit() -> None:
    raw = NewerAppointmentBooking.from_dict(ANSWER)  # the parent's parser: room_name stays unset
    assert Booking.from_api(raw).room_name is None  # Unset reads as None, like the other fields
    raw.room_name = "Studio 2"
    booking = Booking.from_api(raw)
    assert booking.room_name == "Studio 2"
    assert "room_name" in dir(booking)
    with pytest.raises(AttributeError, match="no attribute 'room_nme'"):
        _ = booking.room_nme


def test_copies_and_pickles_keep_every_field() -> None:
    booking = Booking.from_api(AppointmentBooking.from_dict(ANSWER), customer_id=1210005199)
    for twin in (copy.copy(booking), copy.deepcopy(booking), pickle.loads(pickle.dumps(booking))):
        assert twin == booking
        assert twin.customer_id == 1210005199
        assert twin.booking_status is BookingStatus.BOOKED
        assert twin.additional_properties == {"roomName": "Studio 2"}
        assert twin.start_date_time.wire == ANSWER["startDateTime"]  # type: ignore[attr-defined]


def test_an_unfilled_booking_answers_attribute_errors_not_a_recursion() -> None:
    # What copy and pickle hold for a moment: the object before its fields are set.
    empty = object.__new__(Booking)
    assert getattr(empty, "title", "missing") == "missing"
    assert getattr(empty, "room_name", "missing") == "missing"
    assert not hasattr(empty, "__html__")
