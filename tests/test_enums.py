"""Open enums: values the API adds later parse, keep their raw string, and never raise."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest
from not_in_spec import enum_value

from perfectgym_appointments_client._generated.models import (
    AppointmentBooking,
    AppointmentStatus,
    BookingStatus,
    CustomerAppointmentBooking,
    ParticipantStatus,
    ValidationResult,
    ValidationStatus,
)

BOOKING: dict[str, Any] = {
    "bookingId": 1,
    "bookingStatus": "BOOKED",
    "startDateTime": "2022-06-22T08:00:00.000+02:00[Europe/Berlin]",
    "endDateTime": "2022-06-22T09:00:00.000+02:00[Europe/Berlin]",
    "appointmentStatus": "PLANNED",
    "participantStatus": "PARTICIPATING",
}
ENUMS: list[type[StrEnum]] = [ValidationStatus, BookingStatus, AppointmentStatus, ParticipantStatus]
# Values none of them lists (tests/not_in_spec.py: derived from the spec, so a spec adding one
# does not make it known).
NEW = enum_value(*(enum.__name__ for enum in ENUMS), like="SOMETHING_NEW_IN_1_13")
NEW_STATUS = enum_value("ValidationStatus", like="WAITING_LIST")
NEW_ON_BOOKINGS = enum_value("BookingStatus", "AppointmentStatus", "ParticipantStatus", like="BRAND_NEW")


@pytest.mark.parametrize("enum", ENUMS)
def test_unknown_value_is_kept(enum: Any) -> None:
    member = enum(NEW)
    assert isinstance(member, enum)
    assert member.value == NEW
    assert str(member) == NEW
    assert member == NEW
    assert NEW in repr(member)
    assert not member.is_known
    assert enum(NEW) is member
    assert member not in list(enum)  # iteration still lists only the documented values


@pytest.mark.parametrize("enum", ENUMS)
def test_known_values_unchanged(enum: Any) -> None:
    for member in enum:
        assert enum(member.value) is member
        assert member.is_known
        assert str(member) == member.value


def test_non_string_is_still_refused() -> None:
    with pytest.raises(ValueError, match="not a valid ValidationStatus"):
        ValidationStatus(3)


def test_comparisons_with_known_members_work() -> None:
    result = ValidationResult.from_dict({"validationStatus": "AVAILABLE"})
    assert result.validation_status is ValidationStatus.AVAILABLE
    assert result.validation_status == ValidationStatus.AVAILABLE
    other = ValidationResult.from_dict({"validationStatus": NEW_STATUS})
    assert other.validation_status != ValidationStatus.AVAILABLE
    assert other.to_dict() == {"validationStatus": NEW_STATUS}


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("bookingStatus", "booking_status"),
        ("appointmentStatus", "appointment_status"),
        ("participantStatus", "participant_status"),
    ],
)
@pytest.mark.parametrize("model", [AppointmentBooking, CustomerAppointmentBooking])
def test_unknown_values_on_every_booking_enum_field(model: Any, field: str, attribute: str) -> None:
    data = {**BOOKING, "customerId": 3, field: NEW_ON_BOOKINGS}
    parsed = model.from_dict(data)
    assert getattr(parsed, attribute).value == NEW_ON_BOOKINGS
    assert parsed.to_dict()[field] == NEW_ON_BOOKINGS


def test_unknown_cache_is_bounded() -> None:
    for i in range(400):
        assert ParticipantStatus(f"FLOOD_{i}").value == f"FLOOD_{i}"
    assert len(ParticipantStatus._value2member_map_) <= 256
