"""Section 11: what OpenTelemetry costs the client, and that it costs nothing when off.

``python -m benchmarks.telemetry`` measures client CPU per ``get_slots`` (30 slots) on each backend
against ``serve_fixed`` (a trivial keep-alive server in another process), from 1 task and from 100
tasks, for three clients side by side in interleaved rounds: ``off`` (no ``telemetry``: the
default, ``opentelemetry`` not imported), ``api`` (``Telemetry()`` over the API's no-op global
providers: no SDK installed or configured), ``sdk`` (the SDK: a ``TracerProvider`` whose
``SimpleSpanProcessor`` hands every span to an exporter that drops it, and a ``MeterProvider``
with an ``InMemoryMetricReader``; every span recorded, every metric aggregated).

``--against COMMIT`` also times the in-process facade of section 1 (canned answers through
``httpx.MockTransport``, wall µs per sequential call) with the package as it is and as it was at
COMMIT (``git archive`` into a temporary folder), one fresh interpreter each, alternating: whether
the request path without telemetry is as fast as before it had hooks.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from benchmarks._common import APPOINTMENT, KEY, ROOT, drive, fixed_server
from perfectgym_appointments_client import AppointmentsClient, Telemetry

VARIANTS = ("off", "api", "sdk")
BACKENDS = ("httpx", "aiohttp")
TASKS = (1, 100)


def sdk_telemetry() -> Telemetry:
    """The SDK with every span recorded and handed to an exporter that drops it, and every metric
    aggregated in memory (never read: what a periodic exporter does between its reads)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def telemetry_for(variant: str) -> Telemetry | None:
    if variant == "off":
        return None
    return Telemetry() if variant == "api" else sdk_telemetry()


async def telemetry_cost(base_url: str, rounds: int, sequential: int, concurrent: int) -> dict[str, Any]:
    """Client CPU µs per ``get_slots`` (``time.process_time``: every thread), by backend, variant
    and tasks: the median over ``rounds`` interleaved rounds, the order rotated each round; the
    ratio to ``off`` taken per round, then the median."""
    clients = {
        (backend, variant): AppointmentsClient(
            api_key=KEY,
            base_url=base_url,
            rate_limit=None,
            http_backend=backend,
            telemetry=telemetry_for(variant),
        )
        for backend in BACKENDS
        for variant in VARIANTS
    }
    calls: dict[tuple[str, str], Callable[[], Awaitable[object]]] = {
        key: functools.partial(client.get_slots, APPOINTMENT, days_ahead=3) for key, client in clients.items()
    }
    for call in calls.values():  # warm up: every connection opened, every cache filled
        await drive(call, 16, 64)
    cpu: dict[tuple[str, str, int], list[float]] = {}
    for number in range(rounds):
        for tasks in TASKS:
            count = sequential if tasks == 1 else concurrent
            keys = list(calls)
            shift = number % len(keys)
            for backend, variant in keys[shift:] + keys[:shift]:
                used, _, _ = await drive(calls[backend, variant], tasks, count)
                cpu.setdefault((backend, variant, tasks), []).append(used / count)
    for client in clients.values():
        await client.aclose()
    result: dict[str, Any] = {
        "rounds": rounds,
        "sequential": sequential,
        "concurrent": concurrent,
        "rows": [],
    }
    for backend in BACKENDS:
        for tasks in TASKS:
            off = cpu[backend, "off", tasks]
            for variant in VARIANTS:
                mine = cpu[backend, variant, tasks]
                result["rows"].append(
                    {
                        "backend": backend,
                        "tasks": tasks,
                        "variant": variant,
                        "cpu_us": statistics.median(mine) * 1e6,
                        "vs_off": statistics.median(m / o for m, o in zip(mine, off, strict=True)),
                        "added_us": statistics.median(m - o for m, o in zip(mine, off, strict=True)) * 1e6,
                    }
                )
    return result


# -- the request path without telemetry, now and before ------------------------------------------------

_FACADE = textwrap.dedent(
    """
    import json, sys, anyio, httpx
    from benchmarks._common import APPOINTMENT, BASE, KEY, canned_transport
    from benchmarks.overhead import per_call
    import perfectgym_appointments_client as package
    from perfectgym_appointments_client import AppointmentsClient

    async def main(calls):
        http = httpx.AsyncClient(transport=canned_transport(), base_url=BASE)
        async with http, AppointmentsClient(api_key=KEY, base_url=BASE, http_client=http, rate_limit=None) as c:
            page = await per_call(lambda: c.bookable_appointments(slice_size=50, limit=50).to_list(), calls)
            slots = await per_call(lambda: c.get_slots(APPOINTMENT, days_ahead=6), calls)
        print(json.dumps({"page": page, "slots": slots, "package": package.__file__}))

    anyio.run(main, int(sys.argv[1]))
    """
)


def before_and_now(commit: str, rounds: int, calls: int) -> dict[str, Any]:
    """Section 1's in-process facade (wall µs per sequential call) with the package as checked out
    and as of ``commit``, each round one fresh interpreter of each, alternating."""
    import os

    samples: dict[str, dict[str, list[float]]] = {"before": {}, "now": {}}
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ["git", "archive", commit, "perfectgym_appointments_client"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        for number in range(rounds):
            order = [("before", folder), ("now", str(ROOT))]
            for name, where in order if number % 2 == 0 else order[::-1]:
                # The package from ``where`` (first on sys.path: the working directory); the
                # benchmarks from ROOT.
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                done = subprocess.run(
                    [sys.executable, "-c", _FACADE, str(calls)], cwd=where, env=env,
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                found = json.loads(done.stdout)
                assert found["package"].startswith(where), found["package"]
                for op in ("page", "slots"):
                    samples[name].setdefault(op, []).append(found[op])
    result: dict[str, Any] = {"commit": commit, "rounds": rounds, "calls": calls}
    for op in ("page", "slots"):
        before, now = samples["before"][op], samples["now"][op]
        result[op] = {
            "before_us": statistics.median(before) * 1e6,
            "now_us": statistics.median(now) * 1e6,
            "now/before": statistics.median(n / b for n, b in zip(now, before, strict=True)),
            "spread_before": (max(before) - min(before)) / statistics.median(before),
        }
    return result


def table(cost: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | tasks | telemetry | client CPU µs/request | / off | added µs |",
        "|---|---|---|---|---|---|",
    ]
    for row in cost["rows"]:
        lines.append(
            f"| {row['backend']} | {row['tasks']} | {row['variant']} | {row['cpu_us']:.0f} "
            f"| {row['vs_off']:.2f} | {row['added_us']:+.0f} |"
        )
    return lines


async def main(rounds: int, sequential: int, concurrent: int, against: str | None) -> None:
    with fixed_server() as url:
        cost = await telemetry_cost(url, rounds, sequential, concurrent)
    print("\n".join(table(cost)))
    result: dict[str, Any] = {"cost": cost}
    if against:
        result["before_and_now"] = before_and_now(against, rounds, 300)
        for op in ("page", "slots"):
            r = result["before_and_now"][op]
            print(
                f"{op}: before {r['before_us']:.0f} µs, now {r['now_us']:.0f} µs, now/before {r['now/before']:.3f} "
                f"(before's own spread {r['spread_before']:.1%})"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=300, help="calls a round from 1 task")
    parser.add_argument("--concurrent", type=int, default=2000, help="calls a round from 100 tasks")
    parser.add_argument("--against", metavar="COMMIT", help="also time the request path as of COMMIT")
    args = parser.parse_args()
    anyio.run(main, args.rounds, args.sequential, args.concurrent, args.against)
