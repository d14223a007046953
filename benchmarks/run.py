"""Benchmarks: ``python -m benchmarks.run`` (or ``scripts/bench``) measures and writes RESULTS.md.

Every figure is a ratio of things measured side by side in the same run (these machines are
noisy), as the median over interleaved rounds. Loopback figures use a server in a separate
process (the sandbox, or ``serve_fixed`` for the HTTP backends), so the client and the server do
not share one GIL. The rate limit's part (section 7) is measured in ``benchmarks/rate_limit.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import functools
import gc
import json
import math
import os
import platform
import pstats
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import trustme

from benchmarks.rate_limit import (
    APART,
    APART_CALLS,
    CLIENT_COUNTS,
    FAN_OUT,
    LIMIT,
    client_memory,
    limited_fan_out,
    limiter_cpu,
    redis_server,
)
from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client._constants import DEFAULT_MAX_CONNECTIONS, KEEPALIVE_EXPIRY
from perfectgym_appointments_client._generated.api.appointments import (
    get_bookable_appointment_slots,
    get_bookable_appointments,
)
from perfectgym_appointments_client._throttling import SPAN_MARGIN
from perfectgym_appointments_client._zoned import _parse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
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


@contextlib.contextmanager
def sandbox_process(*args: str, tls: ssl.SSLContext | None = None, rate_limit: str = "off") -> Iterator[str]:
    """A sandbox in its own process; with ``tls`` (a client context that trusts it) over HTTPS.

    Its rate limit is off unless ``rate_limit`` (``--rate-limit``, e.g. ``"60/10"``) says otherwise:
    the other benchmarks send thousands of requests a minute to one endpoint.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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
            deadline = time.monotonic() + 30
            while True:
                try:
                    stats(base_url, tls)
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        detail = process.stderr.read() if process.stderr else ""
                        raise RuntimeError(f"sandbox did not start: {detail!r}") from None
                    time.sleep(0.05)
            yield base_url
        finally:
            process.terminate()
            process.wait(10)


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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """Mean seconds per call over ``calls`` sequential calls (after one warm-up call)."""
    await call()
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def overhead(
    rounds: int, calls: int, base_url: str | None, profile: bool = False
) -> dict[str, dict[str, Any]]:
    """Seconds per call of raw httpx + json.loads, the generated parse by hand and the facade.

    The generated layer has no transport of its own: "generated" is what a caller of it writes,
    ``build_request`` -> httpx -> ``json.loads`` -> ``parse_response`` (the models built), so the
    facade over it is the request layer's own cost (URL and headers, the retry loop, typed errors,
    the backend's wrapper). With ``profile``, where the facade's time goes (``where_time_goes``).
    """
    transport = None if base_url else canned_transport()
    url = base_url or BASE
    headers = {"X-API-KEY": KEY}
    raw_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    gen_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    facade_http = httpx.AsyncClient(transport=transport, base_url=url) if transport else None
    # default retries on; no rate limit (thousands of calls a minute to one endpoint)
    facade = AppointmentsClient(api_key=KEY, base_url=url, http_client=facade_http, rate_limit=None)
    appointment = APPOINTMENT
    days = 6
    if base_url:
        # a 90-minute appointment: about 30 free slots in three days
        first = (await raw_http.get("/v1/appointments/bookable", params={"sliceSize": 100})).json()["result"]
        appointment = next(a["id"] for a in first if a["duration"] == 90)
        days = 3

    async def raw_page() -> object:
        answer = await raw_http.get("/v1/appointments/bookable", params={"offset": "0", "sliceSize": 50})
        return json.loads(answer.content)

    async def raw_slots() -> object:
        answer = await raw_http.get(
            f"/v1/appointments/bookable/{appointment}/slots", params={"daysAhead": days}
        )
        return json.loads(answer.content)

    async def generated(operation: Any, *args: Any, **kwargs: Any) -> object:
        prepared = operation.build_request(*args, **kwargs)
        answer = await gen_http.request(
            prepared.method, prepared.path, params=prepared.params, headers=prepared.headers
        )
        return operation.parse_response(answer.status_code, json.loads(answer.content))

    async def gen_page() -> object:
        return await generated(get_bookable_appointments, offset="0", slice_size=50)

    async def gen_slots() -> object:
        return await generated(get_bookable_appointment_slots, appointment, days_ahead=days)

    async def facade_page() -> object:
        return await facade.bookable_appointments(slice_size=50, limit=50).to_list()

    async def facade_slots() -> object:
        return await facade.get_slots(appointment, days_ahead=days)

    async def facade_slots_cold() -> object:
        _parse.cache_clear()  # as if every date-time were new to this process
        return await facade.get_slots(appointment, days_ahead=days)

    variants = {
        "page": {"raw": raw_page, "generated": gen_page, "facade": facade_page},
        "slots": {
            "raw": raw_slots,
            "generated": gen_slots,
            "facade": facade_slots,
            "facade_cold": facade_slots_cold,
        },
    }
    samples: dict[str, dict[str, list[float]]] = {op: {v: [] for v in vs} for op, vs in variants.items()}
    profiles: dict[str, dict[str, Any]] = {}
    async with facade:
        for _ in range(rounds):
            for op, vs in variants.items():
                for name, call in vs.items():
                    samples[op][name].append(await per_call(call, calls))
        if profile:
            for op, vs in variants.items():
                profiles[op] = await where_time_goes(vs["facade"], 1, calls)
    # the models alone: parse_response on an answer already decoded (the date-time cache warm)
    models: dict[str, float] = {}
    if transport is not None:
        decoded = {"page": json.loads(page_payload()), "slots": json.loads(slots_payload())}
        for op, operation in (("page", get_bookable_appointments), ("slots", get_bookable_appointment_slots)):
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(calls):
                    operation.parse_response(200, decoded[op])
                times.append((time.perf_counter() - started) / calls)
            models[op] = statistics.median(times)
    await raw_http.aclose()
    await gen_http.aclose()
    result: dict[str, dict[str, Any]] = {}
    for op, by_variant in samples.items():
        result[op] = {name: statistics.median(values) for name, values in by_variant.items()}
        result[op]["facade/raw"] = statistics.median(
            f / r for f, r in zip(by_variant["facade"], by_variant["raw"], strict=True)
        )
        result[op]["facade/generated"] = statistics.median(
            f / g for f, g in zip(by_variant["facade"], by_variant["generated"], strict=True)
        )
        result[op]["generated/raw"] = statistics.median(
            g / r for g, r in zip(by_variant["generated"], by_variant["raw"], strict=True)
        )
        if "facade_cold" in by_variant:
            result[op]["facade_cold/raw"] = statistics.median(
                f / r for f, r in zip(by_variant["facade_cold"], by_variant["raw"], strict=True)
            )
        if op in profiles:
            result[op]["profile"] = profiles[op]
        if op in models:
            result[op]["models"] = models[op]
    return result


