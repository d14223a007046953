"""The ``perfectgym-appointments`` command line: a demo, a local sandbox, and one command per task.

Every command but ``demo`` and ``sandbox`` talks to ``PERFECTGYM_BASE_URL`` with
``PERFECTGYM_API_KEY`` (or, with ``--sandbox``, to a sandbox started for the command). Errors are
one line with the error code and trace id, and a non-zero exit status. The key is never printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

try:
    import anyio
    import typer
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - only without the [cli] extra
    raise SystemExit(
        f"the perfectgym-appointments CLI needs its extra: pip install 'perfectgym-appointments-client[cli]' ({exc})"
    ) from exc

from . import (
    APIStatusError,
    AppointmentsClient,
    BookableAppointment,
    Booking,
    PerfectGymError,
    Slot,
    ValidationStatus,
    format_zoned_datetime,
    parse_zoned_datetime,
)
from .sandbox import Faults, Sandbox, serve

T = TypeVar("T")

app = typer.Typer(
    name="perfectgym-appointments",
    help="PerfectGym Next appointments from the command line (and a local sandbox to try it on).",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

SandboxOption = Annotated[
    bool, typer.Option("--sandbox", help="Start a local sandbox for this command and use it.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


# -- plumbing ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _client(sandbox: bool) -> AsyncIterator[AppointmentsClient]:
    if sandbox:
        async with Sandbox() as sb, AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client:
            yield client
    else:
        async with AppointmentsClient() as client:
            yield client


def _run(job: Callable[[], Awaitable[T]]) -> T:
    """Run one async job; any error of ours becomes one readable line and exit status 1."""
    try:
        return anyio.run(job)
    except APIStatusError as exc:
        code = exc.error_code or "-"
        err.print(
            f"[red]error[/red] HTTP {exc.status_code} {code}: {exc.error_message} "
            f"({exc.operation}; trace id {exc.trace_id or '-'})",
            highlight=False,
            soft_wrap=True,  # one line, however narrow the terminal: scripts grep it
        )
    except (PerfectGymError, ValueError, TypeError) as exc:
        err.print(f"[red]error[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _when(value: dt.datetime) -> str:
    return value.strftime("%a %d %b %H:%M")


def _parse_time(text: str, name: str) -> dt.datetime:
    try:
        return parse_zoned_datetime(text, name)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(
            f"{exc} (e.g. 2022-06-22T08:00:00.000+02:00[Europe/Berlin])", param_hint=name
        ) from None


class _Window:
    """A slot given on the command line."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start_date_time = start
        self.end_date_time = end


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _booking_json(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": booking.booking_id,
        "customerId": booking.customer_id,
        "bookingStatus": str(booking.booking_status),
        "needsConfirmation": booking.needs_confirmation,
        "startDateTime": format_zoned_datetime(booking.start_date_time),
        "endDateTime": format_zoned_datetime(booking.end_date_time),
        "title": booking.title,
        "appointmentStatus": str(booking.appointment_status),
        "participantStatus": str(booking.participant_status),
    }


def _appointments_table(appointments: list[BookableAppointment], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "title", "category", "minutes"):
        table.add_column(column, justify="right" if column in ("id", "minutes") else "left")
    for a in appointments:
        table.add_row(str(a.id), str(a.title or ""), str(a.category or ""), str(a.duration or ""))
    return table


def _slots_table(slots: list[Slot], title: str) -> Table:
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("day")
    table.add_column("start")
    table.add_column("end")
    table.add_column("instructors")
    for n, s in enumerate(slots, 1):
        names = ", ".join(f"{i.first_name} {i.last_name}" for i in s.instructors or [])
        table.add_row(
            str(n), s.start_date_time.strftime("%a %d %b"), s.start_date_time.strftime("%H:%M"),
            s.end_date_time.strftime("%H:%M"), names,
        )  # fmt: skip
    return table


def _bookings_table(bookings: list[Booking], title: str) -> Table:
    table = Table(title=title)
    for column in ("booking", "title", "when", "status", "appointment", "participant"):
        table.add_column(column)
    for b in bookings:
        status = str(b.booking_status) + (" (awaiting studio confirmation)" if b.needs_confirmation else "")
        table.add_row(
            str(b.booking_id), b.title or "", f"{_when(b.start_date_time)}-{b.end_date_time:%H:%M}",
            status, str(b.appointment_status), str(b.participant_status),
        )  # fmt: skip
    return table


