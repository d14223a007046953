"""Benchmarks: ``python -m benchmarks.run`` (or ``scripts/bench``) measures and writes RESULTS.md.

Every figure is a ratio of things measured side by side in the same run (these machines are
noisy), as the median over interleaved rounds. Loopback figures use a sandbox in a separate
process, so the client and the server do not share one GIL. The rate limit's part (section 6) is
measured in ``benchmarks/rate_limit.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
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
from perfectgym_appointments_client._base_client import DEFAULT_MAX_CONNECTIONS
from perfectgym_appointments_client._generated.api.appointments import (
    get_bookable_appointment_slots,
    get_bookable_appointments,
)
from perfectgym_appointments_client._generated.client import Client as GeneratedClient
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


# -- measuring ---------------------------------------------------------------------------------------


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """Mean seconds per call over ``calls`` sequential calls (after one warm-up call)."""
    await call()
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def overhead(rounds: int, calls: int, base_url: str | None) -> dict[str, dict[str, float]]:
    """Seconds per call of raw httpx + json.loads, the generated function and the facade."""
    transport = None if base_url else canned_transport()
    url = base_url or BASE
    headers = {"X-API-KEY": KEY}
    raw_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    generated = GeneratedClient(base_url=url, headers=headers)
    gen_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    generated.set_async_httpx_client(gen_http)
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

    async def gen_page() -> object:
        return await get_bookable_appointments.asyncio(client=generated, offset="0", slice_size=50)

    async def gen_slots() -> object:
        return await get_bookable_appointment_slots.asyncio(appointment, client=generated, days_ahead=days)

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
    async with facade:
        for _ in range(rounds):
            for op, vs in variants.items():
                for name, call in vs.items():
                    samples[op][name].append(await per_call(call, calls))
    await raw_http.aclose()
    await gen_http.aclose()
    result: dict[str, dict[str, float]] = {}
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


def import_time(repeats: int) -> dict[str, float]:
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
    }


# -- report ------------------------------------------------------------------------------------------


def versions() -> str:
    names = ["perfectgym-appointments-client", "httpx", "httpcore", "attrs", "anyio", "uvicorn", "starlette"]
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
        "Each ratio is measured side by side in one run, median over interleaved rounds.",
        "",
        "## 1. Per-call overhead",
        "",
        "Sequential calls; `raw` is httpx + `json.loads`, `generated` the generated async function",
        "(models built), `facade` `AppointmentsClient` (retry wrapper, typed errors, checks).",
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
        f"Date-times are parsed once per distinct string (a bounded cache: slot lists repeat the same grid); "
        f"with that cache emptied before every call, in-process slots cost {o_in['slots']['facade_cold'] * us:.0f} µs "
        f"(facade/raw {o_in['slots']['facade_cold/raw']:.2f}).",
        "",
        f"Goals (in-process): facade/raw <= 1.4: page {verdict(o_in['page']['facade/raw'], 1.4)}, "
        f"slots {verdict(o_in['slots']['facade/raw'], 1.4)}; facade/generated <= 1.05: "
        f"page {verdict(o_in['page']['facade/generated'], 1.05)}, slots {verdict(o_in['slots']['facade/generated'], 1.05)}.",
        "",
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
        "## 5. Import time",
        "",
        f"`import perfectgym_appointments_client`: {imp['package_ms']:.0f} ms; `import httpx`: {imp['httpx_ms']:.0f} ms "
        f"(each minus a bare interpreter start); ratio **{imp['ratio']:.2f}**.",
        "",
        *rate_limit_report(results),
    ]
    return "\n".join(lines)


def rate_limit_report(results: dict[str, Any]) -> list[str]:
    fan, mem, cpu = results["rate_fan_out"], results["rate_memory"], results["rate_cpu"]
    allowed, seconds = LIMIT
    span = seconds + SPAN_MARGIN
    off, each = fan["unthrottled"], fan["unthrottled_each"]
    failed_with = f" (`{each['error']}`)" if each["error"] else ""
    lines = [
        "## 6. Rate limits",
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
    print("1. per-call overhead, in-process ...", flush=True)
    results["overhead_inprocess"] = await overhead(rounds, calls, None)
    with sandbox_process() as url:
        print("1. per-call overhead, loopback ...", flush=True)
        results["overhead_loopback"] = await overhead(rounds, calls // 3, url)
        print("4. concurrency ...", flush=True)
        results["concurrency"] = await concurrency(url)
    tls = trusting_context()
    with sandbox_process(tls=tls) as url:
        print("4. concurrency, HTTPS ...", flush=True)
        results["concurrency_tls"] = await concurrency(url, requests=2_000, tls=tls)
    print("2. pagination ...", flush=True)
    results["pagination"] = await pagination(1 if quick else 3)
    results["memory"] = await pagination_memory()
    with sandbox_process("--appointments", "10000", "--latency", "0.02") as url:
        print("2. pagination, loopback ...", flush=True)
        results["pagination_loopback"] = await pagination(1, url)
        print("3. fan-out, loopback ...", flush=True)
        results["fan_out_loopback"] = await fan_out(1 if quick else 3, url)
    print("3. fan-out ...", flush=True)
    results["fan_out"] = await fan_out(3 if quick else 7)
    print("5. import time ...", flush=True)
    results["import"] = import_time(5 if quick else 15)
    print("6. rate limits: fan-out against a limited sandbox ...", flush=True)
    results["rate_fan_out"] = await limited_fan_out(1 if quick else 3)
    with sandbox_process() as url:
        print("6. rate limits: memory per client ...", flush=True)
        results["rate_memory"] = await client_memory(url, KEY)
    with redis_server() as redis_url:
        print("6. rate limits: CPU per call ...", flush=True)
        # more calls than in section 1: limits' expiry timer fires every 10 ms of calls (steady state)
        results["rate_cpu"] = await limiter_cpu(rounds, 300 if quick else 1000, redis_url)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats (a smoke run; does not write RESULTS.md)"
    )
    args = parser.parse_args()
    outcome = anyio.run(main, args.quick)
    text = report(outcome, "scripts/bench" + (" --quick" if args.quick else ""))
    print(text)
    if not args.quick:
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