def paged_transport(total: int, latency: float) -> httpx.AsyncBaseTransport:
    """``total`` bookable appointments in cursor pages of 100, answered ``latency`` s after the request.

    Answers are built up front, so the "server" spends its whole response time waiting, and
    the memory they take is not counted against the client.
    """
    ids = [1229489000 + 7 * i for i in range(total)]
    item = {"title": "Personal Training", "duration": 60, "category": "Training",
            "description": "One hour of personal training.", "imgUrl": "https://example.com/img.png"}  # fmt: skip
    bodies: dict[str, bytes] = {}
    for first in range(0, total, 100):
        chunk = ids[first : first + 100]
        after = str(ids[first - 1]) if first else "0"
        body = {
            "result": [{"id": i, **item} for i in chunk],
            "hasNext": first + 100 < total,
            "offset": str(chunk[-1]),
        }
        bodies[after] = json.dumps(body).encode()
    headers = {"content-type": "application/json"}

    async def handler(request: httpx.Request) -> httpx.Response:
        if latency:
            await anyio.sleep(latency)
        return httpx.Response(200, content=bodies[request.url.params.get("offset", "0")], headers=headers)

    return httpx.MockTransport(handler)


async def walk(client: AppointmentsClient, consumer: float) -> tuple[int, float]:
    pages = 0
    started = time.perf_counter()
    async for _page in client.bookable_appointments(slice_size=100).pages():
        pages += 1
        if consumer:
            await anyio.sleep(consumer)
    return pages, time.perf_counter() - started


async def pagination(repeats: int, base_url: str | None = None) -> dict[str, float]:
    """10,000 items in pages of 100, 20 ms server latency, a consumer spending 10 ms per page.

    With prefetch (inside ``async with client``) against the same walk without it, and against
    the bare chain of fetches with no consumer at all (the floor prefetch can reach).
    """

    def make() -> AppointmentsClient:
        http = (
            None if base_url else httpx.AsyncClient(transport=paged_transport(10_000, 0.020), base_url=BASE)
        )
        return AppointmentsClient(api_key=KEY, base_url=base_url or BASE, http_client=http, rate_limit=None)

    walls: dict[str, list[float]] = {"prefetch": [], "sequential": [], "floor": []}
    pages = 0
    for _ in range(repeats):
        async with make() as client:
            pages, wall = await walk(client, 0.010)
            walls["prefetch"].append(wall)
            walls["floor"].append((await walk(client, 0.0))[1])
        plain = make()  # no `async with`: no task group, so no prefetch
        walls["sequential"].append((await walk(plain, 0.010))[1])
        await plain.aclose()
    result = {name: statistics.median(values) for name, values in walls.items()}
    ideal = pages * 0.020
    return {"pages": pages, "wall_s": result["prefetch"], "sequential_s": result["sequential"],
            "floor_s": result["floor"], "ideal_s": ideal, "ratio": result["prefetch"] / ideal,
            "ratio_floor": result["prefetch"] / result["floor"]}  # fmt: skip


async def pagination_memory() -> dict[str, float]:
    """Traced memory of iterating 1,000 to 300,000 items (items dropped as they come): the peak
    during the walk, the same with a full garbage collection after each page, and what is still
    allocated after the walk (caches that filled up)."""
    result: dict[str, float] = {}
    for count in MEMORY_COUNTS:
        for collect in (False, True):
            http = httpx.AsyncClient(transport=paged_transport(count, 0.0), base_url=BASE)
            async with AppointmentsClient(
                api_key=KEY, base_url=BASE, http_client=http, rate_limit=None
            ) as client:
                await client.bookable_appointments(slice_size=100, limit=100).to_list()  # warm up
                gc.collect()
                tracemalloc.start()
                seen = 0
                async for _item in client.bookable_appointments(slice_size=100):
                    seen += 1
                    if collect and seen % 100 == 0:  # after each page
                        gc.collect()
                _, peak = tracemalloc.get_traced_memory()
                gc.collect()
                retained, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                assert seen == count
            await http.aclose()
            if collect:
                result[f"peak_gc_{count}_kib"] = peak / 1024
            else:
                result[f"peak_{count}_kib"] = peak / 1024
                result[f"retained_{count}_kib"] = retained / 1024
    result["ratio"] = result["peak_10000_kib"] / result["peak_1000_kib"]
    return result


MEMORY_COUNTS = (1_000, 10_000, 100_000, 300_000)


