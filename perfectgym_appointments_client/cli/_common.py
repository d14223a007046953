"""What every command shares: the typer app, the consoles, the options, the client and errors.

It imports nothing else of ``cli``, and no module of ``cli`` imports ``__init__``, so the
imports run one way and never in a cycle.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

try:
    import anyio
    import typer
    from rich.console import Console
    from rich.markup import escape
except ImportError as exc:  # pragma: no cover - only without the [cli] extra
    raise SystemExit(
        f"the perfectgym-appointments CLI needs the cli extra (in a clone: pip install -e '.[cli]') ({exc})"
    ) from exc

from .. import APIStatusError, AppointmentsClient, PerfectGymError
from .._constants import DEFAULT_HTTP_BACKEND, ENV_ACCEPT_LANGUAGE, ENV_HTTP_BACKEND, HTTP_BACKENDS
from .._generated.models.language import Language
from ..sandbox import Sandbox

__all__ = [
    "JsonOption",
    "LanguageOption",
    "SandboxOption",
    "app",
    "err",
    "fail",
    "open_client",
    "run",
    "state",
]

T = TypeVar("T")

# Piped or in CI there is no screen to fit: rich would assume 80 columns (or $COLUMNS) and squash
# table cells into "…". This is wide enough for every table to take its natural width.
UNBOUNDED_WIDTH = 1000
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


class _Invocation:
    """What the app's callback settles for the command that runs next.

    An object whose attributes change, not module globals that are rebound: the command modules
    import it by name, and a rebound global would leave them holding the first value.
    """

    def __init__(self) -> None:
        self.out = _stdout_console()
        self.http_backend = DEFAULT_HTTP_BACKEND


state = _Invocation()


def _check_backend(value: str) -> str:
    if value not in HTTP_BACKENDS:
        fail(f"--http-backend must be one of {', '.join(HTTP_BACKENDS)}; got {value!r}")
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
    state.out = _stdout_console()
    state.http_backend = backend


def fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr (scripts grep it, however narrow the terminal) and the exit status."""
    err.print(f"[red]error[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def _check_language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    tag = _LANGUAGES.get(value.strip().lower())
    if tag is None:
        fail(f"--accept-language must be one of {', '.join(_LANGUAGES.values())}; got {value!r}")
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


@contextlib.asynccontextmanager
async def open_client(sandbox: bool, language: str | None = None) -> AsyncIterator[AppointmentsClient]:
    backend = state.http_backend
    if sandbox:
        async with (
            Sandbox() as sb,
            AppointmentsClient(
                api_key=sb.api_key, base_url=sb.base_url, accept_language=language, http_backend=backend
            ) as client,
        ):
            yield client
    else:
        async with AppointmentsClient(accept_language=language, http_backend=backend) as client:
            yield client


def run(job: Callable[[], Awaitable[T]]) -> T:
    """Run one async job; any error of ours becomes one readable line and exit status 1."""
    try:
        return anyio.run(job)
    except APIStatusError as exc:
        code = exc.error_code or "-"
        fail(
            f"HTTP {exc.status_code} {code}: {exc.error_message} "
            f"({exc.operation}; trace id {exc.trace_id or '-'})",
            1,
        )
    except (PerfectGymError, ValueError, TypeError) as exc:
        fail(f"{type(exc).__name__}: {exc}", 1)
