"""How a booking flow ended (``BookingOutcome``), and its report: a WARNING for what an app must
look at, and the app's ``on_booking_outcome`` hook."""

from __future__ import annotations

import datetime as dt
import enum
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import (
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    PerfectGymError,
    RescheduleError,
)
from .._generated.models import AppointmentBookingRequest
from .._request import logger

if TYPE_CHECKING:
    from .._telemetry import Instruments

__all__ = ["BookingOutcome", "OutcomeHook", "OutcomeKind", "describe", "outcome", "report"]


class OutcomeKind(enum.StrEnum):
    """How a booking flow ended (``BookingOutcome.kind``)."""

    BOOKED = "booked"
    """A booking was made and its id is known."""
    BOOKED_ID_UNKNOWN = "booked_id_unknown"
    """A booking was made (proven) but its id could not be read: outside the list's window."""
    NOT_BOOKED = "not_booked"
    """Nothing was booked (proven)."""
    ALREADY_BOOKED = "already_booked"
    """Nothing was booked by this call: the customer already held a booking of this appointment at
    this instant (``booking_id``), made earlier, elsewhere, or by another call of this client. That
    booking may reach the hook only this way (a resubmit that validated first sends nothing and
    reports nothing), so an app that stores bookings stores these too."""
    UNKNOWN = "unknown"
    """It could not be told whether a booking was made."""
    CANCELED = "canceled"
    """The booking is canceled."""
    NOT_CANCELED = "not_canceled"
    """The booking is still active (or it could not be told): the cancel failed."""
    RESCHEDULED = "rescheduled"
    """The new booking was made and the old one canceled."""
    BOTH_BOOKINGS = "both_bookings"
    """Reschedule booked the new slot (or may have) but could not cancel the old booking."""


@attrs.frozen(kw_only=True)
class BookingOutcome:
    """What a booking flow ended with, given to ``AppointmentsClient(on_booking_outcome=...)``.

    Reported once per ``book``, ``cancel_booking`` and ``reschedule`` whose request was sent,
    whether the call returned, raised, or was cancelled by its caller (``caller_cancelled``):
    an app that stores bookings learns of every one, even one whose call it abandoned.
    """

    operation: str
    """``book``, ``cancel`` or ``reschedule``."""
    kind: OutcomeKind
    booking_id: int | None = None
    """The booking made (book, reschedule), or the one canceled (cancel)."""
    customer_id: int | None = None
    bookable_appointment_id: int | None = None
    start_date_time: dt.datetime | None = None
    end_date_time: dt.datetime | None = None
    canceled_booking_ids: tuple[int, ...] = ()
    """Bookings this flow canceled besides: a duplicate, or reschedule's old booking."""
    old_booking_id: int | None = None
    """reschedule: the booking being moved."""
    caller_cancelled: bool = False
    recovered: bool = False
    """Reported by ``recover()``: the process that ran the flow stopped before it could report it,
    and this is what the evidence shows it did (a booking journal, ``journal=``)."""
    error: BaseException | None = attrs.field(default=None, eq=False)
    """The error the call raised (or would have, had it not been cancelled)."""


OutcomeHook = Callable[[BookingOutcome], Awaitable[None] | None]


def outcome(
    operation: str,
    kind: OutcomeKind,
    body: AppointmentBookingRequest,
    booking_id: int | None,
    canceled: tuple[int, ...],
) -> BookingOutcome:
    return BookingOutcome(
        operation=operation,
        kind=kind,
        booking_id=booking_id,
        customer_id=body.customer_id,
        bookable_appointment_id=body.bookable_appointment_id,
        start_date_time=body.start_date_time,
        end_date_time=body.end_date_time,
        canceled_booking_ids=canceled,
    )


def describe(
    operation: str,
    subject: AppointmentBookingRequest | int,
    outcome_or_error: tuple[Any, BookingOutcome] | BaseException,
    old_booking_id: int | None,
) -> BookingOutcome:
    """The outcome a flow returned, or the one its error means."""
    if not isinstance(outcome_or_error, BaseException):
        return outcome_or_error[1]
    error = outcome_or_error
    unknown = isinstance(error, BookingOutcomeUnknownError) or not isinstance(error, PerfectGymError)
    if operation == "cancel":
        assert isinstance(subject, int)
        kind = OutcomeKind.UNKNOWN if unknown else OutcomeKind.NOT_CANCELED
        return BookingOutcome(operation="cancel", kind=kind, booking_id=subject, error=error)
    assert isinstance(subject, AppointmentBookingRequest)
    # The flows' contract: once a booking may have been made, they end in a booking, in one
    # of the three errors below, or in an error that comes with proof that nothing was made.
    if isinstance(error, BookingIdUnknownError):
        kind = OutcomeKind.BOOKED_ID_UNKNOWN
    elif isinstance(error, RescheduleError):
        # The old booking was kept; the new one exists, or may (its outcome unknown).
        unclear = isinstance(error.cause, BookingOutcomeUnknownError)
        kind = OutcomeKind.UNKNOWN if unclear else OutcomeKind.BOTH_BOOKINGS
    elif unknown:
        kind = OutcomeKind.UNKNOWN
    else:
        kind = OutcomeKind.NOT_BOOKED
    booking_id = error.new_booking_id if isinstance(error, RescheduleError) else None
    described = outcome(operation, kind, subject, booking_id, ())
    return attrs.evolve(described, error=error, old_booking_id=old_booking_id)


async def report(
    reported: BookingOutcome, hook: OutcomeHook | None, telemetry: Instruments | None = None
) -> None:
    if telemetry is not None:  # the counter by kind, and the kind on the public call's span
        telemetry.booking_outcome(reported.operation, reported.kind.value)
    noteworthy = (
        reported.caller_cancelled
        or reported.recovered
        or reported.kind
        in (
            OutcomeKind.BOOKED_ID_UNKNOWN,
            OutcomeKind.UNKNOWN,
            OutcomeKind.BOTH_BOOKINGS,
        )
    )
    if noteworthy:
        logger.warning(
            "%s ended %s: booking %s, customer %s, slot %s%s%s",
            reported.operation,
            reported.kind,
            reported.booking_id if reported.booking_id is not None else "(id unknown)",
            reported.customer_id if reported.customer_id is not None else "-",
            reported.start_date_time.isoformat() if reported.start_date_time else "-",
            " (the caller was cancelled; the flow ran to its end)"
            if reported.caller_cancelled
            else " (recovered from the booking journal)"
            if reported.recovered
            else "",
            f"; canceled {list(reported.canceled_booking_ids)}" if reported.canceled_booking_ids else "",
        )
    if hook is None:
        return
    try:
        reply = hook(reported)
        if inspect.isawaitable(reply):
            await reply
    except Exception:  # noqa: BLE001
        # The hook is the app's; its failure must not turn a booking into an error.
        logger.exception("on_booking_outcome raised for %s", reported)
