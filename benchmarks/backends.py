"""Section 5: client CPU per call on httpx and on aiohttp, raw and through the facade, for two answers
(one bookable appointment, and a 30-slot list) from 1 and 100 tasks against ``serve_fixed``: whether
the facade on each backend stays close to the raw library under it, and, for the typed models, to a
*typed floor*: raw aiohttp + ``json.loads`` + the same public attrs objects built directly, with
no checks (what any typed client must at least do).
"""

from __future__ import annotations

import functools
import gc
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import httpx

from benchmarks._common import (
    APPOINTMENT,
    KEY,
    ROOT,
    appointment_payload,
    drive,
    profile_line,
    slots_payload,
    verdict,
    where_time_goes,
)
from perfectgym_appointments_client import AppointmentsClient, BookableAppointment, Instructor, Slot
from perfectgym_appointments_client._constants import DEFAULT_MAX_CONNECTIONS, KEEPALIVE_EXPIRY
from perfectgym_appointments_client._generated.api.appointments import (
    get_bookable_appointment,
    get_bookable_appointment_slots,
)
from perfectgym_appointments_client._zoned import parse_zoned_datetime

BACKEND_TASKS = (1, 100)
ANSWERS = ("one", "slots")
# The rows of each answer, each against the raw client it is measured against.
BACKEND_ROWS = {
    "raw_httpx": "raw_httpx",
    "raw_aiohttp": "raw_aiohttp",
    "floor_aiohttp": "raw_aiohttp",
    "facade_httpx": "raw_httpx",
    "facade_aiohttp": "raw_aiohttp",
}
# Where the facade's time on aiohttp goes, at 100 tasks only: the generated parse by hand.
BACKEND_DIAGNOSTICS = {"generated_aiohttp": "raw_aiohttp"}
# The goals (client CPU per call at 100 tasks; issue 31).
GOAL_ONE = 1.15  # facade on aiohttp / raw aiohttp, one bookable appointment
GOAL_FLOOR = 1.10  # facade on aiohttp / typed floor, 30 slots
GOAL_HTTPX = 1.05  # facade on httpx / raw httpx, each answer


def _one(data: Any) -> BookableAppointment:
    """The typed floor of the small answer: the public model, built directly."""
    return BookableAppointment(
        data["id"], data.get("title"), data.get("duration"), data.get("category"),
        data.get("description"), data.get("imgUrl"),
    )  # fmt: skip


def _slots(data: Any) -> list[Slot]:
    """The typed floor of the slot list: the public models (date-times parsed as the package
    parses them, tz-aware in the named zone), built directly in comprehensions."""
    return [
        Slot(
            parse_zoned_datetime(slot["startDateTime"]),
            parse_zoned_datetime(slot["endDateTime"]),
            [
                Instructor(i["id"], i["firstName"], i["lastName"], i.get("publicName"))
                for i in slot["instructors"]
            ],
        )
        for slot in data
    ]


