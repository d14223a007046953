"""One command per API operation, against ``PERFECTGYM_BASE_URL`` (or ``--sandbox``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from .. import BookableAppointment, Booking, ConfigurationError, Slot, ValidationStatus, parse_zoned_datetime
from .._constants import MAX_DAYS_AHEAD, MAX_SLICE_SIZE, MIN_SLICE_SIZE
from ._common import (
    EXIT_FAILED,
    JsonOption,
    LanguageOption,
    SandboxOption,
    command,
    err,
    fail,
    open_client,
    run,
    state,
)
from ._output import appointments_table, booking_json, bookings_table, print_json, show, slots_table

__all__ = [
    "book",
    "bookable",
    "bookings",
    "cancel",
    "check_key",
    "get_booking",
    "reschedule",
    "slots",
    "validate",
]

EXIT_NOT_AVAILABLE = 3
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

CustomerArgument = Annotated[int, typer.Argument(metavar="CUSTOMER_ID", help="The customer's id.")]
AppointmentArgument = Annotated[
    int, typer.Argument(metavar="APPOINTMENT_ID", help="The bookable appointment's id.")
]
BookingArgument = Annotated[int, typer.Argument(metavar="BOOKING_ID", help="The booking's id.")]
StartArgument = Annotated[
    str,
    typer.Argument(
        metavar="START", help="Slot start, as the slots table shows it: e.g. 2026-12-08T06:00+01:00"
    ),
]
EndArgument = Annotated[str, typer.Argument(metavar="END", help="Slot end, the same way.")]
NoValidateOption = Annotated[bool, typer.Option("--no-validate", help="Skip the validation call.")]
# Where START and END come from, in the help of the commands that take them.
_SLOT_TIMES = (
    "START and END as the slots table shows them (2026-12-08T06:00+01:00: the studio's time and offset) "
    "or in the API's form (2026-12-08T06:00:00.000+01:00[Europe/Berlin], as slots --json prints it)."
)


def _parse_time(text: str, name: str) -> dt.datetime:
    try:
        return parse_zoned_datetime(text, name)
    except (TypeError, ValueError) as exc:
        fail(f"invalid value for {name.upper()}: {exc} (e.g. 2022-06-22T08:00+02:00, as slots shows it)")


def _parse_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        # fromisoformat alone also takes 20261201 and week dates; the API wants 2026-12-01.
        if not _DATE.fullmatch(text):
            raise ValueError("not in the form YYYY-MM-DD")
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        fail(f"invalid value for {option}: {text!r} is not a date like 2026-12-01 ({exc})")


class _Window:
    """A slot given on the command line."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start_date_time = start
        self.end_date_time = end


def _window(start: str, end: str) -> _Window:
    return _Window(_parse_time(start, "start"), _parse_time(end, "end"))


@command()
def bookable(
    slice_size: Annotated[
        int,
        typer.Option(
            help="Items per request (the API's bounds).", min=MIN_SLICE_SIZE, max=MAX_SLICE_SIZE, metavar="N"
        ),
    ] = 50,
    limit: Annotated[int | None, typer.Option(help="Stop after this many.", min=1, metavar="N")] = None,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """List bookable appointments (all pages)."""

    async def job() -> list[BookableAppointment]:
        found: list[BookableAppointment] = []
        async with open_client(use_sandbox, accept_language) as client:
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
            ) as progress:
                task = progress.add_task("listing bookable appointments", total=None)
                async for page in client.bookable_appointments(slice_size=slice_size, limit=limit).pages():
                    found.extend(page.items)
                    progress.update(task, description=f"page {page.number}: {len(found)} appointments")
        return found[:limit] if limit else found

    appointments = run(job)
    if as_json:
        print_json([a.to_dict() for a in appointments])
    else:
        show(appointments_table(appointments, f"{len(appointments)} bookable appointments"))


