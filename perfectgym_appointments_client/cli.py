"""The ``perfectgym-appointments`` command line: a demo, a local sandbox, and one command per task.

Every command but ``demo`` and ``sandbox`` talks to ``PERFECTGYM_BASE_URL`` with
``PERFECTGYM_API_KEY`` (or, with ``--sandbox``, to a sandbox started for the command). Errors are
one line with the error code and trace id, and a non-zero exit status. The key is never printed.

Exit statuses: 0 done; 1 the API or the connection failed (or ``check-key``: the key is refused);
2 a bad argument or option; 3 ``validate``: the slot is not AVAILABLE.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import shlex
import socket
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

try:
    import anyio
    import typer
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn
    from rich.rule import Rule
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - only without the [cli] extra
    raise SystemExit(
        f"the perfectgym-appointments CLI needs the cli extra (in a clone: pip install -e '.[cli]') ({exc})"
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
from ._constants import DEFAULT_HTTP_BACKEND, ENV_ACCEPT_LANGUAGE, ENV_HTTP_BACKEND, HTTP_BACKENDS
from ._generated.models.language import Language
from .sandbox import Faults, Sandbox

T = TypeVar("T")

EXIT_NOT_AVAILABLE = 3
DEFAULT_RATE_LIMIT = "1000/60"
# Piped or in CI there is no screen to fit: rich would assume 80 columns (or $COLUMNS) and squash
# table cells into "…". This is wide enough for every table to take its natural width.
UNBOUNDED_WIDTH = 1000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LANGUAGES = {language.value.lower(): language.value for language in Language}

app = typer.Typer(
    name="perfectgym-appointments",
    help="PerfectGym Next appointments from the command line (and a local sandbox to try it on).",
    epilog="Exit status: 0 done; 1 the API or the connection failed (check-key: the key is refused); "
    "2 a bad argument; 3 validate: the slot is not AVAILABLE.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


def _stdout_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=UNBOUNDED_WIDTH)


out = _stdout_console()
http_backend = DEFAULT_HTTP_BACKEND


def _check_backend(value: str) -> str:
    if value not in HTTP_BACKENDS:
        _fail(f"--http-backend must be one of {', '.join(HTTP_BACKENDS)}; got {value!r}")
    return value


@app.callback()
def _each_invocation(
    backend: Annotated[
        str,
        typer.Option(
            "--http-backend",
            envvar=ENV_HTTP_BACKEND,
            callback=_check_backend,
            help="The HTTP library the client sends with: httpx, or aiohttp (the [aiohttp] extra).",
            show_envvar=True,
        ),
    ] = DEFAULT_HTTP_BACKEND,
) -> None:
    # Built per invocation, not at import: whether stdout is a terminal can differ between runs
    # in one process (typer's CliRunner, an embedding program).
    global out, http_backend
    out = _stdout_console()
    http_backend = backend


def _fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr (scripts grep it, however narrow the terminal) and the exit status."""
    err.print(f"[red]error[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def _check_language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    tag = _LANGUAGES.get(value.strip().lower())
    if tag is None:
        _fail(f"--accept-language must be one of {', '.join(_LANGUAGES.values())}; got {value!r}")
    return tag


SandboxOption = Annotated[
    bool, typer.Option("--sandbox", help="Start a local sandbox for this command and use it.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--accept-language",
        envvar=ENV_ACCEPT_LANGUAGE,
        callback=_check_language,
        help="Language of the API's error messages (Accept-Language), e.g. de, en-GB.",
        show_envvar=True,
    ),
]


# -- plumbing ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _client(sandbox: bool, language: str | None = None) -> AsyncIterator[AppointmentsClient]:
    if sandbox:
        async with (
            Sandbox() as sb,
            AppointmentsClient(
                api_key=sb.api_key, base_url=sb.base_url, accept_language=language, http_backend=http_backend
            ) as client,
        ):
            yield client
    else:
        async with AppointmentsClient(accept_language=language, http_backend=http_backend) as client:
            yield client


def _run(job: Callable[[], Awaitable[T]]) -> T:
    """Run one async job; any error of ours becomes one readable line and exit status 1."""
    try:
        return anyio.run(job)
    except APIStatusError as exc:
        code = exc.error_code or "-"
        _fail(
            f"HTTP {exc.status_code} {code}: {exc.error_message} "
            f"({exc.operation}; trace id {exc.trace_id or '-'})",
            1,
        )
    except (PerfectGymError, ValueError, TypeError) as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)


