"""The ``sandbox`` command: the sandbox API server in the foreground, and its option checks.

The checks run before anything starts: a port in use, a bad option or unreadable TLS files are
one error line and exit status 2.
"""

from __future__ import annotations

import math
import shlex
import socket
import ssl
import threading
from typing import Annotated

import typer

from ..sandbox import Faults, Sandbox
from ._common import app, err, fail

__all__ = ["sandbox"]

DEFAULT_RATE_LIMIT = "1000/60"


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
        fail(f"--port must be 1-65535 (or 0 for a free one); got {port}")
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
        port = _free_port(host, port)
        sb = Sandbox(
            seed, api_key=api_key, host=host, port=port, faults=faults, appointments=appointments,
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, rate_limit=limit,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))

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
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    finally:
        stopped.set()