@command()
def slots(
    bookable_appointment_id: AppointmentArgument,
    customer_id: Annotated[
        int | None, typer.Option(help="Only slots this customer may book.", metavar="ID")
    ] = None,
    days_ahead: Annotated[
        int | None,
        typer.Option(
            help="Days to search (asked for in windows of at most 6). Default: the API's, 1 day.",
            min=1,
            max=MAX_DAYS_AHEAD,
            metavar="DAYS",
        ),
    ] = None,
    start_date: Annotated[
        str | None, typer.Option(help="First day (default: today).", metavar="YYYY-MM-DD")
    ] = None,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Free slots of one bookable appointment.

    The table's start and end are in the studio's time zone, in the form book, validate and
    reschedule take: copy them from there.
    """
    first_day = _parse_date(start_date, "--start-date")

    async def job() -> list[Slot]:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.get_slots(
                bookable_appointment_id, customer_id=customer_id, days_ahead=days_ahead, start_date=first_day
            )

    found = run(job)
    if as_json:
        print_json([s.to_dict() for s in found])
    else:
        show(slots_table(found, f"{len(found)} free slots of {bookable_appointment_id}"))


@command(more=_SLOT_TIMES)
def validate(
    customer_id: CustomerArgument,
    bookable_appointment_id: AppointmentArgument,
    start: StartArgument,
    end: EndArgument,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Whether a customer may book a slot: prints the ValidationStatus.

    Exit status 0 if it is AVAILABLE, 3 if it is anything else (1 if the call failed, 2 if an
    argument is wrong, e.g. END not after START).
    """
    window = _window(start, end)

    async def job() -> ValidationStatus:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.validate_slot(
                customer_id=customer_id, bookable_appointment_id=bookable_appointment_id, slot=window
            )

    status = run(job)
    if as_json:
        print_json({"validationStatus": str(status)})
    else:
        state.out.print(str(status), highlight=False)
    if status is not ValidationStatus.AVAILABLE:
        raise typer.Exit(EXIT_NOT_AVAILABLE)


@command(more=_SLOT_TIMES)
def book(
    customer_id: CustomerArgument,
    bookable_appointment_id: AppointmentArgument,
    start: StartArgument,
    end: EndArgument,
    no_validate: NoValidateOption = False,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Book a slot for a customer (never booked twice, even after a dropped connection).

    When the customer already holds this slot (an earlier run, another tab), that booking is
    shown as already booked and nothing new is booked (--json: alreadyExisted).
    """
    window = _window(start, end)

    async def job() -> Booking:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.book(
                customer_id=customer_id,
                bookable_appointment_id=bookable_appointment_id,
                slot=window,
                validate=not no_validate,
            )

    booking = run(job)
    if as_json:
        print_json({**booking_json(booking), "alreadyExisted": booking.already_existed})
    elif booking.already_existed:
        state.out.print(
            f"already booked: customer {customer_id} holds booking {booking.booking_id} for this slot; "
            "nothing new was booked",
            highlight=False,
        )
        show(bookings_table([booking], "already booked"))
    else:
        show(bookings_table([booking], "booked"))


@command()
def bookings(
    customer_id: CustomerArgument,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """A customer's appointment bookings (those within two weeks of now, canceled ones included)."""

    async def job() -> list[Booking]:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.list_bookings(customer_id)

    found = run(job)
    if as_json:
        print_json([booking_json(b) for b in found])
    else:
        show(bookings_table(found, f"bookings of customer {customer_id}"))


@command("get-booking")
def get_booking(
    booking_id: BookingArgument,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """One booking, with the customer it belongs to."""

    async def job() -> Booking:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.get_booking(booking_id)

    booking = run(job)
    if as_json:
        print_json(booking_json(booking))
    else:
        show(bookings_table([booking], f"booking {booking.booking_id} of customer {booking.customer_id}"))


@command(more=_SLOT_TIMES)
def reschedule(
    booking_id: BookingArgument,
    start: StartArgument,
    end: EndArgument,
    appointment_id: Annotated[
        int | None,
        typer.Option(
            "--appointment-id",
            help="The bookable appointment of the new slot (default: the one whose title is the booking's).",
            metavar="ID",
        ),
    ] = None,
    no_validate: NoValidateOption = False,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Move a booking to another slot: the new slot is booked first, then the old booking canceled.

    It never ends with neither booking: if the cancel fails, the error line names both.
    """
    window = _window(start, end)

    async def job() -> Booking:
        async with open_client(use_sandbox, accept_language) as client:
            try:
                return await client.reschedule(
                    booking_id, window, bookable_appointment_id=appointment_id, validate=not no_validate
                )
            except ConfigurationError as exc:  # the title matches no or many appointments
                raise ConfigurationError(
                    str(exc).replace("pass bookable_appointment_id=...", "pass --appointment-id")
                ) from exc

    moved = run(job)
    if as_json:
        print_json({**booking_json(moved), "oldBookingId": booking_id})
    else:
        state.out.print(
            f"rescheduled: new booking {moved.booking_id}, old booking {booking_id} canceled", highlight=False
        )
        show(bookings_table([moved], "the new booking"))


@command()
def cancel(
    booking_id: BookingArgument,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Cancel a booking."""

    async def job() -> str:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.cancel_booking(booking_id)

    message = run(job)
    if as_json:
        print_json({"bookingId": booking_id, "success": message})
    else:
        state.out.print(escape(message), highlight=False)


@command("check-key")
def check_key(use_sandbox: SandboxOption = False, accept_language: LanguageOption = None) -> None:
    """Whether the API accepts PERFECTGYM_API_KEY (a HEAD request; its scopes are not checked).

    Prints valid or invalid, never the key. Exit status 0 if valid, 1 if not (or if the check
    could not be made: the error line says why), 2 if PERFECTGYM_API_KEY or PERFECTGYM_BASE_URL
    is missing or malformed.
    """

    async def job() -> bool:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.check_api_key()

    valid = run(job)
    state.out.print("valid" if valid else "invalid", highlight=False)
    if not valid:
        raise typer.Exit(EXIT_FAILED)
