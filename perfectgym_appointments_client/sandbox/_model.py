"""The sandbox studio's vocabulary: its zone and settings, its records, and the refusal it raises.

The lowest of the store's modules: every other one (``_calendar``, ``_data``, ``_ledger``,
``_rules``, ``_store``) imports from here, and this imports none of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ._i18n import text

__all__ = [
    "BOOKING_HORIZON",
    "CONCURRENT_MODIFICATION",
    "DEMO_CUSTOMER_ID",
    "LEAD_TIMES",
    "LIST_WINDOW",
    "ZONE",
    "ZONE_ID",
    "Appointment",
    "BookingRecord",
    "Customer",
    "Instructor",
    "RuleViolation",
    "about_id",
    "refusal",
]

ZONE = ZoneInfo("Europe/Berlin")
ZONE_ID = "Europe/Berlin"

# The id the API's docs (and the README) use for a customer; every seed gives it to the demo customer.
DEMO_CUSTOMER_ID = 1_210_005_199
# How far ahead customers may book (the studio's setting, the same for every appointment).
BOOKING_HORIZON = dt.timedelta(days=28)
# Minimum lead times the seed deals out, in minutes: a booking must start at least this late.
LEAD_TIMES = (0, 60, 120)
# GET /v1/appointments/booking lists bookings starting and ending within this of now.
LIST_WINDOW = dt.timedelta(days=14)
CONCURRENT_MODIFICATION = "errormessage.concurrent.modification"


def _present(body: dict[str, object], **optional: object) -> dict[str, object]:
    """``body`` plus the optional fields that have a value: the API leaves absent ones out (its
    schemas are not nullable), so the sandbox never sends null."""
    body.update((name, value) for name, value in optional.items() if value is not None)
    return body


@dataclass(frozen=True)
class Instructor:
    id: int
    first_name: str
    last_name: str
    public_name: str | None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "firstName": self.first_name, "lastName": self.last_name}
        return _present(body, publicName=self.public_name)


@dataclass(frozen=True)
class Appointment:
    id: int
    title: str
    duration: int  # minutes; also the slot grid step
    category: str
    description: str | None
    img_url: str | None
    instructor_ids: tuple[int, ...]
    requires_confirmation: bool  # booked as BOOKED_WITH_CONFIRMATION_REQUIRED
    premium_only: bool  # the restriction: only premium members may book
    lead_minutes: int  # minimum lead time: bookings must start at least this many minutes from now
    online: bool = True  # "available for online booking"; if not, listed nowhere and never bookable
    # Bookable at any hour of any day, opening hours and Sundays aside; its slot grid runs from
    # local midnight to the next, stepped in elapsed time (so a DST day has 23 or 25 hours of it).
    all_hours: bool = False

    @property
    def lead_time(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.lead_minutes)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "title": self.title,
            "duration": self.duration,
            "category": self.category,
        }
        return _present(body, description=self.description, imgUrl=self.img_url)


@dataclass
class Customer:
    id: int
    first_name: str
    last_name: str
    premium: bool
    contingent: dict[str, int]  # credits left per category; a booking takes one, a cancel gives it back
    booking_limit: int  # active bookings in the future at most
    idle_periods: list[tuple[dt.date, dt.date]] = field(default_factory=list)  # inclusive
    profile: str = "regular"  # what the seed made this customer show (demo, idle, no-contingent...)


@dataclass
class BookingRecord:
    id: int
    customer_id: int
    appointment_id: int
    start: dt.datetime
    end: dt.datetime
    instructor_id: int
    status: str  # BOOKED, BOOKED_WITH_CONFIRMATION_REQUIRED, CANCELED
    created: dt.datetime

    @property
    def active(self) -> bool:
        return self.status != "CANCELED"


class RuleViolation(Exception):
    """A request the studio refuses: ``status`` is the HTTP status, ``code`` the errorCode.

    ``params`` fill the fields of the code's message; ``error_args`` and ``typed_args`` become
    the answer's ``args`` and ``typedArgs``. ``message`` is the English text, ``message_in(tag)``
    the text in another language.
    """

    def __init__(
        self,
        status: int,
        code: str,
        reference: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        error_args: list[dict[str, Any]] | None = None,
        typed_args: list[dict[str, Any]] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.reference = reference
        self.params = dict(params or {})
        self.error_args = list(error_args or [])
        self.typed_args = list(typed_args or [])
        self.message = text(code, "en", **self.params)
        super().__init__(self.message)

    def message_in(self, language: str) -> str:
        return text(self.code, language, **self.params)


def refusal(status: str) -> RuleViolation:
    """A booking refused by a rule: 400 with the ValidationStatus as errorCode."""
    return RuleViolation(
        400,
        status,
        "startDateTime",
        error_args=[{"validationStatus": status}],
        typed_args=[{"value": status, "type": "ENUM"}],
    )


def about_id(status: int, code: str, entity_id: int, reference: str) -> RuleViolation:
    """A refusal naming one entity by id: an unknown one (404), or one whose state forbids the
    request (400)."""
    return RuleViolation(
        status,
        code,
        reference,
        params={"id": entity_id},
        error_args=[{"id": entity_id}],
        typed_args=[{"value": entity_id, "type": "INTEGER"}],
    )
