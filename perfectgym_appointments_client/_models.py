"""The models users see.

Bookable appointments, slots, instructors and the enums are the generated attrs classes
(re-exported as they are: no copying on the hot path of listing and slot search). A booking is
wrapped in a frozen :class:`Booking` that merges the two generated booking shapes (with and
without ``customerId``) and says plainly whether the studio still has to confirm it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from ._generated.models import (
    AppointmentBooking,
    AppointmentStatus,
    BookableAppointment,
    BookingStatus,
    CustomerAppointmentBooking,
    Instructor,
    ParticipantStatus,
    Slot,
    ValidationStatus,
)
from ._generated.types import Unset

__all__ = [
    "AppointmentStatus",
    "BookableAppointment",
    "Booking",
    "BookingStatus",
    "Instructor",
    "Page",
    "ParticipantStatus",
    "Slot",
    "SlotLike",
    "ValidationStatus",
    "instructor_name",
]

T = TypeVar("T")


@runtime_checkable
class SlotLike(Protocol):
    """Anything with aware start and end date-times: a :class:`Slot`, a :class:`Booking`, ..."""

    @property
    def start_date_time(self) -> datetime:
        """When the slot starts (timezone-aware)."""
        ...

    @property
    def end_date_time(self) -> datetime:
        """When the slot ends (timezone-aware)."""
        ...


def _opt(value: Any) -> Any:
    return None if isinstance(value, Unset) else value


def instructor_name(instructor: Instructor) -> str:
    """How every table, chart and listing names an instructor: the public name when the API gives
    one (not empty), else first and last name."""
    public = instructor.public_name
    return public if isinstance(public, str) and public else f"{instructor.first_name} {instructor.last_name}"


_FIELD_NAMES: dict[type[Any], frozenset[str]] = {}


def _field_names(model: type[Any]) -> frozenset[str]:
    names = _FIELD_NAMES.get(model)
    if names is None:
        names = frozenset(f.name for f in attrs.fields(model) if f.name != "additional_properties")
        _FIELD_NAMES[model] = names
    return names


@attrs.frozen(kw_only=True)
class Booking:
    """A customer's appointment booking.

    ``customer_id`` is known when the booking came from :meth:`get_booking`, or from a call
    that named the customer (:meth:`book`, :meth:`list_bookings`). Every other field of the
    generated booking model is an attribute too (a field a newer spec adds, once regenerated,
    with no edit here), and ``additional_properties`` holds what the server sent that the spec
    does not name. ``raw`` is the generated model itself.
    """

    booking_id: int
    booking_status: BookingStatus
    start_date_time: datetime
    end_date_time: datetime
    appointment_status: AppointmentStatus
    participant_status: ParticipantStatus
    customer_id: int | None = None
    title: str | None = None
    duration: int | None = None
    category: str | None = None
    description: str | None = attrs.field(default=None, repr=False)
    img_url: str | None = attrs.field(default=None, repr=False)
    instructors: tuple[Instructor, ...] = ()
    already_existed: bool = False
    """True when :meth:`~AppointmentsClient.book` found the customer already holding this booking
    (same appointment, same instant: a resubmit, a second tab) and returned it instead of booking
    again; nothing was booked by that call."""
    raw: AppointmentBooking | CustomerAppointmentBooking | None = attrs.field(
        default=None, eq=False, repr=False
    )

    def __getattr__(self, name: str) -> Any:
        # Reached only for names this class does not define: the generated model's other fields.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            raw = object.__getattribute__(self, "raw")
        except AttributeError:  # while copying or unpickling, before the fields are set
            raise AttributeError(name) from None
        if name == "additional_properties":
            return dict(raw.additional_properties) if raw is not None else {}
        if raw is not None and name in _field_names(type(raw)):
            return _opt(getattr(raw, name))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        raw = self.raw
        extra = [*_field_names(type(raw)), "additional_properties"] if raw is not None else []
        return sorted({*super().__dir__(), *extra})

    @property
    def needs_confirmation(self) -> bool:
        """True for ``BOOKED_WITH_CONFIRMATION_REQUIRED``: the studio has not confirmed it yet."""
        return self.booking_status is BookingStatus.BOOKED_WITH_CONFIRMATION_REQUIRED

    @property
    def is_confirmed(self) -> bool:
        """True only for a plain ``BOOKED``."""
        return self.booking_status is BookingStatus.BOOKED

    @property
    def is_canceled(self) -> bool:
        """True for ``CANCELED``."""
        return self.booking_status is BookingStatus.CANCELED

    @classmethod
    def from_api(
        cls, raw: AppointmentBooking | CustomerAppointmentBooking, *, customer_id: int | None = None
    ) -> Booking:
        """A Booking from a generated booking model (``customer_id`` for the shape without one)."""
        if isinstance(raw, CustomerAppointmentBooking):
            customer_id = raw.customer_id
        instructors = _opt(raw.instructors)
        return cls(
            booking_id=raw.booking_id,
            booking_status=raw.booking_status,
            start_date_time=raw.start_date_time,
            end_date_time=raw.end_date_time,
            appointment_status=raw.appointment_status,
            participant_status=raw.participant_status,
            customer_id=customer_id,
            title=_opt(raw.title),
            duration=_opt(raw.duration),
            category=_opt(raw.category),
            description=_opt(raw.description),
            img_url=_opt(raw.img_url),
            instructors=tuple(instructors or ()),
            raw=raw,
        )

    def to_row(self) -> dict[str, Any]:
        """A flat dict (a table row; :func:`to_dataframe` makes a DataFrame of bookings). Instructors
        are named by their public name when the API gives one, else by first and last name."""
        return {
            "booking_id": self.booking_id,
            "customer_id": self.customer_id,
            "title": self.title,
            "start": self.start_date_time,
            "end": self.end_date_time,
            "booking_status": str(self.booking_status),
            "appointment_status": str(self.appointment_status),
            "participant_status": str(self.participant_status),
            "instructors": ", ".join(instructor_name(i) for i in self.instructors),
        }

    def _repr_html_(self) -> str:
        """The fields as an HTML table, escaped: how Jupyter shows the booking."""
        from ._html import model_table

        # The generated model's fields this class does not declare (a newer spec's) as well; model_table
        # adds what the server sent that the spec does not name. ``raw`` would repeat it all.
        own = {f.name for f in attrs.fields(type(self))}
        raw = self.raw
        newer = [f.name for f in attrs.fields(type(raw))] if raw is not None else []
        extra = {n: getattr(self, n) for n in newer if n not in own and n != "additional_properties"}
        return model_table(self, exclude=("raw",), extra=extra)


@attrs.frozen
class Page(Generic[T]):
    """One page of a cursor-paginated listing."""

    items: list[T]
    has_next: bool
    offset: str
    """The cursor the server gave for the next page."""
    number: int
    """1 for the first page."""
