"""The ``sandbox`` command: the sandbox API server in the foreground, and its option checks.

One studio (``Sandbox``), or with ``--studios N`` many (``Studios``), each on its own port. The
checks run before anything starts: a port in use, a bad option or unreadable TLS files are one
error line and exit status 2.
"""

from __future__ import annotations

import math
import shlex
import socket
import ssl
import threading
from typing import Annotated

import typer

from ..sandbox import Faults, Sandbox, Studios
from ._common import command, err, fail

__all__ = ["sandbox"]

DEFAULT_RATE_LIMIT = "1000/60"
DEFAULT_API_KEY = "sandbox-key"
APPOINTMENTS_ONE, APPOINTMENTS_EACH = 132, 12  # one studio's; each of many studios'
# What `bookable` lists of one studio's default: the seed's 132 and the open gym the sandbox adds,
# less the two (one in 45) switched off for online booking. tests/test_cli.py checks it.
LISTED_ONE = 131


def _parse_rate_limit(text: str) -> tuple[int, float] | None:
    if text.strip().lower() == "off":
        return None
    requests, slash, seconds = text.partition("/")
    try:
        count, span = int(requests), float(seconds)
    except ValueError:
        count, span = 0, 0.0
    if not slash or count < 1 or not (span > 0 and math.isfinite(span)):
        fail(f"--rate-limit must be REQUESTS/SECONDS (e.g. 60/10) or off; got {text!r}")
    return count, span