async def fan_out(repeats: int, base_url: str | None = None) -> dict[str, float]:
    """search_slots over 200 appointments, concurrency 16, 20 ms latency per request.

    In-process, raw httpx + ``json.loads`` makes the same 200 requests under the same limiter in
    interleaved rounds: the floor that timers, httpx and the JSON decoder leave.
    """
    ids = list(range(APPOINTMENT, APPOINTMENT + 200))
    http = (
        httpx.AsyncClient(transport=canned_transport(latency=0.020), base_url=BASE)
        if base_url is None
        else None
    )
    url = base_url or BASE

    async def raw_search() -> None:
        assert http is not None
        limiter = anyio.CapacityLimiter(16)

        async def one(appointment_id: int) -> None:
            async with limiter:
                answer = await http.get(
                    f"/v1/appointments/bookable/{appointment_id}/slots", params={"daysAhead": 1}
                )
                json.loads(answer.content)

        async with anyio.create_task_group() as tg:
            for appointment_id in ids:
                tg.start_soon(one, appointment_id)

    async with AppointmentsClient(api_key=KEY, base_url=url, http_client=http, rate_limit=None) as client:
        if base_url is not None:
            ids = [a.id async for a in client.bookable_appointments(slice_size=100, limit=200)]
        await client.search_slots(ids[:16], days_ahead=1, concurrency=16)  # warm the pool
        walls: list[float] = []
        raw_walls: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            found = await client.search_slots(ids, days_ahead=1, concurrency=16)
            walls.append(time.perf_counter() - started)
            assert len(found) == 200
            if http is not None:
                started = time.perf_counter()
                await raw_search()
                raw_walls.append(time.perf_counter() - started)
    if http is not None:
        await http.aclose()
    wall = statistics.median(walls)
    ideal = math.ceil(200 / 16) * 0.020
    result = {"wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal}
    if raw_walls:
        result["raw_wall_s"] = statistics.median(raw_walls)
        result["raw_ratio"] = result["raw_wall_s"] / ideal
        result["facade/raw"] = statistics.median(f / r for f, r in zip(walls, raw_walls, strict=True))
    return result


async def concurrency(
    base_url: str, requests: int = 5_000, tasks: int = 100, tls: ssl.SSLContext | None = None
) -> dict[str, float]:
    """``requests`` GETs from ``tasks`` tasks sharing one client: the facade vs raw httpx.

    Raw httpx twice: with its default limits (100 connections, 20 kept alive) and with the
    facade's (16 and 16), so the pool's effect and the facade's own cost show apart. Over HTTPS
    (``tls``) the facade gets an httpx client that trusts the sandbox, with its default limits.
    """
    verify: ssl.SSLContext | bool = tls or True
    same = httpx.Limits(
        max_connections=DEFAULT_MAX_CONNECTIONS, max_keepalive_connections=DEFAULT_MAX_CONNECTIONS
    )
    ids: list[int] = []
    async with AppointmentsClient(
        api_key=KEY, base_url=base_url, http_client=httpx.AsyncClient(verify=verify), rate_limit=None
    ) as lister:
        ids = [a.id async for a in lister.bookable_appointments(slice_size=100)]

    async def drive(call: Callable[[int], Awaitable[object]]) -> tuple[float, float, int]:
        errors = 0
        per_task = requests // tasks

        async def worker(offset: int) -> None:
            nonlocal errors
            for n in range(per_task):
                try:
                    await call(ids[(offset + n) % len(ids)])
                except Exception:  # noqa: BLE001 - counted and reported
                    errors += 1

        started, cpu = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as tg:
            for t in range(tasks):
                tg.start_soon(worker, t)
        return time.perf_counter() - started, time.process_time() - cpu, errors

    result: dict[str, float] = {"requests": requests}
    for name in ("raw", "raw_same_limits", "facade") * 2:
        before = stats(base_url, tls)["connections"]
        if name.startswith("raw"):
            limits = (
                same
                if name == "raw_same_limits"
                else httpx.Limits(max_connections=100, max_keepalive_connections=20)
            )
            async with httpx.AsyncClient(
                base_url=base_url, headers={"X-API-KEY": KEY}, limits=limits, verify=verify
            ) as http:

                async def raw_call(appointment_id: int) -> object:
                    answer = await http.get(f"/v1/appointments/bookable/{appointment_id}")
                    answer.raise_for_status()
                    return json.loads(answer.content)

                wall, cpu, errors = await drive(raw_call)
        else:
            http_client = httpx.AsyncClient(verify=verify, limits=same) if tls else None
            async with AppointmentsClient(
                api_key=KEY, base_url=base_url, http_client=http_client, rate_limit=None
            ) as client:
                wall, cpu, errors = await drive(client.get_bookable_appointment)
            if http_client is not None:
                await http_client.aclose()
        connections = stats(base_url, tls)["connections"] - before
        # the second round of each wins: the first one warms up both sides
        result[f"{name}_rps"] = requests / wall
        result[f"{name}_cpu_us"] = cpu / requests * 1e6
        result[f"{name}_errors"] = errors
        result[f"{name}_connections"] = connections
    result["facade/raw"] = result["facade_rps"] / result["raw_rps"]
    result["facade/raw_same_limits"] = result["facade_rps"] / result["raw_same_limits_rps"]
    return result


BACKEND_TASKS = (1, 100)
# The four rows, each against the raw client it is measured against.
BACKEND_ROWS = {
    "raw_httpx": "raw_httpx",
    "raw_aiohttp": "raw_aiohttp",
    "facade_httpx": "raw_httpx",
    "facade_aiohttp": "raw_aiohttp",
}
# Where the facade's time on aiohttp goes, at 100 tasks only.
BACKEND_DIAGNOSTICS = {"generated_aiohttp": "raw_aiohttp"}


async def backends(base_url: str, rounds: int, sequential: int, concurrent: int) -> dict[str, Any]:
    """``get_slots`` (a 30-slot answer) against ``serve_fixed`` over loopback: raw httpx, raw
    aiohttp, the facade on each; from 1 task (``sequential`` calls) and 100 tasks (``concurrent``),
    every client with 16 connections, all kept alive (5 s). Client CPU per call and calls/s,
    median over interleaved rounds (the order rotated each round); ratios per round, then median.

    A diagnostic variant at 100 tasks: the generated parse on aiohttp by hand (``build_request``
    -> the raw session -> ``json.loads`` -> ``parse_response``), which splits the facade's cost
    into the models and the rest. Then one profiled batch of each facade at 100 tasks
    (``where_time_goes``).
    """
    limit = DEFAULT_MAX_CONNECTIONS
    headers = {"X-API-KEY": KEY}
    path = f"/v1/appointments/bookable/{APPOINTMENT}/slots"
    days = 3
    params = {"daysAhead": days}
    raw_http = httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        limits=httpx.Limits(
            max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=KEEPALIVE_EXPIRY
        ),
    )
    session = aiohttp.ClientSession(
        base_url=base_url,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=KEEPALIVE_EXPIRY),
    )
    facades = {
        name: AppointmentsClient(
            api_key=KEY, base_url=base_url, rate_limit=None, http_backend=backend, max_connections=limit
        )
        for name, backend in (
            ("facade_httpx", "httpx"),
            ("facade_aiohttp", "aiohttp"),
        )
    }

    async def raw_httpx() -> object:
        answer = await raw_http.get(path, params=params)
        assert answer.status_code == 200
        return json.loads(answer.content)

    async def raw_aiohttp() -> object:
        async with session.get(path, params=params) as answer:
            assert answer.status == 200
            body = await answer.read()
        return json.loads(body)

    async def generated_aiohttp() -> object:
        operation = get_bookable_appointment_slots
        prepared = operation.build_request(APPOINTMENT, days_ahead=days)
        async with session.request(
            prepared.method, prepared.path, params=prepared.params, headers=prepared.headers
        ) as answer:
            body = await answer.read()
        return operation.parse_response(answer.status, json.loads(body))

    def facade_call(client: AppointmentsClient) -> Callable[[], Awaitable[object]]:
        return functools.partial(client.get_slots, APPOINTMENT, days_ahead=days)

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "raw_httpx": raw_httpx,
        "raw_aiohttp": raw_aiohttp,
        "generated_aiohttp": generated_aiohttp,
        **{name: facade_call(client) for name, client in facades.items()},
    }
    for call in calls.values():  # warm up: every connection opened, every cache filled
        await drive(call, limit, limit * 4)
        assert len(await call()) == 30  # type: ignore[arg-type]
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    workers: dict[str, list[float]] = {}
    for number in range(rounds):
        for tasks in BACKEND_TASKS:
            names = list(BACKEND_ROWS) + (list(BACKEND_DIAGNOSTICS) if tasks > 1 else [])
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                count = sequential if tasks == 1 else concurrent
                used, took, own = await drive(calls[name], tasks, count)
                cpu.setdefault(f"{name}_{tasks}", []).append(used / count)
                wall.setdefault(f"{name}_{tasks}", []).append(took / count)
                workers.setdefault(f"{name}_{tasks}", []).append(max(used - own, 0.0) / count)
    result: dict[str, Any] = {"rounds": rounds, "sequential": sequential, "concurrent": concurrent}
    for key in cpu:
        result[f"{key}_cpu_us"] = statistics.median(cpu[key]) * 1e6
        result[f"{key}_workers_us"] = statistics.median(workers[key]) * 1e6
        result[f"{key}_rps"] = statistics.median(1 / w for w in wall[key])
    for tasks in BACKEND_TASKS:
        pairs = {**BACKEND_ROWS, **(BACKEND_DIAGNOSTICS if tasks > 1 else {})}
        for name, base in pairs.items():
            mine, theirs = cpu[f"{name}_{tasks}"], cpu[f"{base}_{tasks}"]
            result[f"{name}/{base}_{tasks}"] = statistics.median(
                m / t for m, t in zip(mine, theirs, strict=True)
            )
    tasks = BACKEND_TASKS[-1]
    for name in ("facade_httpx", "facade_aiohttp"):
        result[f"{name}_profile"] = await where_time_goes(calls[name], tasks, concurrent // 2)
    await raw_http.aclose()
    await session.close()
    for client in facades.values():
        await client.aclose()
    return result


def import_time(repeats: int) -> dict[str, float]:
    # As installed: with byte code cached. httpx's is (pip compiles site-packages); ours may not be
    # (an editable install, PYTHONDONTWRITEBYTECODE), and compiling it on every import measures
    # the compiler, not the import.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "perfectgym_appointments_client")], check=True
    )

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    samples: dict[str, list[float]] = {"base": [], "httpx": [], "package": []}
    for _ in range(repeats):
        samples["base"].append(run("pass"))
        samples["httpx"].append(run("import httpx"))
        samples["package"].append(run("import perfectgym_appointments_client"))
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "httpx_ms": (med["httpx"] - med["base"]) * 1000,
        "package_ms": (med["package"] - med["base"]) * 1000,
        "ratio": (med["package"] - med["base"]) / (med["httpx"] - med["base"]),
        "repeats": repeats,
        "beyond_httpx": import_breakdown(3),
    }