# -- commands ---------------------------------------------------------------------------------------


@app.command()
def demo(seed: Annotated[int, typer.Option(help="Sandbox data seed.")] = 42) -> None:
    """Walk the whole flow against an in-process sandbox: no API key, no network."""

    async def job() -> None:
        async with (
            Sandbox(seed=seed) as sb,
            AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client,
        ):
            out.rule("[bold]PerfectGym appointments: demo against a local sandbox")
            out.print(f"sandbox at {sb.base_url} (seed {seed}); customer {sb.demo_customer_id}\n")

            pages = 0
            appointments: list[BookableAppointment] = []
            async for page in client.bookable_appointments(slice_size=50).pages():
                pages += 1
                appointments.extend(page.items)
            out.print(f"1. {len(appointments)} bookable appointments, listed in {pages} pages of up to 50")
            out.print(_appointments_table(appointments[:8], "first bookable appointments"))

            customer = sb.demo_customer_id
            appointment, slots = None, []
            for candidate in appointments:
                slots = await client.get_slots(candidate.id, customer_id=customer, days_ahead=7)
                if len(slots) >= 2:
                    appointment = candidate
                    break
            if appointment is None:
                raise PerfectGymError("the sandbox offered no slots this week")
            out.print(f"\n2. free slots of '{appointment.title}' this week ({len(slots)} in all)")
            out.print(_slots_table(slots[:10], f"{appointment.title}: first slots"))

            slot = slots[0]
            status = await client.validate_slot(customer, appointment.id, slot)
            out.print(
                f"\n3. validate {_when(slot.start_date_time)} for customer {customer}: [bold]{status}[/bold]"
            )
            if status is not ValidationStatus.AVAILABLE:
                raise PerfectGymError(f"the first slot is not bookable: {status}")

            booking = await client.book(customer, appointment.id, slot)
            out.print(f"\n4. booked: booking {booking.booking_id}, {booking.booking_status}")
            out.print(_bookings_table([booking], "the new booking"))

            out.print(f"\n5. bookings of customer {customer}")
            out.print(_bookings_table(await client.list_bookings(customer), f"customer {customer}"))

            moved = await client.reschedule(
                booking.booking_id, slots[1], bookable_appointment_id=appointment.id
            )
            out.print(
                f"\n6. rescheduled to {_when(moved.start_date_time)}: new booking {moved.booking_id}, "
                f"old booking {booking.booking_id} canceled"
            )
            out.print(
                _bookings_table(await client.list_bookings(customer), f"customer {customer} after reschedule")
            )

            message = await client.cancel_booking(moved.booking_id)
            out.print(f"\n7. canceled booking {moved.booking_id}: {message}")
            out.print(
                _bookings_table(await client.list_bookings(customer), f"customer {customer} at the end")
            )
            out.rule("[bold green]demo finished")

    _run(job)


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Data seed.")] = 42,
    api_key: Annotated[str, typer.Option(help="The X-API-KEY clients must send.")] = "sandbox-key",
    appointments: Annotated[int, typer.Option(help="Number of bookable appointments.", min=1)] = 132,
    latency: Annotated[float, typer.Option(help="Added latency per request, seconds.", min=0)] = 0.0,
    latency_jitter: Annotated[
        float, typer.Option(help="Extra random latency, up to this many seconds.", min=0)
    ] = 0.0,
    rate_429: Annotated[float, typer.Option(help="Share of requests answered 429.", min=0, max=1)] = 0.0,
    rate_503: Annotated[float, typer.Option(help="Share of requests answered 503.", min=0, max=1)] = 0.0,
    rate_reset: Annotated[float, typer.Option(help="Share of connections reset.", min=0, max=1)] = 0.0,
    rate_commit_then_drop: Annotated[
        float, typer.Option(help="Share of bookings made, then the connection cut.", min=0, max=1)
    ] = 0.0,
    retry_after: Annotated[int, typer.Option(help="Retry-After seconds on 429/503.", min=0)] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access log.")] = False,
    ssl_certfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the certificate (PEM).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the private key (PEM).")] = None,
) -> None:
    """Run the sandbox API server in the foreground (Ctrl-C stops it)."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        err.print("[red]error[/red] HTTPS needs both --ssl-certfile and --ssl-keyfile", highlight=False)
        raise typer.Exit(2)
    scheme = "https" if ssl_certfile else "http"
    if not quiet:
        err.print(
            f"sandbox on {scheme}://{host}:{port} -- export PERFECTGYM_BASE_URL={scheme}://{host}:{port} "
            "PERFECTGYM_API_KEY=<the --api-key you chose>",
            soft_wrap=True,
        )
    try:
        faults = Faults(
            latency=latency, latency_jitter=latency_jitter, rate_429=rate_429, rate_503=rate_503,
            rate_reset=rate_reset, rate_commit_then_drop=rate_commit_then_drop, retry_after=retry_after,
            seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    serve(
        host=host,
        port=port,
        seed=seed,
        api_key=api_key,
        faults=faults,
        appointments=appointments,
        quiet=quiet,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )


@app.command()
def bookable(
    slice_size: Annotated[int, typer.Option(help="Items per request (1-100).")] = 50,
    limit: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
) -> None:
    """List bookable appointments (all pages)."""

    async def job() -> list[BookableAppointment]:
        found: list[BookableAppointment] = []
        async with _client(use_sandbox) as client:
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
            ) as progress:
                task = progress.add_task("listing bookable appointments", total=None)
                async for page in client.bookable_appointments(slice_size=slice_size, limit=limit).pages():
                    found.extend(page.items)
                    progress.update(task, description=f"page {page.number}: {len(found)} appointments")
        return found[:limit] if limit else found

    appointments = _run(job)
    if as_json:
        _print_json([a.to_dict() for a in appointments])
    else:
        out.print(_appointments_table(appointments, f"{len(appointments)} bookable appointments"))


@app.command()
def slots(
    bookable_appointment_id: int,
    customer_id: Annotated[int | None, typer.Option(help="Only slots this customer may book.")] = None,
    days_ahead: Annotated[int | None, typer.Option(help="Days to search.")] = None,
    start_date: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
) -> None:
    """Free slots of one bookable appointment."""
    first_day = dt.date.fromisoformat(start_date) if start_date else None

    async def job() -> list[Slot]:
        async with _client(use_sandbox) as client:
            return await client.get_slots(bookable_appointment_id, customer_id, days_ahead, first_day)

    found = _run(job)
    if as_json:
        _print_json([s.to_dict() for s in found])
    else:
        out.print(_slots_table(found, f"{len(found)} free slots of {bookable_appointment_id}"))


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
) -> None:
    """Whether a customer may book a slot."""
    window = _Window(_parse_time(start, "start"), _parse_time(end, "end"))

    async def job() -> ValidationStatus:
        async with _client(use_sandbox) as client:
            return await client.validate_slot(customer_id, bookable_appointment_id, window)

    status = _run(job)
    if as_json:
        _print_json({"validationStatus": str(status)})
    else:
        out.print(str(status))


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
) -> None:
    """Book a slot for a customer (never booked twice, even after a dropped connection)."""
    window = _Window(_parse_time(start, "start"), _parse_time(end, "end"))

    async def job() -> Booking:
        async with _client(use_sandbox) as client:
            return await client.book(customer_id, bookable_appointment_id, window, validate=not no_validate)

    booking = _run(job)
    if as_json:
        _print_json(_booking_json(booking))
    else:
        out.print(_bookings_table([booking], "booked"))


@app.command()
def bookings(customer_id: int, as_json: JsonOption = False, use_sandbox: SandboxOption = False) -> None:
    """A customer's appointment bookings."""

    async def job() -> list[Booking]:
        async with _client(use_sandbox) as client:
            return await client.list_bookings(customer_id)

    found = _run(job)
    if as_json:
        _print_json([_booking_json(b) for b in found])
    else:
        out.print(_bookings_table(found, f"bookings of customer {customer_id}"))


@app.command()
def cancel(booking_id: int, as_json: JsonOption = False, use_sandbox: SandboxOption = False) -> None:
    """Cancel a booking."""

    async def job() -> str:
        async with _client(use_sandbox) as client:
            return await client.cancel_booking(booking_id)

    message = _run(job)
    if as_json:
        _print_json({"bookingId": booking_id, "success": message})
    else:
        out.print(message)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