def _when(value: dt.datetime) -> str:
    return value.strftime("%a %d %b %H:%M")


def _parse_time(text: str, name: str) -> dt.datetime:
    try:
        return parse_zoned_datetime(text, name)
    except (TypeError, ValueError) as exc:
        _fail(f"invalid value for {name.upper()}: {exc} (e.g. 2022-06-22T08:00:00.000+02:00[Europe/Berlin])")


def _parse_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        # fromisoformat alone also takes 20261201 and week dates; the API wants 2026-12-01.
        if not _DATE.fullmatch(text):
            raise ValueError("not in the form YYYY-MM-DD")
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        _fail(f"invalid value for {option}: {text!r} is not a date like 2026-12-01 ({exc})")


def _parse_rate_limit(text: str) -> tuple[int, float] | None:
    if text.strip().lower() == "off":
        return None
    requests, slash, seconds = text.partition("/")
    try:
        count, span = int(requests), float(seconds)
    except ValueError:
        count, span = 0, 0.0
    if not slash or count < 1 or not (span > 0 and math.isfinite(span)):
        _fail(f"--rate-limit must be REQUESTS/SECONDS (e.g. 60/10) or off; got {text!r}")
    return count, span


class _Window:
    """A slot given on the command line."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start_date_time = start
        self.end_date_time = end


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _rule(title: str) -> None:
    # A rule spans the console; on an unbounded (piped) console keep it to a readable length.
    out.print(Rule(title), width=min(out.width, 100))


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
            _rule("[bold]PerfectGym appointments: demo against a local sandbox")
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
                # A week: the client asks for it as two windows (the API answers at most 6 days).
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
            _rule("[bold green]demo finished")

    _run(job)


def _check_tls_files(certfile: str, keyfile: str) -> None:
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        try:
            with open(path, "rb") as file:
                file.read(1)
        except OSError as exc:
            _fail(f"{option} {path}: {exc.strerror or exc}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        _fail(f"--ssl-certfile/--ssl-keyfile are not a PEM certificate and its private key ({reason})")


def _free_port(host: str, port: int) -> int:
    """Bind as the sandbox will and let go: a port in use is refused before anything starts.

    Port 0 becomes the free port the system picked.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            return int(sock.getsockname()[1])
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _reachable_host(host: str) -> str:
    """The address a client on this machine uses for a sandbox bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def _announce_when_listening(host: str, port: int, lines: list[str], stopped: threading.Event) -> None:
    # The banner claims the sandbox runs, so it waits until a connection is accepted.
    while not stopped.is_set():
        try:
            with socket.create_connection((host, port), timeout=1):
                break
        except OSError:
            stopped.wait(0.05)
    else:
        return
    for line in lines:
        err.print(line, highlight=False, soft_wrap=True, markup=False)


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on, 1-65535 (0: a free one).")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Data seed.")] = 42,
    api_key: Annotated[str, typer.Option(help="The X-API-KEY clients must send.")] = "sandbox-key",
    appointments: Annotated[int, typer.Option(help="Number of bookable appointments.", min=1)] = 132,
    rate_limit: Annotated[
        str,
        typer.Option(
            help="Rate limit per endpoint, e.g. 60/10: past it, 429 for the rest of the span; 'off' for none.",
            metavar="REQUESTS/SECONDS",
        ),
    ] = DEFAULT_RATE_LIMIT,
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
    retry_after: Annotated[
        int | None,
        typer.Option(help="Send Retry-After with injected 429/503 (the API sends none).", min=0),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access log.")] = False,
    ssl_certfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the certificate (PEM).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the private key (PEM).")] = None,
) -> None:
    """Run the sandbox API server in the foreground (Ctrl-C stops it).

    Once it listens it prints the export line for PERFECTGYM_BASE_URL / PERFECTGYM_API_KEY and
    a customer id that may book anything. A port in use, a bad option or unreadable TLS files
    give one error line and exit status 2 before anything starts.
    """
    limit = _parse_rate_limit(rate_limit)
    if not 0 <= port <= 65535:
        _fail(f"--port must be 1-65535 (or 0 for a free one); got {port}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        _fail("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    if ssl_certfile is not None and ssl_keyfile is not None:
        _check_tls_files(ssl_certfile, ssl_keyfile)
    try:
        faults = Faults(
            latency=latency, latency_jitter=latency_jitter, rate_429=rate_429, rate_503=rate_503,
            rate_reset=rate_reset, rate_commit_then_drop=rate_commit_then_drop, retry_after=retry_after,
            seed=seed,
        )  # fmt: skip
        port = _free_port(host, port)
        sb = Sandbox(
            seed, api_key=api_key, host=host, port=port, faults=faults, appointments=appointments,
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, rate_limit=limit,
        )  # fmt: skip
    except ValueError as exc:
        _fail(str(exc))

    base_url = sb.base_url.replace(f"//{host}:", f"//{_reachable_host(host)}:", 1)
    limit_text = (
        "no rate limit"
        if limit is None
        else f"rate limit {limit[0]} requests per {limit[1]:g} s per endpoint"
    )
    lines = [
        f"sandbox listening on {sb.base_url} (seed {seed}, {limit_text}); Ctrl-C stops it",
        f"export PERFECTGYM_BASE_URL={base_url} PERFECTGYM_API_KEY={shlex.quote(sb.api_key)}",
        f"customer {sb.demo_customer_id} may book anything "
        f"(try: perfectgym-appointments bookings {sb.demo_customer_id})",
    ]
    if sb.read_only_api_key is not None:
        lines.append(f"read-only key (403 on book and cancel): {shlex.quote(sb.read_only_api_key)}")
    stopped = threading.Event()
    announcer = threading.Thread(
        target=_announce_when_listening,
        args=(_reachable_host(host), port, lines, stopped),
        daemon=True,
    )
    announcer.start()
    try:
        sb.run_forever(quiet=quiet)
    except OSError as exc:  # the port was taken between the check and the start
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    finally:
        stopped.set()


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
        async with _client(use_sandbox, accept_language) as client:
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
        async with _client(use_sandbox, accept_language) as client:
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
    accept_language: LanguageOption = None,
) -> None:
    """Whether a customer may book a slot: prints the ValidationStatus.

    Exit status 0 if it is AVAILABLE, 3 if it is anything else (1 if the call failed).
    """
    window = _Window(_parse_time(start, "start"), _parse_time(end, "end"))

    async def job() -> ValidationStatus:
        async with _client(use_sandbox, accept_language) as client:
            return await client.validate_slot(customer_id, bookable_appointment_id, window)

    status = _run(job)
    if as_json:
        _print_json({"validationStatus": str(status)})
    else:
        out.print(str(status), highlight=False)
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
        async with _client(use_sandbox, accept_language) as client:
            return await client.book(customer_id, bookable_appointment_id, window, validate=not no_validate)

    booking = _run(job)
    if as_json:
        _print_json(_booking_json(booking))
    else:
        out.print(_bookings_table([booking], "booked"))


@app.command()
def bookings(
    customer_id: int,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """A customer's appointment bookings (those within two weeks of now, canceled ones included)."""

    async def job() -> list[Booking]:
        async with _client(use_sandbox, accept_language) as client:
            return await client.list_bookings(customer_id)

    found = _run(job)
    if as_json:
        _print_json([_booking_json(b) for b in found])
    else:
        out.print(_bookings_table(found, f"bookings of customer {customer_id}"))


@app.command()
def cancel(
    booking_id: int,
    as_json: JsonOption = False,
    use_sandbox: SandboxOption = False,
    accept_language: LanguageOption = None,
) -> None:
    """Cancel a booking."""

    async def job() -> str:
        async with _client(use_sandbox, accept_language) as client:
            return await client.cancel_booking(booking_id)

    message = _run(job)
    if as_json:
        _print_json({"bookingId": booking_id, "success": message})
    else:
        out.print(message)


@app.command("check-key")
def check_key(use_sandbox: SandboxOption = False, accept_language: LanguageOption = None) -> None:
    """Whether the API accepts PERFECTGYM_API_KEY (a HEAD request; its scopes are not checked).

    Prints valid or invalid, never the key. Exit status 0 if valid, 1 if not (or if the check
    could not be made: the error line says why).
    """

    async def job() -> bool:
        async with _client(use_sandbox, accept_language) as client:
            return await client.check_api_key()

    valid = _run(job)
    out.print("valid" if valid else "invalid", highlight=False)
    if not valid:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