async def measure(
    base_url: str, rounds: int, sequential: int, concurrent: int, *, profile: bool
) -> dict[str, Any]:
    """Two answers against ``serve_fixed`` over loopback: ``get_bookable_appointment`` (one
    bookable appointment, 6 fields) and ``get_slots`` (30 slots). For each: raw httpx, raw aiohttp,
    the typed floor (raw aiohttp, ``json.loads``, the public models built directly), the facade on
    each backend; from 1 task (``sequential`` calls) and 100 tasks (``concurrent``), every client
    with 16 connections, all kept alive (5 s). Client CPU per call and calls/s, median over
    interleaved rounds (the order rotated each round); ratios per round, then median.

    A diagnostic variant at 100 tasks: the generated parse on aiohttp by hand (``build_request``
    -> the raw session -> ``json.loads`` -> ``parse_response``), which splits the facade's cost
    into the models and the rest. Then one profiled batch of each facade at 100 tasks
    (``where_time_goes``).
    """
    limit = DEFAULT_MAX_CONNECTIONS
    headers = {"X-API-KEY": KEY}
    paths = {
        "one": f"/v1/appointments/bookable/{APPOINTMENT}",
        "slots": f"/v1/appointments/bookable/{APPOINTMENT}/slots",
    }
    days = 3
    params: dict[str, dict[str, Any]] = {"one": {}, "slots": {"daysAhead": days}}
    floors: dict[str, Callable[[Any], object]] = {"one": _one, "slots": _slots}
    operations: dict[str, Any] = {
        "one": (get_bookable_appointment, (APPOINTMENT,), {}),
        "slots": (get_bookable_appointment_slots, (APPOINTMENT,), {"days_ahead": days}),
    }
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
        backend: AppointmentsClient(
            api_key=KEY, base_url=base_url, rate_limit=None, http_backend=backend, max_connections=limit
        )
        for backend in ("httpx", "aiohttp")
    }

    def answer_calls(answer: str) -> dict[str, Callable[[], Awaitable[object]]]:
        path, query, floor = paths[answer], params[answer], floors[answer]

        async def raw_httpx() -> object:
            response = await raw_http.get(path, params=query)
            assert response.status_code == 200
            return json.loads(response.content)

        async def raw_aiohttp() -> object:
            async with session.get(path, params=query) as response:
                assert response.status == 200
                body = await response.read()
            return json.loads(body)

        async def floor_aiohttp() -> object:
            async with session.get(path, params=query) as response:
                assert response.status == 200
                body = await response.read()
            return floor(json.loads(body))

        async def generated_aiohttp() -> object:
            operation, args, kwargs = operations[answer]
            prepared = operation.build_request(*args, **kwargs)
            async with session.request(
                prepared.method, prepared.path, params=prepared.params, headers=prepared.headers
            ) as response:
                body = await response.read()
            return operation.parse_response(response.status, json.loads(body))

        def facade(client: AppointmentsClient) -> Callable[[], Awaitable[object]]:
            if answer == "one":
                return functools.partial(client.get_bookable_appointment, APPOINTMENT)
            return functools.partial(client.get_slots, APPOINTMENT, days_ahead=days)

        return {
            "raw_httpx": raw_httpx,
            "raw_aiohttp": raw_aiohttp,
            "floor_aiohttp": floor_aiohttp,
            "generated_aiohttp": generated_aiohttp,
            "facade_httpx": facade(facades["httpx"]),
            "facade_aiohttp": facade(facades["aiohttp"]),
        }

    calls = {answer: answer_calls(answer) for answer in ANSWERS}
    for answer in ANSWERS:  # warm up: every connection opened, every cache filled
        for call in calls[answer].values():
            await drive(call, limit, limit * 4)
        assert await calls["one"]["facade_aiohttp"]() == await calls["one"]["floor_aiohttp"]()
        assert await calls["slots"]["facade_aiohttp"]() == await calls["slots"]["floor_aiohttp"]()
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    workers: dict[str, list[float]] = {}
    # The garbage collector's runs during each row's rounds (young generation, full), counted
    # by a gc callback: how often it runs is part of what a request costs (_http.Turn).
    collecting: list[str | None] = [None]
    collections: dict[str, list[int]] = {}
    calls_made: dict[str, int] = {}

    def count_collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and collecting[0] is not None:
            counts = collections.setdefault(collecting[0], [0, 0, 0])
            counts[info["generation"]] += 1

    gc.callbacks.append(count_collections)
    for number in range(rounds):
        for tasks in BACKEND_TASKS:
            names = [
                (answer, name)
                for answer in ANSWERS
                for name in list(BACKEND_ROWS) + (list(BACKEND_DIAGNOSTICS) if tasks > 1 else [])
            ]
            shift = number % len(names)
            for answer, name in names[shift:] + names[:shift]:
                count = sequential if tasks == 1 else concurrent
                key = f"{answer}_{name}_{tasks}"
                collecting[0] = key
                used, took, own = await drive(calls[answer][name], tasks, count)
                collecting[0] = None
                calls_made[key] = calls_made.get(key, 0) + count
                cpu.setdefault(key, []).append(used / count)
                wall.setdefault(key, []).append(took / count)
                workers.setdefault(key, []).append(max(used - own, 0.0) / count)
    gc.callbacks.remove(count_collections)
    raw: dict[str, Any] = {
        "cpu": cpu, "wall": wall, "workers": workers, "collections": collections, "calls": calls_made,
        "profiles": {},
    }  # fmt: skip
    tasks = BACKEND_TASKS[-1]
    for answer in ANSWERS:
        for name in ("facade_httpx", "facade_aiohttp"):
            if profile:
                raw["profiles"][f"{answer}_{name}_profile"] = await where_time_goes(
                    calls[answer][name], tasks, concurrent // 2
                )
    await raw_http.aclose()
    await session.close()
    for client in facades.values():
        await client.aclose()
    return raw


