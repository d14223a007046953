"""RESULTS.md from the results ``run.main`` collects: sections 1 to 6, and section 7 (measured in
``benchmarks/rate_limit.py``). A section's notes that only apply when its goal is missed sit with
its measurement (``overhead_notes``, ``backends_report``, ``import_notes``).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from benchmarks._common import ROOT, verdict
from benchmarks.backends import backends_report
from benchmarks.import_time import import_notes
from benchmarks.overhead import overhead_notes
from benchmarks.pagination import MEMORY_COUNTS
from benchmarks.rate_limit import APART, APART_CALLS, CLIENT_COUNTS, FAN_OUT, LIMIT
from perfectgym_appointments_client._constants import DEFAULT_MAX_CONNECTIONS
from perfectgym_appointments_client._throttling import SPAN_MARGIN


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
        f"`from perfectgym_appointments_client import AppointmentsClient`: {imp['package_ms']:.0f} ms; `import httpx`: {imp['httpx_ms']:.0f} ms "
        f"(each minus a bare interpreter start, median of {imp['repeats']:.0f} fresh interpreters); ratio "
        f"**{imp['ratio']:.2f}**, goal <= 1.25: {verdict(imp['ratio'], 1.25)}.",
        "",
        *import_notes(imp),
        *rate_limit_report(results),
        *redis_outage_report(results.get("redis_outage")),
    ]
    return "\n".join(lines)


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


def redis_outage_report(figures: dict[str, Any] | None) -> list[str]:
    """Section 8 (benchmarks/redis_outage.py)."""
    lines = ["", "## 8. A Redis outage", ""]
    if not figures or "skipped" in figures:
        return [*lines, f"Not measured: {(figures or {}).get('skipped', 'not run')}."]
    return [
        *lines,
        "One client, sequential `get_bookable_appointment` calls to a local sandbox, "
        '`RateLimit(storage="redis://...")` with its default timeouts (0.25 s a Redis call, asked '
        "again 5 s after a failure); `python -m benchmarks.redis_outage`.",
        "",
        "| Redis | calls/s | first call after the fault | back on Redis after it answers |",
        "|---|---|---|---|",
        f"| up | {figures['calls_per_second_redis_up']:.0f} | | |",
        f"| stopped (SIGTERM) | {figures['calls_per_second_stopped']:.0f} | "
        f"{figures['first_call_s_stopped'] * 1000:.0f} ms | {figures['back_on_redis_s_after_stopped']:.1f} s |",
        f"| frozen (SIGSTOP) | {figures['calls_per_second_frozen']:.0f} | "
        f"{figures['first_call_s_frozen'] * 1000:.0f} ms | {figures['back_on_redis_s_after_frozen']:.1f} s |",
        "",
        "While Redis fails the budget is kept in-process, which is faster than a Redis round trip; "
        "a stopped Redis refuses the connection at once, a frozen one costs the storage timeout once, "
        "then once per retry interval. Back on Redis: within the retry interval of the fault.",
    ]
