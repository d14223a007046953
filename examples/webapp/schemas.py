"""The app's request and response bodies (pydantic), and how the client's models map to them.

Date-times go out as the API wrote them (``2026-12-01T08:00:00.000+01:00[Europe/Berlin]``) and
come back in that form for a booking: the client then sends the slot byte for byte as the API
gave it. A plain ISO 8601 date-time with an offset is accepted too; one without is refused (422).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from perfectgym_appointments_client import (
    BookableAppointment,
    Booking,
    Slot,
    format_zoned_datetime,
    parse_zoned_datetime,
)

__all__ = [
    "AppointmentOut",
    "BookIn",
    "BookingOut",
    "CancelOut",
    "ErrorOut",
    "OutcomeOut",
    "ReadyOut",
    "SlotOut",
    "WeekOut",
]

# The API's ids are 64-bit; the client refuses others before any request, pydantic before the handler.
Id = Annotated[int, Field(gt=0, lt=2**63)]


class AppointmentOut(BaseModel):
    id: int
    title: str | None
    duration: int | None
    category: str | None

    @classmethod
    def of(cls, appointment: BookableAppointment) -> AppointmentOut:
        return cls(
            id=appointment.id,
            title=appointment.title,
            duration=appointment.duration,
            category=appointment.category,
        )


class SlotOut(BaseModel):
    start: str
    end: str
    instructors: list[str]

    @classmethod
    def of(cls, slot: Slot) -> SlotOut:
        return cls(
            start=format_zoned_datetime(slot.start_date_time),
            end=format_zoned_datetime(slot.end_date_time),
            instructors=[i.public_name or f"{i.first_name} {i.last_name}" for i in slot.instructors or ()],
        )


class WeekOut(BaseModel):
    appointment_id: int
    customer_id: int | None
    first_day: dt.date | None
    slots: list[SlotOut]


class BookIn(BaseModel):
    customer_id: Id
    appointment_id: Id
    start: str = Field(examples=["2026-12-01T08:00:00.000+01:00[Europe/Berlin]"])
    end: str

    @field_validator("start", "end")
    @classmethod
    def _a_zoned_datetime(cls, value: str) -> str:
        parse_zoned_datetime(value)  # ValueError: pydantic answers 422 naming the field
        return value

    def slot(self) -> Slot:
        return Slot(
            start_date_time=parse_zoned_datetime(self.start), end_date_time=parse_zoned_datetime(self.end)
        )


class BookingOut(BaseModel):
    booking_id: int
    status: str
    title: str | None
    start: str
    end: str
    needs_confirmation: bool
    already_existed: bool
    """True when the customer already held this booking (a resubmit, a second tab): nothing new was booked."""

    @classmethod
    def of(cls, booking: Booking) -> BookingOut:
        return cls(
            booking_id=booking.booking_id,
            status=str(booking.booking_status),
            title=booking.title,
            start=format_zoned_datetime(booking.start_date_time),
            end=format_zoned_datetime(booking.end_date_time),
            needs_confirmation=booking.needs_confirmation,
            already_existed=booking.already_existed,
        )


class CancelOut(BaseModel):
    booking_id: int
    result: str
    """The API's confirmation text, or "canceled" / "already canceled"."""


class OutcomeOut(BaseModel):
    id: int
    recorded_at: float
    pid: int
    operation: str
    kind: str
    booking_id: int | None
    customer_id: int | None
    bookable_appointment_id: int | None
    start_date_time: str | None
    end_date_time: str | None
    canceled_booking_ids: list[int]
    old_booking_id: int | None
    caller_cancelled: bool
    error: str | None
    recovered: bool
    """Reported by ``client.recover()`` at a start: the process that ran the flow had died."""


class ReadyOut(BaseModel):
    ready: bool
    reason: str
    checked_at: float


class ErrorOut(BaseModel):
    """What every mapped error answers (errors.py)."""

    error: str
    detail: str
    upstream: dict[str, Any] | None = None
