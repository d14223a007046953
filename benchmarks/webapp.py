"""The example web app (examples/webapp) under load: what a gym website's backend gets from the
client on each HTTP backend. ``python -m benchmarks.webapp`` (figures for RESULTS.md, section 11).

Three processes on this machine's cores: the sandbox (rate limit off, or tight), the app in
uvicorn (one worker, the client on httpx or aiohttp), and this load generator (aiohttp, 200
connections kept alive, each sending its next request when the last one is answered). The app's
CPU and resident memory are read from /proc for its process alone; the load generator and the
sandbox share the same two cores, so requests/s is what the whole machine gives, not the app alone.

Reads: ``GET /appointments/{id}`` (one API call each). Under a tight sandbox limit the app's own
budget (``WEBAPP_RATE_LIMIT``, the sandbox's limit) and its per-call wait limit
(``WEBAPP_MAX_RATE_LIMIT_WAIT``) answer 429 with Retry-After at once, instead of waiting for the
limit or letting the sandbox lock the endpoint for a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx

from benchmarks._common import KEY, ROOT, free_port, sandbox_process, stats, wait_until_serving

CONNECTIONS = 200
CHECKPOINTS = (5_000, 20_000)
TIGHT_LIMIT = "100/60"
TIGHT_REQUESTS = 3_000
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def app_process(base_url: str, backend: str, **settings: str) -> Iterator[tuple[str, int]]:
    """The app under uvicorn (one worker), as deployed: ``uvicorn --factory``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "PERFECTGYM_BASE_URL": base_url,
            "PERFECTGYM_API_KEY": KEY,
            "WEBAPP_DB": f"{folder}/outcomes.sqlite3",
            "WEBAPP_HTTP_BACKEND": backend,
            "WEBAPP_LOG_LEVEL": "ERROR",
            **settings,
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "examples.webapp.app:create_app",
                   "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]  # fmt: skip
        process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(process, lambda: httpx.get(f"{url}/healthz").raise_for_status(), "app")
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()


async def load(url: str, path: str, requests: int, connections: int = CONNECTIONS) -> dict[str, Any]:
    """``requests`` GETs of ``path`` over ``connections`` kept-alive connections."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    by_status: dict[int, list[float]] = {}
    left = requests
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        url, connector=aiohttp.TCPConnector(limit=connections), timeout=timeout
    ) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                started = time.perf_counter()
                async with session.get(path) as answer:
                    await answer.read()
                took = time.perf_counter() - started
                latencies.append(took)
                statuses[answer.status] += 1
                by_status.setdefault(answer.status, []).append(took)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(connections):
                tg.start_soon(worker)
        wall = time.perf_counter() - started
    return {
        "requests": requests,
        "wall": wall,
        "rps": requests / wall,
        "p50": _quantile(latencies, 0.50),
        "p99": _quantile(latencies, 0.99),
        "max": max(latencies),
        "statuses": dict(statuses),
        "by_status": {s: {"p50": _quantile(v, 0.5), "p99": _quantile(v, 0.99)} for s, v in by_status.items()},
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def reads(backend: str, appointment: int, base_url: str) -> dict[str, Any]:
    path = f"/appointments/{appointment}"
    with app_process(base_url, backend, WEBAPP_RATE_LIMIT="off") as (url, pid):
        row: dict[str, Any] = {"backend": backend, "rss_start": rss_mib(pid)}
        await load(url, path, 500)  # warm-up: connections opened, code paths run once
        done = 0
        for checkpoint in CHECKPOINTS:
            cpu_before = cpu_seconds(pid)
            result = await load(url, path, checkpoint - done)
            cpu = cpu_seconds(pid) - cpu_before
            done = checkpoint
            row[checkpoint] = {**result, "cpu_ms": cpu / result["requests"] * 1000, "rss": rss_mib(pid)}
        return row


async def tight(backend: str, appointment: int) -> dict[str, Any]:
    path = f"/appointments/{appointment}"
    with sandbox_process(rate_limit=TIGHT_LIMIT) as base_url:
        with app_process(base_url, backend, WEBAPP_RATE_LIMIT=TIGHT_LIMIT) as (url, _pid):
            result = await load(url, path, TIGHT_REQUESTS)
        sandbox = stats(base_url)
    return {"backend": backend, **result, "sandbox_429": sandbox.get("rate_limited", sandbox)}


def first_appointment(base_url: str) -> int:
    answer = httpx.get(f"{base_url}/v1/appointments/bookable", params={"sliceSize": 10},
                       headers={"X-API-KEY": KEY})  # fmt: skip
    answer.raise_for_status()
    return int(answer.json()["result"][0]["id"])


async def main(backends: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"reads": [], "tight": []}
    with sandbox_process() as base_url:
        appointment = first_appointment(base_url)
        for backend in backends:
            print(f"reads on {backend} ...", file=sys.stderr, flush=True)
            results["reads"].append(await reads(backend, appointment, base_url))
    for backend in backends:
        print(f"tight limit on {backend} ...", file=sys.stderr, flush=True)
        results["tight"].append(await tight(backend, appointment))
    results["appointment"] = appointment
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"| backend | req/s | p50 | p99 | app CPU/request | RSS start | after {CHECKPOINTS[0]:,} | after {CHECKPOINTS[1]:,} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["reads"]:
        last = row[CHECKPOINTS[1]]
        lines.append(
            f"| {row['backend']} | {last['rps']:.0f} | {last['p50'] * 1000:.0f} ms | {last['p99'] * 1000:.0f} ms "
            f"| {last['cpu_ms']:.2f} ms | {row['rss_start']:.0f} MiB | {row[CHECKPOINTS[0]]['rss']:.0f} MiB "
            f"| {last['rss']:.0f} MiB |"
        )
    lines += [
        "",
        f"Under a sandbox limit of {TIGHT_LIMIT} for the endpoint ({TIGHT_REQUESTS:,} requests, {CONNECTIONS} connections):",
        "",
        "| backend | 200s | 429s (the app's) | p50 of a 429 | p99 of a 429 | slowest answer | 429s from the sandbox |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["tight"]:
        refused = row["by_status"].get(429, {"p50": float("nan"), "p99": float("nan")})
        lines.append(
            f"| {row['backend']} | {row['statuses'].get(200, 0)} | {row['statuses'].get(429, 0)} "
            f"| {refused['p50'] * 1000:.0f} ms | {refused['p99'] * 1000:.0f} ms | {row['max'] * 1000:.0f} ms "
            f"| {row['sandbox_429']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", choices=("httpx", "aiohttp"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 and 1,500 requests")
    args = parser.parse_args()
    if args.quick:
        CHECKPOINTS, TIGHT_REQUESTS = (500, 1_500), 500
    outcome = anyio.run(main, args.backend or ["httpx", "aiohttp"])
    print(outcome, file=sys.stderr)
    print(table(outcome))
