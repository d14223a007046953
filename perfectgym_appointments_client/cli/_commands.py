"""One command per API operation, against ``PERFECTGYM_BASE_URL`` (or ``--sandbox``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from .. import BookableAppointment, Booking, Slot, ValidationStatus, parse_zoned_datetime
from ._common import JsonOption, LanguageOption, SandboxOption, app, err, fail, open_client, run, state
from ._output import appointments_table, booking_json, bookings_table, print_json, slots_table

__all__ = ["book", "bookable", "bookings", "cancel", "check_key", "slots", "validate"]

EXIT_NOT_AVAILABLE = 3
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_time(text: str, name: str) -> dt.datetime:
    try:
        return parse_zoned_datetime(text, name)
    except (TypeError, ValueError) as exc:
        fail(f"invalid value for {name.upper()}: {exc} (e.g. 2022-06-22T08:00:00.000+02:00[Europe/Berlin])")


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


@app.command()
def bookable(
    slice_size: Annotated[
        int, typer.Option(help="Items per request, 10-100 (the API's bounds).", min=10, max=100)
    ] = 50,
    limit: Annotated[int | None, typer.Option(help="Stop after this many.", min=1)] = None,
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
        state.out.print(appointments_table(appointments, f"{len(appointments)} bookable appointments"))


@app.command()
def slots(
    bookable_appointment_id: int,
    customer_id: Annotated[int | None, typer.Option(help="Only slots this customer may book.")] = None,
    days_ahead: Annotated[
        int | None,
        typer.Option(
            help="Days to search (any number: asked for in windows of at most 6). Default: the API's, 1 day.",
            min=1,
        ),
    ] = None,
    start_date: Annotated[
        str | None, typer.Option(help="First day (default: today).", metavar="YYYY-MM-DD")
    ] = None,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Free slots of one bookable appointment."""
    first_day = _parse_date(start_date, "--start-date")

    async def job() -> list[Slot]:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.get_slots(bookable_appointment_id, customer_id, days_ahead, first_day)

    found = run(job)
    if as_json:
        print_json([s.to_dict() for s in found])
    else:
        state.out.print(slots_table(found, f"{len(found)} free slots of {bookable_appointment_id}"))


@app.command()
def validate(
    customer_id: int,
    bookable_appointment_id: int,
    start: Annotated[
        str, typer.Argument(help="Slot start, e.g. 2022-06-22T08:00:00.000+02:00[Europe/Berlin]")
    ],
    end: Annotated[str, typer.Argument(help="Slot end, same form.")],
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Whether a customer may book a slot: prints the ValidationStatus.

    Exit status 0 if it is AVAILABLE, 3 if it is anything else (1 if the call failed).
    """
    window = _Window(_parse_time(start, "start"), _parse_time(end, "end"))

    async def job() -> ValidationStatus:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.validate_slot(customer_id, bookable_appointment_id, window)

    status = run(job)
    if as_json:
        print_json({"validationStatus": str(status)})
    else:
        state.out.print(str(status), highlight=False)
    if status is not ValidationStatus.AVAILABLE:
        raise typer.Exit(EXIT_NOT_AVAILABLE)


@app.command()
def book(
    customer_id: int,
    bookable_appointment_id: int,
    start: Annotated[
        str, typer.Argument(help="Slot start, e.g. 2022-06-22T08:00:00.000+02:00[Europe/Berlin]")
    ],
    end: Annotated[str, typer.Argument(help="Slot end, same form.")],
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip the validation call.")] = False,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Book a slot for a customer (never booked twice, even after a dropped connection)."""
    window = _Window(_parse_time(start, "start"), _parse_time(end, "end"))

    async def job() -> Booking:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.book(customer_id, bookable_appointment_id, window, validate=not no_validate)

    booking = run(job)
    if as_json:
        print_json(booking_json(booking))
    else:
        state.out.print(bookings_table([booking], "booked"))


@app.command()
def bookings(
    customer_id: int,
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
        state.out.print(bookings_table(found, f"bookings of customer {customer_id}"))


@app.command()
def cancel(
    booking_id: int,
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
        state.out.print(message)


@app.command("check-key")
def check_key(use_sandbox: SandboxOption = False, accept_language: LanguageOption = None) -> None:
    """Whether the API accepts PERFECTGYM_API_KEY (a HEAD request; its scopes are not checked).

    Prints valid or invalid, never the key. Exit status 0 if valid, 1 if not (or if the check
    could not be made: the error line says why).
    """

    async def job() -> bool:
        async with open_client(use_sandbox, accept_language) as client:
            return await client.check_api_key()

    valid = run(job)
    state.out.print("valid" if valid else "invalid", highlight=False)
    if not valid:
        raise typer.Exit(1)