async def backends(
    base_url: str, rounds: int, sequential: int, concurrent: int, processes: int = 1
) -> dict[str, Any]:
    """:func:`measure`, in this process (``processes=1``) or in ``processes`` fresh ones one after
    another (``python -m benchmarks.backends``), rounds pooled: a process's hash seed and memory
    layout moved these ratios by up to 8% from one run to the next, more than a round's noise.
    Medians over all rounds; ratios per round (within its process), then the median."""
    if processes == 1:
        raw = await measure(base_url, rounds, sequential, concurrent, profile=True)
    else:
        raw = {"cpu": {}, "wall": {}, "workers": {}, "collections": {}, "calls": {}, "profiles": {}}
        for number in range(processes):
            args = [base_url, str(rounds), str(sequential), str(concurrent)] + (
                ["--profile"] if number == 0 else []
            )
            done = await anyio.run_process(
                [sys.executable, "-m", "benchmarks.backends", *args], cwd=str(ROOT), check=True
            )
            part = json.loads(done.stdout)
            for kind in ("cpu", "wall", "workers"):
                for key, values in part[kind].items():
                    raw[kind].setdefault(key, []).extend(values)
            for key, counts in part["collections"].items():
                raw["collections"][key] = [
                    a + b for a, b in zip(raw["collections"].get(key, [0, 0, 0]), counts, strict=True)
                ]
            for key, count in part["calls"].items():
                raw["calls"][key] = raw["calls"].get(key, 0) + count
            raw["profiles"].update(part["profiles"])
    return summarize(raw, rounds * processes, sequential, concurrent, processes)


def summarize(
    raw: dict[str, Any], rounds: int, sequential: int, concurrent: int, processes: int
) -> dict[str, Any]:
    cpu, wall, workers = raw["cpu"], raw["wall"], raw["workers"]
    collections, calls_made = raw["collections"], raw["calls"]
    result: dict[str, Any] = {
        "rounds": rounds, "processes": processes, "sequential": sequential, "concurrent": concurrent,
        **raw["profiles"],
    }  # fmt: skip
    for key in cpu:
        young, _, full = collections.get(key, [0, 0, 0])
        result[f"{key}_gc_young_per_1000"] = young * 1000 / calls_made[key]
        result[f"{key}_gc_full_per_1000"] = full * 1000 / calls_made[key]
        result[f"{key}_cpu_us"] = statistics.median(cpu[key]) * 1e6
        result[f"{key}_workers_us"] = statistics.median(workers[key]) * 1e6
        result[f"{key}_rps"] = statistics.median(1 / w for w in wall[key])

    def ratio(answer: str, name: str, base: str, tasks: int) -> float:
        mine, theirs = cpu[f"{answer}_{name}_{tasks}"], cpu[f"{answer}_{base}_{tasks}"]
        return statistics.median(m / t for m, t in zip(mine, theirs, strict=True))

    for answer in ANSWERS:
        for tasks in BACKEND_TASKS:
            pairs = {**BACKEND_ROWS, **(BACKEND_DIAGNOSTICS if tasks > 1 else {})}
            for name, base in pairs.items():
                result[f"{answer}_{name}/{base}_{tasks}"] = ratio(answer, name, base, tasks)
                result[f"{answer}_{name}/floor_aiohttp_{tasks}"] = ratio(answer, name, "floor_aiohttp", tasks)
    return result