def import_breakdown(repeats: int) -> list[tuple[float, str, int]]:
    """What ``import perfectgym_appointments_client`` imports beyond ``import httpx``
    (``python -X importtime``, median of ``repeats`` fresh interpreters): own import time in ms by
    top-level package (the package itself by module, its generated layer as one), largest first,
    with the number of modules."""

    def modules(code: str) -> dict[str, int]:
        trace = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
        ).stderr
        found: dict[str, int] = {}
        for line in trace.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                own, _, name = line.removeprefix("import time:").split("|")
                found[name.strip()] = int(own)
        return found

    httpx_modules = set(modules("import httpx"))
    runs = [modules("import perfectgym_appointments_client") for _ in range(repeats)]
    groups: dict[str, list[str]] = {}
    for name in runs[0]:
        if name in httpx_modules:
            continue
        parts = name.split(".")
        if parts[0] == "perfectgym_appointments_client" and len(parts) > 1:
            group = ".".join(parts[:2])
        else:
            group = parts[0]
        groups.setdefault(group, []).append(name)
    sizes = [
        (statistics.median(sum(run.get(name, 0) for name in names) for run in runs) / 1000, group, len(names))
        for group, names in groups.items()
    ]
    return sorted(sizes, reverse=True)


# -- report ------------------------------------------------------------------------------------------


def versions() -> str:
    names = ["perfectgym-appointments-client", "httpx", "httpcore", "aiohttp", "attrs", "anyio", "uvicorn",
             "starlette"]  # fmt: skip
    found = ", ".join(f"{n} {metadata.version(n)}" for n in names)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}); {found}; commit {commit or '?'}"
    )


def verdict(value: float, goal: float) -> str:
    return (
        f"**met** (goal <= {goal})"
        if value <= goal
        else f"**missed** by {value / goal - 1:.1%} (goal <= {goal})"
    )


