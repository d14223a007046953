"""What the sections share: canned answers, the servers each in a process of its own (the sandbox,
``serve_fixed``), ``drive`` and the profiler's breakdown, and the report's verdict and profile
sentences. A server in its own process does not share the client's GIL, so its work is not counted
as the client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import datetime as dt
import json
import pstats
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import trustme

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"
BASE = "http://api.test"
APPOINTMENT = 1229489023


# -- canned answers for the in-process transport -----------------------------------------------------


def page_payload(count: int = 50) -> bytes:
    items = [
        {
            "id": 1229489000 + i,
            "title": f"Personal Training {i}",
            "duration": 60,
            "category": "Training",
            "description": "One hour of personal training with a coach of your choice.",
            "imgUrl": f"https://example.com/img/{i}.png",
        }
        for i in range(count)
    ]
    return json.dumps({"result": items, "hasNext": False, "offset": str(items[-1]["id"])}).encode()


def slots_payload(count: int = 30) -> bytes:
    start = dt.datetime(2026, 3, 23, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    slots = []
    for i in range(count):
        begin = start + dt.timedelta(hours=i)
        end = begin + dt.timedelta(hours=1)
        slots.append(
            {
                "startDateTime": begin.strftime("%Y-%m-%dT%H:%M:%S.000+01:00[Europe/Berlin]"),
                "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%S.000+01:00[Europe/Berlin]"),
                "instructors": [
                    {
                        "id": 1210000080,
                        "firstName": "Anna",
                        "lastName": "Schmidt",
                        "publicName": "Coach Anna",
                    },
                    {"id": 1210000081, "firstName": "Ben", "lastName": "Meyer", "publicName": None},
                ],
            }
        )
    return json.dumps(slots).encode()


def canned_transport(latency: float = 0.0) -> httpx.AsyncBaseTransport:
    page, slots = page_payload(), slots_payload()
    headers = {"content-type": "application/json"}

    async def handler(request: httpx.Request) -> httpx.Response:
        if latency:
            await anyio.sleep(latency)
        body = slots if request.url.path.endswith("/slots") else page
        return httpx.Response(200, content=body, headers=headers)

    return httpx.MockTransport(handler)


# -- a sandbox in its own process -------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free now, for a server process to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(*args: str, tls: ssl.SSLContext | None = None, rate_limit: str = "off") -> Iterator[str]:
    """A sandbox in its own process; with ``tls`` (a client context that trusts it) over HTTPS.

    Its rate limit is off unless ``rate_limit`` (``--rate-limit``, e.g. ``"60/10"``) says otherwise:
    the other benchmarks send thousands of requests a minute to one endpoint.
    """
    port = free_port()
    command = [sys.executable, "-m", "perfectgym_appointments_client.cli", "sandbox", "--port", str(port),
               "--api-key", KEY, "--quiet", "--rate-limit", rate_limit, *args]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        if tls is not None:
            cert = TLS_CA.issue_cert("127.0.0.1")
            cert.cert_chain_pems[0].write_to_path(f"{folder}/cert.pem")
            cert.private_key_pem.write_to_path(f"{folder}/key.pem")
            command += ["--ssl-certfile", f"{folder}/cert.pem", "--ssl-keyfile", f"{folder}/key.pem"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        try:
            wait_until_serving(process, lambda: stats(base_url, tls), "sandbox")
            yield base_url
        finally:
            process.terminate()
            process.wait(10)


def wait_until_serving(process: subprocess.Popen[Any], probe: Callable[[], object], what: str) -> None:
    """Until ``probe`` gets an answer from the server ``process`` started (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            probe()
            return
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                detail = process.stderr.read() if process.stderr else ""
                raise RuntimeError(f"{what} did not start: {detail!r}") from None
            time.sleep(0.05)


TLS_CA = trustme.CA()


def trusting_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    TLS_CA.configure_trust(context)
    return context


def stats(base_url: str, tls: ssl.SSLContext | None = None) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/_sandbox/stats", headers={"X-API-KEY": KEY}, verify=tls or True)
    answer.raise_for_status()
    return dict(answer.json())


# -- a trivial keep-alive server in its own process ------------------------------------------------


def appointment_payload() -> bytes:
    return json.dumps(
        {
            "id": APPOINTMENT,
            "title": "Personal Training",
            "duration": 60,
            "category": "Training",
            "description": "One hour of personal training with a coach of your choice.",
            "imgUrl": "https://example.com/img/1.png",
        }
    ).encode()


def serve_fixed(port: int) -> None:
    """Serve 127.0.0.1:``port`` (``python -m benchmarks.run --serve-fixed PORT``): every request is
    answered at once, 200 with a fixed JSON body (30 slots for a path ending in ``/slots``, one
    bookable appointment otherwise), and the connection kept alive. Next to nothing per request,
    so a client's own cost shows; the client sends GETs only (no request body to read)."""

    def answer(body: bytes) -> bytes:
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        return head.encode() + body

    slots, one = answer(slots_payload()), answer(appointment_payload())

    class Fixed(asyncio.Protocol):
        def __init__(self) -> None:
            self.pending = b""
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.pending += data
            while (end := self.pending.find(b"\r\n\r\n")) >= 0:
                head, self.pending = self.pending[:end], self.pending[end + 4 :]
                target = head.split(b" ", 2)[1].split(b"?", 1)[0]
                self.transport.write(slots if target.endswith(b"/slots") else one)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Fixed, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


@contextlib.contextmanager
def fixed_server() -> Iterator[str]:
    """``serve_fixed`` in a process of its own; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--serve-fixed", str(port)], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    detail = process.stderr.read() if process.stderr else ""
                    raise RuntimeError(f"the fixed server did not start: {detail!r}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


# -- measuring ---------------------------------------------------------------------------------------


async def drive(call: Callable[[], Awaitable[object]], tasks: int, calls: int) -> tuple[float, float, float]:
    """``calls`` calls from ``tasks`` tasks (``calls // tasks`` each, one after another):
    this process's CPU seconds (``time.process_time``: every thread), wall seconds, and the CPU
    seconds of this thread (the event loop's; the rest is worker threads')."""
    each = calls // tasks

    async def worker() -> None:
        for _ in range(each):
            await call()

    started, used, own = time.perf_counter(), time.process_time(), time.thread_time()
    if tasks == 1:
        await worker()
    else:
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(worker)
    return time.process_time() - used, time.perf_counter() - started, time.thread_time() - own


# Where own time is counted in a profile, first match wins: (a part of the file's path, label);
# other files count for their package (site-packages) or standard-library module.
COMPONENTS = (
    ("perfectgym_appointments_client/_generated/", "generated models and operations"),
    ("perfectgym_appointments_client/_zoned.py", "date-time parsing (`_zoned`)"),
    ("perfectgym_appointments_client/", "the package's other code (facade, request layer, backend)"),
)


def component(file: str, name: str) -> str:
    """The part of the code a profiled function belongs to (``COMPONENTS``)."""
    if file.startswith("<attrs generated"):  # the models' __init__, written by attrs
        return COMPONENTS[0][1]
    if file == "~":
        if any(word in name for word in ("socket", "epoll", "select")):
            return "sockets and epoll (C)"
        return "C built-ins (isinstance, len, dict and list methods, ...)"
    for part, label in COMPONENTS:
        if part in file:
            return label
    where = short_path(file).split("/", 1)[0].removesuffix(".py")
    return where if "site-packages/" in file else f"stdlib {where}"


async def where_time_goes(call: Callable[[], Awaitable[object]], tasks: int, calls: int) -> dict[str, Any]:
    """``calls`` calls from ``tasks`` tasks under cProfile, timed by the event loop thread's CPU
    (``time.thread_time``: waiting on the server is not counted). Own time by component and the
    functions with the most own time, as shares of the profiled total; and the CPU other threads
    of this process spent meanwhile (executor threads), in µs per call (not profiled)."""
    await call()
    profiler = cProfile.Profile(time.thread_time)
    thread, used = time.thread_time(), time.process_time()
    profiler.enable()
    try:
        await drive(call, tasks, calls)
    finally:
        profiler.disable()
    thread, used = time.thread_time() - thread, time.process_time() - used
    entries: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values()) or 1.0
    components: dict[str, float] = {}
    functions: list[tuple[float, str]] = []
    for (file, line, name), (_, _, own, _, _) in entries.items():
        label = component(file, name)
        components[label] = components.get(label, 0.0) + own / total
        if file == "~":
            where = name
        elif file.startswith("<attrs generated"):
            where = f"{name} (attrs, {file.rstrip('>').rsplit('.', 1)[-1]})"
        else:
            where = f"{name} ({short_path(file)}:{line})"
        functions.append((own / total, where))
    functions.sort(reverse=True)
    return {
        "components": sorted(((share, label) for label, share in components.items()), reverse=True),
        "functions": functions[:6],
        "other_threads_us": max(used - thread, 0.0) / calls * 1e6,
    }


def short_path(file: str) -> str:
    """A profiled file's path from its package on (``aiohttp/client.py``)."""
    for marker in ("site-packages/", "perfectgym_appointments_client/", "python3."):
        if marker in file:
            tail = file.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "python3." else tail
    return Path(file).name


# -- sentences of the report: report.py and the sections' own notes use them ---------------------------


def verdict(value: float, goal: float) -> str:
    return (
        f"**met** (goal <= {goal})"
        if value <= goal
        else f"**missed** by {value / goal - 1:.1%} (goal <= {goal})"
    )


def profile_line(profile: dict[str, Any], what: str) -> str:
    """One sentence from ``where_time_goes``: components and the functions with most own time."""
    parts = ", ".join(f"{label} {share:.0%}" for share, label in profile["components"][:6])
    functions = ", ".join(f"`{name}` {share:.0%}" for share, name in profile["functions"][:5])
    return (
        f"Where the time goes ({what}; cProfile timed by the event loop thread's CPU, shares of its profiled "
        f"own time; the profiler inflates code made of many small calls): {parts}. Most own time: {functions}."
    )
