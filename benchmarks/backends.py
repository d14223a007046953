"""Section 5: client CPU per ``get_slots`` on httpx and on aiohttp, raw and through the facade, from
1 and 100 tasks against ``serve_fixed``: whether the facade on each backend stays close to the raw
library under it.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

from benchmarks._common import (
    APPOINTMENT,
    KEY,
    drive,
    profile_line,
    slots_payload,
    verdict,
    where_time_goes,
)
from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client._constants import DEFAULT_MAX_CONNECTIONS, KEEPALIVE_EXPIRY
from perfectgym_appointments_client._generated.api.appointments import get_bookable_appointment_slots

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