def _check_tls_files(certfile: str, keyfile: str) -> None:
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        try:
            with open(path, "rb") as file:
                file.read(1)
        except OSError as exc:
            fail(f"{option} {path}: {exc.strerror or exc}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        fail(f"--ssl-certfile/--ssl-keyfile are not a PEM certificate and its private key ({reason})")


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
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _reachable_host(host: str) -> str:
    """The address a client on this machine uses for a sandbox bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def _print(lines: list[str]) -> None:
    for line in lines:
        err.print(line, highlight=False, soft_wrap=True, markup=False)


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
    _print(lines)


def _limit_text(limit: tuple[int, float] | None) -> str:
    if limit is None:
        return "no rate limit"
    return f"rate limit {limit[0]} requests per {limit[1]:g} s per endpoint"


def _studio_table(studios: Studios, host: str) -> list[str]:
    """The banner of ``--studios``: one line per studio (name, base URL, key, role), aligned."""
    reachable = _reachable_host(host)
    rows = [("name", "base URL", "API key", "role")] + [
        (s.name, s.base_url.replace(f"//{host}:", f"//{reachable}:", 1), s.api_key, s.role) for s in studios
    ]
    name, url, key = (max(len(row[column]) for row in rows) for column in range(3))
    table = [f"{row[0]:<{name}}  {row[1]:<{url}}  {row[2]:<{key}}  {row[3]}" for row in rows]
    first = rows[1]
    return [
        *table,
        f"export PERFECTGYM_BASE_URL={first[1]} PERFECTGYM_API_KEY={shlex.quote(first[2])}",
        f"customer {studios[0].demo_customer_id} may book anything in every studio "
        f"(try: perfectgym-appointments bookings {studios[0].demo_customer_id})",
    ]


def _serve_studios(
    count: int, *, varied: bool, host: str, port: int, seed: int, appointments: int,
    limit: tuple[int, float] | None, faults: Faults, quiet: bool,
) -> None:  # fmt: skip
    """``--studios N`` (N > 1): the studios on ``port`` to ``port + N - 1``, or on free ports."""
    if port and port + count - 1 > 65535:
        fail(f"--studios {count} from --port {port} runs past port 65535 (--port 0: free ports)")
    for each in range(port, port + count) if port else [0]:
        _free_port(host, each)  # a port in use (or a host not to bind) before anything starts
    make = Studios.varied if varied else Studios
    try:
        studios = make(
            count, seed=seed, appointments=appointments, host=host, port=port, rate_limit=limit, faults=faults
        )
    except ValueError as exc:
        fail(str(exc))
    where = f"ports {port}-{port + count - 1}" if port else "free ports"
    head = (
        f"{count} studios listening on {host}, {where} (seed {seed}+i, {_limit_text(limit)}); Ctrl-C stops it"
    )
    try:
        studios.run_forever(quiet=quiet, on_ready=lambda: _print([head, *_studio_table(studios, host)]))
    except OSError as exc:  # a port was taken between the check and the start
        fail(f"cannot listen on {host}: {exc.strerror or exc}")


@command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on, 1-65535 (0: a free one).")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Data seed.")] = 42,
    api_key: Annotated[
        str, typer.Option(help="The X-API-KEY clients must send (one studio; many: studio-<i>-key).")
    ] = DEFAULT_API_KEY,
    appointments: Annotated[
        int | None,
        typer.Option(
            help=f"Bookable appointments the seed makes (default {APPOINTMENTS_ONE}; with --studios, "
            f"{APPOINTMENTS_EACH} per studio). The sandbox adds an open gym and switches one in 45 (at "
            f"least one) off for online booking, which bookable does not list: by default it lists "
            f"{LISTED_ONE}. The banner says how many.",
            min=1,
            show_default=False,
            metavar="N",
        ),
    ] = None,
    studios: Annotated[
        int,
        typer.Option(
            help="Serve this many studios, each on its own port (from --port on, or free ones with "
            "--port 0) with its own key and data.",
        ),
    ] = 1,
    varied: Annotated[
        bool,
        typer.Option(
            "--varied",
            help="With --studios 6 or more: the showcase mix (ordinary, daysAhead max 3, sliceSize "
            "max 50, down, slow, rate-limited).",
        ),
    ] = False,
    rate_limit: Annotated[
        str,
        typer.Option(
            help="Rate limit per endpoint, e.g. 60/10: past it, 429 for the rest of the span; 'off' for none.",
            metavar="REQUESTS/SECONDS",
        ),
    ] = DEFAULT_RATE_LIMIT,
    latency: Annotated[
        float, typer.Option(help="Added latency per request, seconds.", min=0, metavar="SECONDS")
    ] = 0.0,
    latency_jitter: Annotated[
        float, typer.Option(help="Extra random latency, up to this many seconds.", min=0, metavar="SECONDS")
    ] = 0.0,
    rate_429: Annotated[
        float, typer.Option(help="Share of requests answered 429.", min=0, max=1, metavar="SHARE")
    ] = 0.0,
    rate_503: Annotated[
        float, typer.Option(help="Share of requests answered 503.", min=0, max=1, metavar="SHARE")
    ] = 0.0,
    rate_reset: Annotated[
        float, typer.Option(help="Share of connections reset.", min=0, max=1, metavar="SHARE")
    ] = 0.0,
    rate_commit_then_drop: Annotated[
        float,
        typer.Option(help="Share of bookings made, then the connection cut.", min=0, max=1, metavar="SHARE"),
    ] = 0.0,
    retry_after: Annotated[
        int | None,
        typer.Option(
            help="Send Retry-After with injected 429/503 (the API sends none).", min=0, metavar="SECONDS"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No access log.")] = False,
    ssl_certfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the certificate (PEM).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="Serve HTTPS: the private key (PEM).")] = None,
) -> None:
    """Run the sandbox API server in the foreground (Ctrl-C stops it).

    Once it listens it prints the export line for PERFECTGYM_BASE_URL / PERFECTGYM_API_KEY, a
    customer id that may book anything and how many appointments bookable lists; with --studios N,
    first a line per studio (name, base URL, key, role). A port in use, a bad option or unreadable TLS files give one error line and
    exit status 2 before anything starts.
    """
    limit = _parse_rate_limit(rate_limit)
    if not 0 <= port <= 65535:
        fail(f"--port must be 1-65535 (or 0 for a free one); got {port}")
    if studios < 1:
        fail(f"--studios must be 1 or more; got {studios}")
    if varied and studios < len(Studios.VARIED_ROLES):
        fail(f"--varied needs --studios {len(Studios.VARIED_ROLES)} or more; got --studios {studios}")
    if studios > 1 and api_key != DEFAULT_API_KEY:
        fail("--api-key is one studio's key: with --studios each studio has its own (studio-<i>-key)")
    if studios > 1 and (ssl_certfile is not None or ssl_keyfile is not None):
        fail("--studios serves HTTP only: leave out --ssl-certfile and --ssl-keyfile")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        fail("HTTPS needs both --ssl-certfile and --ssl-keyfile")
    if ssl_certfile is not None and ssl_keyfile is not None:
        _check_tls_files(ssl_certfile, ssl_keyfile)
    try:
        faults = Faults(
            latency=latency, latency_jitter=latency_jitter, rate_429=rate_429, rate_503=rate_503,
            rate_reset=rate_reset, rate_commit_then_drop=rate_commit_then_drop, retry_after=retry_after,
            seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))
    if studios > 1:
        _serve_studios(
            studios, varied=varied, host=host, port=port, seed=seed, limit=limit, faults=faults,
            appointments=APPOINTMENTS_EACH if appointments is None else appointments, quiet=quiet,
        )  # fmt: skip
        return
    try:
        port = _free_port(host, port)
        sb = Sandbox(
            seed, api_key=api_key, host=host, port=port, faults=faults, ssl_certfile=ssl_certfile,
            appointments=APPOINTMENTS_ONE if appointments is None else appointments,
            ssl_keyfile=ssl_keyfile, rate_limit=limit,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))

    base_url = sb.base_url.replace(f"//{host}:", f"//{_reachable_host(host)}:", 1)
    listed = len(sb.store.listed())
    lines = [
        f"sandbox listening on {sb.base_url} (seed {seed}, {_limit_text(limit)}); Ctrl-C stops it",
        f"export PERFECTGYM_BASE_URL={base_url} PERFECTGYM_API_KEY={shlex.quote(sb.api_key)}",
        f"customer {sb.demo_customer_id} may book anything "
        f"(try: perfectgym-appointments bookings {sb.demo_customer_id})",
        f"{listed} bookable appointments listed, and {len(sb.store.appointments) - listed} switched off "
        "for online booking (not listed)",
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
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    finally:
        stopped.set()