def report(results: dict[str, Any], command: str) -> str:
    o_in, o_lo = results["overhead_inprocess"], results["overhead_loopback"]
    pag, mem, fan, fan_lo = (
        results["pagination"],
        results["memory"],
        results["fan_out"],
        results["fan_out_loopback"],
    )
    imp = results["import"]
    us = 1e6
    lines = [
        "# Benchmark results",
        "",
        f"Made by `{command}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {versions()}.",
        "",
        f"Each ratio is measured side by side in one run, median over interleaved rounds. The run took "
        f"{results['wall_s'] / 60:.1f} min.",
        "",
        "## 1. Per-call overhead",
        "",
        "Sequential calls over httpx; `raw` is httpx + `json.loads`; `generated` the generated layer used",
        "by hand: the operation's `build_request`, httpx, `json.loads`, its `parse_response` (models built;",
        "the generated layer has no transport of its own); `facade` `AppointmentsClient` (the request",
        "layer: retry loop, typed errors, checks; default retries, no rate limit). Wall µs per call.",
        "",
        "| transport | call | raw µs | generated µs | facade µs | generated/raw | facade/raw | facade/generated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, o in (("in-process", o_in), ("loopback sandbox", o_lo)):
        for op, name in (("page", "50-item bookable page"), ("slots", "30 slots")):
            r = o[op]
            lines.append(
                f"| {label} | {name} | {r['raw'] * us:.0f} | {r['generated'] * us:.0f} | {r['facade'] * us:.0f} "
                f"| {r['generated/raw']:.2f} | {r['facade/raw']:.2f} | {r['facade/generated']:.2f} |"
            )
    lines += [
        "",
        "The facade can take less than `generated`: the request layer hands httpx one finished URL string, "
        "while raw and generated pass a relative path and `params=` through httpx's base-URL merge and query "
        "encoding, which cost more.",
        "",
        f"Date-times are parsed once per distinct string (a bounded cache: slot lists repeat the same grid); "
        f"with that cache emptied before every call, in-process slots cost {o_in['slots']['facade_cold'] * us:.0f} µs "
        f"(facade/raw {o_in['slots']['facade_cold/raw']:.2f}).",
        "",
        f"Goals (in-process): facade/raw <= 1.2: page {verdict(o_in['page']['facade/raw'], 1.2)}, "
        f"slots {verdict(o_in['slots']['facade/raw'], 1.2)}; facade/generated <= 1.05: "
        f"page {verdict(o_in['page']['facade/generated'], 1.05)}, slots {verdict(o_in['slots']['facade/generated'], 1.05)}.",
        "",
        *overhead_notes(o_in),
        "## 2. Pagination with prefetch",
        "",
        "10,000 items in pages of 100, 20 ms server latency, a consumer spending 10 ms per page.",
        "",
        "| server | with prefetch | without prefetch | fetches alone (no consumer) | pages x latency | prefetch / (pages x latency) | prefetch / fetches alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, p in (
        ("in-process, 20 ms", pag),
        ("loopback sandbox, --latency 0.02", results["pagination_loopback"]),
    ):
        lines.append(
            f"| {label} | {p['wall_s']:.2f} s | {p['sequential_s']:.2f} s | {p['floor_s']:.2f} s | {p['ideal_s']:.2f} s "
            f"| **{p['ratio']:.2f}** | {p['ratio_floor']:.2f} |"
        )
    lines += [
        "",
        f"Goal wall <= 1.1 x pages x latency (in-process): {verdict(pag['ratio'], 1.1)}. The consumer's 10 ms per page "
        "is hidden: with prefetch the walk takes as long as the fetches alone. Over loopback, every answer of a 20 ms "
        "server arrives about 2 ms late on this VM (a bare request to `--latency 0.02` takes ~22 ms: waking both "
        "processes from idle), so the chain of fetches alone is already above 1.1 x; prefetch adds nothing to it.",
        "",
        "Traced memory of the client (in-process, `tracemalloc`) walking the listing, items dropped as they come:",
        "",
        "| items | " + " | ".join(f"{n:,}" for n in MEMORY_COUNTS) + " |",
        "|---|" + "---|" * len(MEMORY_COUNTS),
        "| peak during the walk, KiB | "
        + " | ".join(f"{mem[f'peak_{n}_kib']:.0f}" for n in MEMORY_COUNTS)
        + " |",
        "| peak with a full garbage collection after each page, KiB | "
        + " | ".join(f"{mem[f'peak_gc_{n}_kib']:.0f}" for n in MEMORY_COUNTS)
        + " |",
        "| still allocated after the walk, KiB | "
        + " | ".join(f"{mem[f'retained_{n}_kib']:.0f}" for n in MEMORY_COUNTS)
        + " |",
        "",
        f"10k/1k peak ratio {mem['ratio']:.2f}: the peak grows at first, then levels off; nothing grows with the "
        "number of items. Items are not kept: two pages are alive at a time (the one you read and the one "
        "prefetched), and the pager detects a looping server in constant memory (Brent's algorithm, one "
        "remembered cursor). What grows at first: the standard library's URL-split and regex caches (128 and "
        "512 entries, filled by httpx's cookie handling with each page's distinct URL: the last row), and each "
        "httpx response sits in a reference cycle with its stream, so a page's raw body stays until Python's "
        "cyclic garbage collector runs (the middle row collects after every page to show it).",
        "",
        "## 3. Fan-out",
        "",
        f"`search_slots` over 200 appointments, concurrency 16, 20 ms latency per request (in-process transport): "
        f"{fan['wall_s'] * 1000:.0f} ms against ceil(200/16) x 20 ms = {fan['ideal_s'] * 1000:.0f} ms, "
        f"ratio **{fan['ratio']:.2f}**, {verdict(fan['ratio'], 1.25)}. Raw httpx + `json.loads` making the same "
        f"200 requests under the same limiter, in interleaved rounds: {fan['raw_wall_s'] * 1000:.0f} ms, ratio "
        f"{fan['raw_ratio']:.2f}; facade/raw {fan['facade/raw']:.2f}. That floor is timers (a 20 ms sleep "
        "wakes ~1 ms late), httpx and the JSON decoder: all one thread, so a wave of 16 answers is decoded one "
        "after another.",
        "",
        f"Same over the loopback sandbox with `--latency 0.02` (the server also computes the slots): "
        f"{fan_lo['wall_s'] * 1000:.0f} ms, ratio {fan_lo['ratio']:.2f}.",
        "",
        "## 4. Concurrency",
        "",
        "GETs of one bookable appointment from 100 tasks sharing one client against the sandbox in another",
        "process, over plain HTTP and over HTTPS (a trustme certificate), second of two interleaved rounds",
        "each; CPU is the client process's, per request.",
        "",
        "| transport | requests | client | requests/s | client CPU µs/request | errors | connections opened |",
        "|---|---|---|---|---|---|---|",
    ]
    for transport, con in (("HTTP", results["concurrency"]), ("HTTPS", results["concurrency_tls"])):
        for name, label in (
            ("raw", "raw httpx, default limits (100 connections, 20 kept alive)"),
            ("raw_same_limits", f"raw httpx, {DEFAULT_MAX_CONNECTIONS} connections, all kept alive"),
            ("facade", f"facade, default `max_connections={DEFAULT_MAX_CONNECTIONS}`"),
        ):
            lines.append(
                f"| {transport} | {con['requests']:,.0f} | {label} | {con[name + '_rps']:.0f} | {con[name + '_cpu_us']:.0f} "
                f"| {con[name + '_errors']:.0f} | {con[name + '_connections']:.0f} |"
            )
    con, tls = results["concurrency"], results["concurrency_tls"]
    lines += [
        "",
        f"facade/raw throughput over HTTP: **{con['facade/raw']:.2f}** against httpx's defaults, "
        f"**{con['facade/raw_same_limits']:.2f}** against httpx with the same limits; over HTTPS: "
        f"**{tls['facade/raw']:.2f}** and **{tls['facade/raw_same_limits']:.2f}**. httpx's defaults keep 20 of 100 "
        "connections alive, and httpcore 1.0's pool then closes an idle connection on almost every release, so "
        "nearly every request opens a new connection: over HTTPS a TLS handshake each, which is what a real "
        "tenant costs. The facade keeps every connection it may open alive and opens few. What it pays over "
        "plain HTTP is httpcore's pool bookkeeping, which walks all connections on every request "
        "(quadratically, encode/httpx#3215): the client CPU column. Requests/s are also bound by the "
        "single-process sandbox on a 2-core machine and vary by about 20% from run to run.",
        "",
        *backends_report(results["backends"]),
        "## 6. Import time",
        "",
        f"`import perfectgym_appointments_client`: {imp['package_ms']:.0f} ms; `import httpx`: {imp['httpx_ms']:.0f} ms "
        f"(each minus a bare interpreter start, median of {imp['repeats']:.0f} fresh interpreters); ratio "
        f"**{imp['ratio']:.2f}**, goal <= 1.25: {verdict(imp['ratio'], 1.25)}.",
        "",
        *import_notes(imp),
        *rate_limit_report(results),
    ]
    return "\n".join(lines)


def profile_line(profile: dict[str, Any], what: str) -> str:
    """One sentence from ``where_time_goes``: components and the functions with most own time."""
    parts = ", ".join(f"{label} {share:.0%}" for share, label in profile["components"][:6])
    functions = ", ".join(f"`{name}` {share:.0%}" for share, name in profile["functions"][:5])
    return (
        f"Where the time goes ({what}; cProfile timed by the event loop thread's CPU, shares of its profiled "
        f"own time; the profiler inflates code made of many small calls): {parts}. Most own time: {functions}."
    )


def overhead_notes(o_in: dict[str, Any]) -> list[str]:
    """For a missed in-process goal: the models' share (``parse_response`` timed apart) of what the
    facade adds to raw, and the profile of the facade's calls."""
    lines: list[str] = []
    for op, name in (("page", "50-item page"), ("slots", "30 slots")):
        r = o_in[op]
        if r["facade/raw"] <= 1.2:
            continue
        added, models = (r["facade"] - r["raw"]) * 1e6, r["models"] * 1e6
        rest = added - models
        lines += [
            f"{name}, facade/raw {r['facade/raw']:.2f} (missed): the facade takes {added:.0f} µs more than raw "
            f"httpx + `json.loads`. The models alone (`parse_response` on an answer already decoded, timed "
            f"apart) take {models:.0f} µs, so everything else the facade does costs {rest:+.0f} µs net against "
            "raw's `http.get(path, params=...)`. Without the models the facade would be at "
            f"{(r['facade'] - r['models']) / r['raw']:.2f} x raw. "
            + profile_line(r["profile"], f"{name}, sequential in-process facade calls"),
            "",
        ]
    return lines


def backends_report(b: dict[str, Any]) -> list[str]:
    labels = {
        "raw_httpx": "raw httpx + `json.loads`",
        "raw_aiohttp": "raw aiohttp + `json.loads`",
        "facade_httpx": "facade on httpx",
        "facade_aiohttp": 'facade on aiohttp (`http_backend="aiohttp"`)',
        "generated_aiohttp": "diagnostic: generated parse on the raw aiohttp session",
    }
    lines = [
        "## 5. HTTP backends: httpx and aiohttp",
        "",
        f"`get_slots` of one appointment (a {len(slots_payload()) / 1024:.1f} KiB answer of 30 slots) over "
        "loopback, against a trivial keep-alive server in another process (`serve_fixed`: an asyncio protocol "
        "that answers every request at once with a fixed body), from 1 task "
        f"({b['sequential']:,} calls a round) and from 100 tasks sharing one client ({b['concurrent']:,} calls a "
        "round). Every client has 16 connections, all kept alive (5 s). Raw httpx: `httpx.AsyncClient(limits="
        "16/16)`, `get`, `json.loads(response.content)`; raw aiohttp: `aiohttp.ClientSession(connector="
        "TCPConnector(limit=16))`, `get`, `await response.read()`, `json.loads`; the facade: `AppointmentsClient("
        "rate_limit=None)`, default retries, models built. CPU is this process's (`time.process_time`, every "
        f"thread) per request, median of {b['rounds']} interleaved rounds (the order rotated each round); "
        "worker threads: that minus the event loop thread's (`time.thread_time`). The ratio to raw of its "
        "library is taken per round, then the median; the last column is the ratio of the medians.",
        "",
        "| client | tasks | client CPU µs/request | of it, worker threads | requests/s | CPU / raw of its library "
        "| CPU / raw aiohttp |",
        "|---|---|---|---|---|---|---|",
    ]
    for tasks in BACKEND_TASKS:
        pairs = {**BACKEND_ROWS, **(BACKEND_DIAGNOSTICS if tasks > 1 else {})}
        for name, base in pairs.items():
            key = f"{name}_{tasks}"
            ratio = b[f"{name}/{base}_{tasks}"]
            bold = "**" if name.startswith("facade") and tasks > 1 else ""
            lines.append(
                f"| {labels[name]} | {tasks} | {b[key + '_cpu_us']:.0f} | {b[key + '_workers_us']:.0f} "
                f"| {b[key + '_rps']:.0f} "
                f"| {bold}{ratio:.2f}{bold} | {b[key + '_cpu_us'] / b[f'raw_aiohttp_{tasks}_cpu_us']:.2f} |"
            )
    aio, hx = b["facade_aiohttp/raw_aiohttp_100"], b["facade_httpx/raw_httpx_100"]
    lines += [
        "",
        f"Goals (client CPU per request, 100 tasks): facade on aiohttp <= 1.5 x raw aiohttp: {verdict(aio, 1.5)}; "
        f"facade on httpx <= 1.1 x raw httpx: {verdict(hx, 1.1)}.",
        "",
        f"The facade on aiohttp takes {b['facade_aiohttp_100_cpu_us'] / b['facade_httpx_100_cpu_us']:.2f} of the "
        f"facade on httpx's CPU per request at 100 tasks, "
        f"{b['facade_aiohttp_1_cpu_us'] / b['facade_httpx_1_cpu_us']:.2f} from 1 task; raw aiohttp takes "
        f"{b['raw_aiohttp_100_cpu_us'] / b['raw_httpx_100_cpu_us']:.2f} of raw httpx's at 100 tasks. httpx's cost "
        "at 100 tasks is mostly httpcore's pool, which walks every queued request on each request and release "
        "(encode/httpx#3215, section 4).",
        "",
    ]
    if aio > 1.5:
        raw = b["raw_aiohttp_100_cpu_us"]
        generated, facade = b["generated_aiohttp_100_cpu_us"], b["facade_aiohttp_100_cpu_us"]
        profile = b["facade_aiohttp_profile"]
        lines += [
            f"Facade on aiohttp, missed: it adds {facade - raw:.0f} µs of CPU a request to raw aiohttp. Measured "
            f"apart at 100 tasks (the diagnostic row): the generated parse (`build_request` + `parse_response`, "
            f"30 slots' models; alone {b['generated_aiohttp/raw_aiohttp_100']:.2f} x raw) {generated - raw:.0f} "
            f"µs; the request layer and the backend over it {facade - generated:.0f} µs. "
            + profile_line(profile, "facade on aiohttp, 100 tasks"),
            "",
        ]
    if hx > 1.1:
        lines += [
            f"Facade on httpx, missed: {b['facade_httpx_100_cpu_us'] - b['raw_httpx_100_cpu_us']:.0f} µs a request "
            "over raw httpx. " + profile_line(b["facade_httpx_profile"], "facade on httpx, 100 tasks"),
            "",
        ]
    return lines


def import_notes(imp: dict[str, Any]) -> list[str]:
    """What the package imports beyond httpx, the largest first (``import_breakdown``)."""
    if imp["ratio"] <= 1.25:
        return []
    extra = sum(ms for ms, _, _ in imp["beyond_httpx"])
    top = ", ".join(
        f"`{group}` {ms:.0f} ms ({count} module{'s' if count != 1 else ''})"
        for ms, group, count in imp["beyond_httpx"][:8]
    )
    return [
        f"Missed by {imp['package_ms'] - 1.25 * imp['httpx_ms']:.0f} ms. Beyond what `import httpx` imports, "
        f"`python -X importtime` counts {extra:.0f} ms of own import time (median of 3; `-X importtime` adds its "
        f"own overhead), the largest: {top}.",
        "",
    ]


def rate_limit_report(results: dict[str, Any]) -> list[str]:
    fan, mem, cpu = results["rate_fan_out"], results["rate_memory"], results["rate_cpu"]
    allowed, seconds = LIMIT
    span = seconds + SPAN_MARGIN
    off, each = fan["unthrottled"], fan["unthrottled_each"]
    failed_with = f" (`{each['error']}`)" if each["error"] else ""
    lines = [
        "## 7. Rate limits",
        "",
        "The client keeps a per-endpoint budget (`RateLimit`, 1,000 per 60 s by default, in one in-memory "
        f"window per key and base URL for the whole process, or on Redis), counted over a span of seconds + "
        f"{SPAN_MARGIN} s; the sandbox refuses an endpoint for the span once its own limit is exceeded (429, no "
        "Retry-After).",
        "",
        f"`search_slots` over {FAN_OUT} appointments, concurrency 16, `days_ahead=1`, against a sandbox "
        f"(`Sandbox`, in a thread) limited to {allowed} requests per {seconds} s per endpoint; a new sandbox and "
        "key for every run, so both windows start empty:",
        "",
        "| client | wall | floor | wall / floor | 429s from the sandbox | calls failed |",
        "|---|---|---|---|---|---|",
        f"| `RateLimit(requests={allowed}, seconds={seconds})`, median of {fan['repeats']} | "
        f"{fan['wall_s']:.2f} s | {fan['floor_s']:.0f} s | **{fan['ratio']:.3f}** | "
        f"**{fan['rate_limited']}** in {fan['repeats']} run{'s' if fan['repeats'] != 1 else ''} | {fan['errors']} |",
        f"| `rate_limit=None`, `search_slots` | {off['wall_s']:.2f} s | | | {off['rate_limited']} of "
        f"{off['requests']} requests | the whole call: `{off['error'] or 'none'}` |",
        f"| `rate_limit=None`, the same {FAN_OUT} `get_slots` calls, 16 at a time | {each['wall_s']:.2f} s | | | "
        f"{each['rate_limited']} of {each['requests']} requests | {each['failed']} of {FAN_OUT}{failed_with} |",
        "",
        f"Floor: the first {allowed} go at once, then {allowed} per span of {seconds} + {SPAN_MARGIN} s: "
        f"ceil({FAN_OUT}/{allowed} - 1) x {span} s = {fan['floor_s']:.0f} s. Goals: wall / floor <= 1.1 "
        f"{verdict(fan['ratio'], 1.1)}; 429s {verdict(fan['rate_limited'], 0)}. Without the client's limit the "
        f"first {allowed} pass, then the sandbox refuses the endpoint for {seconds} s; each call tries 3 times "
        "(full-jitter backoff of at most 0.5 s and 1 s), mostly inside that lockout, so `search_slots` fails "
        "with the first call that runs out of retries, and call by call only those that came after a lockout "
        "ended got through.",
        "",
        "Memory and TCP connections per client, for 1 to 200 clients (tenants) of one sandbox process without "
        "a limit, each client making one `get_bookable_appointment` call, all at once. `own pool`: every "
        "`AppointmentsClient` makes its own `httpx.AsyncClient` (the default); `shared pool`: one "
        "`httpx.AsyncClient(limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))` passed as "
        "`http_client=` to all. Traced: `tracemalloc` (current size after minus before, over the number of "
        "clients) in this process after a warm-up; resident: growth of VmRSS in a fresh process per row.",
        "",
        "| clients | pool | client rate limit | traced KiB/client, idle | traced, after one call | "
        "resident KiB/client, idle | resident, after one call | connections held |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pool in ("own", "shared"):
        for limit, label in (("limited", "`RateLimit()` (default)"), ("unlimited", "`None`")):
            for count in CLIENT_COUNTS:
                m = {key: mem[f"{pool}_{limit}_{count}_{key}"] for key in (
                    "idle_kib", "called_kib", "rss_idle_kib", "rss_called_kib", "connections")}  # fmt: skip
                lines.append(
                    f"| {count} | {pool} pool | {label} | {m['idle_kib']:.1f} | {m['called_kib']:.1f} "
                    f"| {m['rss_idle_kib']:.0f} | {m['rss_called_kib']:.0f} | {m['connections']:.0f} |"
                )
    most = CLIENT_COUNTS[-1]
    own, shared = mem[f"own_limited_{most}_rss_called_kib"], mem[f"shared_limited_{most}_rss_called_kib"]
    added_idle = mem[f"own_limited_{most}_idle_kib"] - mem[f"own_unlimited_{most}_idle_kib"]
    added_called = mem[f"own_limited_{most}_called_kib"] - mem[f"own_unlimited_{most}_called_kib"]
    lines += [
        "",
        f"Every `httpx.AsyncClient` makes its own SSL context and loads certifi's CA bundle into it, even for "
        f"`http://` (one such context alone: {mem['ssl_context_kib']:.0f} KiB resident, in OpenSSL, where "
        f"`tracemalloc` does not look): {most} tenants with their own pools take {own * most / 1024:.0f} MiB, "
        f"sharing one pool {shared * most / 1024:.1f} MiB, and hold {most} connections instead of 16. The "
        f"client's own objects are a few KiB; the rate limit adds {added_idle:.1f} KiB per client idle and "
        f"{added_called:.1f} KiB after a call ({most} clients, own pools). Here all clients have one base URL and "
        "key, so with the limit on they also share one window (one list of entries in the process-wide "
        "`MemoryStorage`); tenants would have one each, an entry per request in the span (at most 1,000 by "
        "default).",
        "",
        f"The limiter's client CPU per call: `get_bookable_appointment` through an `httpx.MockTransport` (no "
        f"network), {cpu['calls']:.0f} sequential calls per client (calls {APART * 1000:.0f} ms apart: "
        f"{APART_CALLS}), median of {cpu['rounds']:.0f} interleaved rounds, CPU of the whole process "
        "(`time.process_time`, every thread); budget `RateLimit(requests=10**6, seconds=60)`, so no call waits, "
        "and a new key (an empty window) for every client in every round:",
        "",
        "| client | CPU µs/call | wall µs/call | CPU / no limiter |",
        "|---|---|---|---|",
    ]
    rows = [
        ("none", "none", "`rate_limit=None`"),
        ("memory", "none", "`RateLimit(...)` in memory"),
        ("redis", "none", '`RateLimit(..., storage="redis://...")`, Redis on loopback'),
        ("timer", "none", "`rate_limit=None` + limits' expiry timer alone"),
        ("none_apart", "none_apart", f"`rate_limit=None`, calls {APART * 1000:.0f} ms apart"),
        ("memory_apart", "none_apart", f"`RateLimit(...)` in memory, calls {APART * 1000:.0f} ms apart"),
    ]
    for name, base, label in rows:
        if f"{name}_cpu_us" in cpu:
            bold = "**" if name in ("memory", "redis") else ""
            lines.append(
                f"| {label} | {cpu[name + '_cpu_us']:.0f} | {cpu[name + '_wall_us']:.0f} "
                f"| {bold}{cpu[f'{name}/{base}']:.2f}{bold} |"
            )
    memory_added = cpu["memory_cpu_us"] - cpu["none_cpu_us"]
    timer_added = cpu["timer_cpu_us"] - cpu["none_cpu_us"]
    apart_added = cpu["memory_apart_cpu_us"] - cpu["none_apart_cpu_us"]
    loopback_us = results["overhead_loopback"]["page"]["facade"] * 1e6
    lines += [
        "",
        f"Goal in memory <= 1.1: {verdict(cpu['memory/none'], 1.1)}. The limiter adds {memory_added:.0f} µs a "
        f"call. Measured apart: its `wait_turn` alone, in a tight loop, takes {cpu['memory_turn_cpu_us']:.1f} µs "
        "(`limits`' moving window: the key string, a lock, an entry inserted at the front of a list). `limits`' "
        "stock `MemoryStorage` would also re-arm a 10 ms `threading.Timer` on every hit that drops expired "
        "entries: a new thread every 10 ms while calls come, one per call when they come further apart. One such "
        f"thread costs {cpu['timer_thread_cpu_us']:.0f} µs of CPU on this machine (started, fired, finished); "
        f"that stock timer alone, without a limiter, adds {timer_added:.1f} µs to back-to-back calls (the fourth "
        "row). The client's storage (`_throttling.QuietMemoryStorage`) tidies up once a second instead, in a "
        f"daemon thread. Calls {APART * 1000:.0f} ms apart: +{apart_added:.0f} µs a call with the limiter (their "
        "CPU also counts waking up from the sleep, the same with and without the limiter). For scale: a call to "
        f"the sandbox over loopback takes {loopback_us:.0f} µs (section 1).",
        "",
    ]
    if "redis_cpu_us" in cpu:
        redis_added = cpu["redis_cpu_us"] - cpu["none_cpu_us"]
        lines += [
            f"On Redis the limiter adds {redis_added:.0f} µs of CPU a call ({cpu['redis_turn_cpu_us']:.0f} µs for "
            "`wait_turn` alone): one worker-thread hop per call (so the event loop never blocks) in which it "
            "reads the lockout key and runs the moving window's Lua script, two round trips to Redis; one bare "
            f"`anyio.to_thread` hop costs {cpu['hop_cpu_us']:.0f} µs of CPU here, about "
            f"{cpu['hop_cpu_us'] / redis_added:.0%} of it, redis-py and the socket the rest.",
            "",
        ]
    else:
        lines += ["Redis: not measured (no `redis-server` on this machine).", ""]
    return lines


async def main(quick: bool) -> dict[str, Any]:
    rounds, calls = (3, 100) if quick else (7, 300)
    results: dict[str, Any] = {}
    started = time.perf_counter()

    def stage(name: str) -> None:
        print(f"[{time.perf_counter() - started:4.0f} s] {name} ...", flush=True)

    stage("1. per-call overhead, in-process")
    results["overhead_inprocess"] = await overhead(rounds, calls, None, profile=True)
    with sandbox_process() as url:
        stage("1. per-call overhead, loopback")
        results["overhead_loopback"] = await overhead(rounds, calls // 3, url)
        stage("4. concurrency")
        results["concurrency"] = await concurrency(url)
    tls = trusting_context()
    with sandbox_process(tls=tls) as url:
        stage("4. concurrency, HTTPS")
        results["concurrency_tls"] = await concurrency(url, requests=2_000, tls=tls)
    stage("2. pagination")
    results["pagination"] = await pagination(1 if quick else 3)
    results["memory"] = await pagination_memory()
    with sandbox_process("--appointments", "10000", "--latency", "0.02") as url:
        stage("2. pagination, loopback")
        results["pagination_loopback"] = await pagination(1, url)
        stage("3. fan-out, loopback")
        results["fan_out_loopback"] = await fan_out(1 if quick else 3, url)
    stage("3. fan-out")
    results["fan_out"] = await fan_out(3 if quick else 7)
    with fixed_server() as url:
        stage("5. HTTP backends, loopback")
        results["backends"] = await backends(url, *((2, 100, 500) if quick else (5, 300, 2000)))
    stage("6. import time")
    results["import"] = import_time(5 if quick else 15)
    stage("7. rate limits: fan-out against a limited sandbox")
    results["rate_fan_out"] = await limited_fan_out(1 if quick else 3)
    with sandbox_process() as url:
        stage("7. rate limits: memory per client")
        results["rate_memory"] = await client_memory(url, KEY)
    with redis_server() as redis_url:
        stage("7. rate limits: CPU per call")
        # more calls than in section 1: limits' expiry timer fires every 10 ms of calls (steady state)
        results["rate_cpu"] = await limiter_cpu(rounds, 300 if quick else 1000, redis_url)
    stage("done; writing the report")
    results["wall_s"] = time.perf_counter() - started
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats (a smoke run; does not write RESULTS.md)"
    )
    parser.add_argument("--serve-fixed", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fixed:
        serve_fixed(args.serve_fixed)
        sys.exit()
    outcome = anyio.run(main, args.quick)
    text = report(outcome, "scripts/bench" + (" --quick" if args.quick else ""))
    print(text)
    if not args.quick:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