def backends_report(b: dict[str, Any]) -> list[str]:
    labels = {
        "raw_httpx": "raw httpx + `json.loads`",
        "raw_aiohttp": "raw aiohttp + `json.loads`",
        "floor_aiohttp": "typed floor: raw aiohttp + `json.loads` + the public models built directly",
        "facade_httpx": "facade on httpx",
        "facade_aiohttp": 'facade on aiohttp (`http_backend="aiohttp"`)',
        "generated_aiohttp": "diagnostic: generated parse on the raw aiohttp session",
    }
    answers = {
        "one": f"one bookable appointment ({len(appointment_payload())} bytes, 6 fields; `get_bookable_appointment`)",
        "slots": f"30 slots ({len(slots_payload()) / 1024:.1f} KiB, 2 instructors each; `get_slots`)",
    }
    lines = [
        "## 5. HTTP backends: httpx and aiohttp",
        "",
        "Two answers over loopback, against a trivial keep-alive server in another process (`serve_fixed`: an "
        "asyncio protocol that answers every request at once with a fixed body): "
        + "; ".join(answers.values())
        + f". From 1 task ({b['sequential']:,} calls a round) and from 100 tasks sharing one client "
        f"({b['concurrent']:,} calls a round). Every client has 16 connections, all kept alive (5 s). Raw httpx: "
        "`httpx.AsyncClient(limits=16/16)`, `get`, `json.loads(response.content)`; raw aiohttp: "
        "`aiohttp.ClientSession(connector=TCPConnector(limit=16))`, `get`, `await response.read()`, `json.loads`; "
        "the typed floor: raw aiohttp and `json.loads`, then the same public attrs objects the facade returns "
        "(`BookableAppointment`, `Slot`, `Instructor`, date-times parsed as the package parses them) built "
        "directly with no checks, what any typed client must at least do; the facade: "
        "`AppointmentsClient(rate_limit=None)`, default timeouts (each attempt's deadline, the size cap), "
        "retries, circuit breaker, models built and checked. CPU is this process's (`time.process_time`, every "
        f"thread) per request, median of {b['rounds']} interleaved rounds (the order rotated each round)"
        + (
            f", {b['rounds'] // b['processes']} in each of {b['processes']} fresh processes run one after another (a "
            "process's hash seed and memory layout moved these ratios by up to 8% from one run to the next)"
            if b.get("processes", 1) > 1
            else ""
        )
        + "; worker "
        "threads: that minus the event loop thread's (`time.thread_time`). Ratios are taken per round, then the "
        "median.",
        "",
        "| answer | client | tasks | client CPU µs/request | of it, worker threads | requests/s "
        "| CPU / raw of its library | CPU / typed floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for answer in ANSWERS:
        for tasks in BACKEND_TASKS:
            pairs = {**BACKEND_ROWS, **(BACKEND_DIAGNOSTICS if tasks > 1 else {})}
            for name, base in pairs.items():
                key = f"{answer}_{name}_{tasks}"
                bold = "**" if name.startswith("facade") and tasks > 1 else ""
                floor = f"{b[f'{answer}_{name}/floor_aiohttp_{tasks}']:.2f}" if "aiohttp" in name else ""
                lines.append(
                    f"| {answer} | {labels[name]} | {tasks} | {b[key + '_cpu_us']:.0f} | {b[key + '_workers_us']:.0f} "
                    f"| {b[key + '_rps']:.0f} | {bold}{b[f'{answer}_{name}/{base}_{tasks}']:.2f}{bold} | {floor} |"
                )
    one_aio = b["one_facade_aiohttp/raw_aiohttp_100"]
    slots_floor = b["slots_facade_aiohttp/floor_aiohttp_100"]
    one_hx, slots_hx = b["one_facade_httpx/raw_httpx_100"], b["slots_facade_httpx/raw_httpx_100"]
    lines += [
        "",
        "The ratios side by side (client CPU per request, 100 tasks, the goals of issue 31):",
        "",
        "| answer | facade on aiohttp / raw aiohttp | facade on aiohttp / typed floor | facade on httpx / raw httpx |",
        "|---|---|---|---|",
        f"| one bookable appointment | **{one_aio:.2f}** (goal <= {GOAL_ONE}) | "
        f"{b['one_facade_aiohttp/floor_aiohttp_100']:.2f} | **{one_hx:.2f}** (goal <= {GOAL_HTTPX}) |",
        f"| 30 slots | {b['slots_facade_aiohttp/raw_aiohttp_100']:.2f} | **{slots_floor:.2f}** (goal <= {GOAL_FLOOR}) "
        f"| **{slots_hx:.2f}** (goal <= {GOAL_HTTPX}) |",
        "",
        f"Goals: facade on aiohttp <= {GOAL_ONE} x raw aiohttp on one appointment: {verdict(one_aio, GOAL_ONE)}; "
        f"<= {GOAL_FLOOR} x the typed floor on 30 slots: {verdict(slots_floor, GOAL_FLOOR)}; facade on httpx <= "
        f"{GOAL_HTTPX} x raw httpx: {verdict(one_hx, GOAL_HTTPX)} (one appointment), {verdict(slots_hx, GOAL_HTTPX)} "
        "(30 slots).",
        "",
        f"Raw aiohttp takes {b['slots_raw_aiohttp_100_cpu_us'] / b['slots_raw_httpx_100_cpu_us']:.2f} of raw httpx's "
        "CPU per request at 100 tasks on the slot list; httpx's cost at 100 tasks is mostly httpcore's pool, which "
        "walks every queued request on each request and release (encode/httpx#3215, section 4). The typed floor "
        f"adds {b['slots_floor_aiohttp_100_cpu_us'] - b['slots_raw_aiohttp_100_cpu_us']:.0f} µs to raw aiohttp for "
        "the 30 slots' objects.",
        "",
    ]
    if "slots_facade_aiohttp_100_gc_young_per_1000" in b:

        def collected(name: str) -> str:
            key = f"slots_{name}_100"
            return f"{b[key + '_gc_young_per_1000']:.1f} ({b[key + '_gc_full_per_1000']:.2f} full)"

        lines += [
            "Garbage collections per 1,000 requests (young generation, and full ones), 30 slots, 100 tasks: raw "
            f"aiohttp {collected('raw_aiohttp')}, the typed floor {collected('floor_aiohttp')}, the facade on "
            f"aiohttp {collected('facade_aiohttp')}. A request waits for its turn on the shared pool inside "
            "aiohttp's connector, once aiohttp has built it (`_http.Turn`); waiting before it, the requests a burst "
            "of freed connections woke built theirs all at once, and the collector ran about 20 times as often.",
            "",
        ]
    for answer, name, base, goal, value in (
        ("one", "facade_aiohttp", "raw_aiohttp", GOAL_ONE, one_aio),
        ("slots", "facade_aiohttp", "floor_aiohttp", GOAL_FLOOR, slots_floor),
        ("one", "facade_httpx", "raw_httpx", GOAL_HTTPX, one_hx),
        ("slots", "facade_httpx", "raw_httpx", GOAL_HTTPX, slots_hx),
    ):
        if value <= goal:
            continue
        mine, theirs = b[f"{answer}_{name}_100_cpu_us"], b[f"{answer}_{base}_100_cpu_us"]
        detail = ""
        if name == "facade_aiohttp":
            generated = b[f"{answer}_generated_aiohttp_100_cpu_us"]
            detail = (
                f" Measured apart (the diagnostic row): the generated parse on the raw session takes {generated:.0f} "
                f"µs, the request layer and the backend over it {mine - generated:.0f} µs."
            )
        lines += [
            f"Missed ({answers[answer].split(' (')[0]}, {labels[name]}): {mine - theirs:.0f} µs of CPU a request over "
            f"{labels[base].split(':')[0]}.{detail} "
            + profile_line(b[f"{answer}_{name}_profile"], f"{labels[name]}, {answer}, 100 tasks"),
            "",
        ]
    return lines


if __name__ == "__main__":  # one process's rounds, for backends(processes=N): JSON on stdout
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("numbers", nargs=3, type=int, help="rounds, calls from 1 task, calls from 100 tasks")
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()

    async def _main() -> dict[str, Any]:
        return await measure(arguments.base_url, *arguments.numbers, profile=arguments.profile)

    print(json.dumps(anyio.run(_main)))
