"""What every command shares: the typer app, the consoles, the options, the client and errors.

It imports nothing else of ``cli``, and no module of ``cli`` imports ``__init__``, so the
imports run one way and never in a cycle.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Any, NoReturn, Protocol, TypeVar, cast

try:
    import anyio
    import typer
    from rich.console import Console
    from rich.markup import escape
    from typer.core import TyperGroup
except ImportError as exc:  # pragma: no cover - only without the [cli] extra
    raise SystemExit(
        f"the perfectgym-appointments CLI needs the cli extra (in a clone: pip install -e '.[cli]') ({exc})"
    ) from exc

from .. import APIStatusError, AppointmentsClient, ConfigurationError, PerfectGymError
from .._constants import DEFAULT_HTTP_BACKEND, ENV_ACCEPT_LANGUAGE, ENV_HTTP_BACKEND, HTTP_BACKENDS
from .._generated.models.language import Language
from ..sandbox import Sandbox

__all__ = [
    "EXIT_BAD_ARGUMENT",
    "EXIT_FAILED",
    "JsonOption",
    "LanguageOption",
    "SandboxOption",
    "app",
    "command",
    "err",
    "fail",
    "open_client",
    "run",
    "state",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1  # the API or the connection
EXIT_BAD_ARGUMENT = 2  # an argument, an option or a setting (PERFECTGYM_API_KEY, PERFECTGYM_BASE_URL)

# Piped or in CI there is no screen to fit, and $COLUMNS there says little (rich would take it,
# or 80): output is laid out for a wide terminal instead, and tables and rules share that width.
PIPED_WIDTH = 120
_LANGUAGES = {language.value.lower(): language.value for language in Language}


class _UsageError(Protocol):
    exit_code: int
    ctx: Any

    def format_message(self) -> str: ...


def _usage_error_class() -> type[Exception]:
    # click's UsageError: typer 0.27 carries its own copy of click, older typers use click's.
    for klass in typer.BadParameter.__mro__:
        if klass.__name__ == "UsageError":
            return cast("type[Exception]", klass)
    return typer.BadParameter  # pragma: no cover - every click has it


_USAGE_ERROR = _usage_error_class()


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """A usage error (a bad option value, a missing argument, an unknown command) as one line,
    like every other error of the command, instead of typer's usage text and panel."""
    try:
        yield
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments at all: the help is the answer
            raise
        error = cast("_UsageError", exc)
        hint = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
        fail(f"{error.format_message()}{hint}", error.exit_code)


class _Group(TyperGroup):
    """The app's group: its own and its commands' usage errors are one line (``fail``)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="perfectgym-appointments",
    cls=_Group,
    help="PerfectGym Next appointments from the command line (and a local sandbox to try it on).",
    epilog="Exit status: 0 done; 1 the API or the connection failed (check-key: the key is refused); "
    "2 a bad argument, option or setting (PERFECTGYM_API_KEY or PERFECTGYM_BASE_URL missing or "
    "malformed); 3 validate: the slot is not AVAILABLE.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


def _paragraphs(doc: str) -> str:
    """A docstring as help: each paragraph on one line, for rich to wrap to the terminal (typer
    keeps the line breaks of every paragraph after the first as they are in the source)."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(doc).split("\n\n"))


def command(name: str | None = None, *, more: str = "") -> Callable[[F], F]:
    """Register a command on ``app``, its help its docstring (``_paragraphs``) and ``more``, a
    paragraph several commands share."""

    def register(func: F) -> F:
        doc = inspect.cleandoc(func.__doc__ or "")
        app.command(name, help=_paragraphs(f"{doc}\n\n{more}" if more else doc))(func)
        return func

    return register


def _stdout_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


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
            # Escaped: rich reads [aiohttp] as markup and drops it.
            help=escape("The HTTP library the client sends with: httpx, or aiohttp (the [aiohttp] extra)."),
            show_envvar=True,
        ),
    ] = DEFAULT_HTTP_BACKEND,
) -> None:
    # Built per invocation, not at import: whether stdout is a terminal can differ between runs
    # in one process (typer's CliRunner, an embedding program).
    state.out = _stdout_console()
    state.http_backend = backend


def fail(message: str, status: int = EXIT_BAD_ARGUMENT) -> NoReturn:
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
    """Run one async job; any error of ours becomes one readable line and its exit status.

    A ``ValueError``/``TypeError`` is the library refusing an argument before any request
    (``days_ahead`` out of range, a slot that ends before it starts), a ``ConfigurationError`` a
    missing or malformed key or base URL: exit status 2, as for a bad option. Any other error of
    the library is the API or the connection: 1.
    """
    try:
        return anyio.run(job)
    except APIStatusError as exc:
        code = exc.error_code or "-"
        fail(
            f"HTTP {exc.status_code} {code}: {exc.error_message} "
            f"({exc.operation}; trace id {exc.trace_id or '-'})",
            EXIT_FAILED,
        )
    except ConfigurationError as exc:  # before PerfectGymError: it is one too (and a ValueError)
        fail(f"{type(exc).__name__}: {exc}", EXIT_BAD_ARGUMENT)
    except PerfectGymError as exc:
        fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED)
    except (ValueError, TypeError) as exc:
        fail(f"invalid argument: {exc}", EXIT_BAD_ARGUMENT)
