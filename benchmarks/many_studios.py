"""Section 12 of RESULTS.md: many studios (issue 28). ``python -m benchmarks.many_studios``
(``--quick``: a short smoke run; ``--json PATH``: every figure as JSON), measured alone and written
into RESULTS.md by hand from its output.

A. **500 clients**, each with its own key and base URL, against 500 studios of the sandbox served
   by another process (``benchmarks/studios_server.py``), on both backends: the obvious way
   (``AppointmentsClient(api_key=k, base_url=u)`` x 500) and ``parent.for_studio(u, k)`` x 500.
   Seconds to construct them, to open them (``async with``, one after another), to make one call
   each (``check_api_key``, all at once) and to close them; the growth of resident memory
   (``/proc/self/statm``) and of open file descriptors (``/proc/self/fd``) at the peak and after
   closing. Each row in a fresh interpreter; the obvious way also without any call, and also with
   the package as of ``f58b428`` (the commit before this work; ``git archive`` of the package into
   a temporary folder, first on ``sys.path``).
B. **A dead studio** (every request answered 503), in-process ``Studios``: 20 sequential
   ``get_bookable_appointment`` calls with the circuit breaker (the default) and without
   (``circuit_breaker=None``): wall time and the requests the studio received. Then the studio
   comes back 2 s after its breaker opened, while a caller tries every 0.25 s: seconds from its
   return to the first call that succeeds, and the calls that failed fast meanwhile.
C. **The bulk sweep** (``examples/many_studios.py``'s ``sweep``: every bookable appointment of every
   studio and a week of its slots) over 200 studios of ``Studios.varied`` in another process, one
   parent (``max_connections=64``), ``concurrency=32``, ``per_studio=4``, each studio's budget its
   sandbox limit (the rate-limited one 20 per 10 s): wall against the floor that latency and
   budgets set, studios ok and failed, 429s the sandbox sent, peak memory and sockets. Each
   backend in a fresh worker process against a fresh server.
D. **Several processes on one Redis**: 3 worker processes sweep the same 50 studios at once (each
   studio's limit 30 per 10 s, each worker's budget ``RateLimit(30, 10, storage=redis)`` on its
   parent): wall, 429s, requests per studio. Then 10,000 studios' throttles on Redis (one turn of
   each of the two reading endpoints a sweep uses): keys, memory, round trips per request, wall.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import gc
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx

from benchmarks._common import ROOT

BEFORE = "f58b428"  # the commit before issue 28's work
BACKENDS = ("httpx", "aiohttp")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
DAYS = 7  # examples/many_studios.py's week
DAYS_PER_REQUEST = 6  # the API's most per slot request
SPAN_MARGIN = 1  # the client keeps a budget over its span + 1 s (_throttling.SPAN_MARGIN)
SWEEP_OPERATIONS = ("getBookableAppointments", "getBookableAppointmentSlots")


# -- the process measured ---------------------------------------------------------------------------


def rss_mib() -> float:
    """Resident memory now (``/proc/self/statm``), MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE / MIB


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_sockets() -> int:
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return found


class Peaks:
    """The highest resident memory, open descriptors and (``sockets=True``) open sockets of this
    process, sampled every ``interval`` seconds by a thread, and at each ``note()``."""

    def __init__(self, interval: float = 0.05, *, sockets: bool = False) -> None:
        self.interval, self.count_sockets = interval, sockets
        self.rss = self.fds = self.sockets = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peaks", daemon=True)

    def note(self) -> None:
        self.rss = max(self.rss, rss_mib())
        self.fds = max(self.fds, open_fds())
        if self.count_sockets:
            self.sockets = max(self.sockets, open_sockets())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.note()

    def __enter__(self) -> Peaks:
        self.note()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.note()


# -- the studios' server, in a process of its own ------------------------------------------------------


@contextlib.contextmanager
def studios_server(*args: str) -> Iterator[list[dict[str, Any]]]:
    """``benchmarks/studios_server.py`` with ``args``; yields its studios (name, base_url, api_key,
    role, rate_limit) once every one accepts connections. Stopped by closing its stdin."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.studios_server", *args],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            line = process.stdout.readline()
            if not line:
                process.wait(10)
                errors.seek(0)
                raise RuntimeError(f"the studios' server did not start: {errors.read().decode()[-2000:]}")
            yield list(json.loads(line)["studios"])
        finally:
            process.stdin.close()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sandbox_stats(studios: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each studio's ``GET /_sandbox/stats`` (``requests`` counts this request too)."""
    with httpx.Client(timeout=10) as http:
        return [http.get(f"{studio['base_url']}/_sandbox/stats").json() for studio in studios]


def run_child(
    flag: str, config: dict[str, Any], *, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Any:
    """``python -m benchmarks.many_studios FLAG CONFIG.json`` in a fresh interpreter; its last line, as JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(config, file)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.many_studios", flag, file.name],
            cwd=cwd, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        os.unlink(file.name)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            f"{flag} {config.get('backend')} failed ({done.returncode}): {done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- A. 500 clients ----------------------------------------------------------------------------------


async def clients_child(config: dict[str, Any]) -> dict[str, Any]:
    """One row of A, in this (fresh) interpreter: whichever package is first on ``sys.path``."""
    import perfectgym_appointments_client as package
    from perfectgym_appointments_client import AppointmentsClient

    backend, way, call, studios = config["backend"], config["way"], config["call"], config["studios"]
    if backend == "aiohttp":
        import aiohttp  # noqa: F401 - imported before the baseline, not counted as the clients'
    gc.collect()
    base_rss, base_fds = rss_mib(), open_fds()
    row: dict[str, Any] = {"package": package.__file__, "base_rss_mib": base_rss, "base_fds": base_fds}
    with Peaks() as peaks:
        started = time.perf_counter()
        parent = None
        if way == "obvious":
            clients = [
                AppointmentsClient(api_key=s["api_key"], base_url=s["base_url"], http_backend=backend)
                for s in studios
            ]
        else:
            first = studios[0]
            parent = AppointmentsClient(
                api_key=first["api_key"], base_url=first["base_url"], http_backend=backend
            )
            clients = [parent.for_studio(s["base_url"], s["api_key"]) for s in studios]
        row["construct_s"] = time.perf_counter() - started
        peaks.note()
        stack = contextlib.AsyncExitStack()
        started = time.perf_counter()
        for client in [parent, *clients] if parent is not None else clients:
            await stack.enter_async_context(client)
        row["open_s"] = time.perf_counter() - started
        peaks.note()
        if call:
            started = time.perf_counter()
            answers = await asyncio.gather(*(client.check_api_key() for client in clients))
            row["call_s"] = time.perf_counter() - started
            assert all(answers), "a studio refused its key"
        peaks.note()
        row["at_peak_rss_mib"], row["at_peak_fds"] = rss_mib() - base_rss, open_fds() - base_fds
        started = time.perf_counter()
        await stack.aclose()  # the last opened first (each client's task group is nested in the last)
        row["close_s"] = time.perf_counter() - started
        await asyncio.sleep(0.25)  # transports finish closing on the loop's next turns
        del clients, parent, stack
        gc.collect()
    row["peak_rss_mib"], row["peak_fds"] = peaks.rss - base_rss, peaks.fds - base_fds
    row["after_rss_mib"], row["after_fds"] = rss_mib() - base_rss, open_fds() - base_fds
    return row


def five_hundred_clients(count: int, backends: Sequence[str], before: bool) -> dict[str, Any]:
    """A: every row in a fresh interpreter, against ``count`` studios of one server process."""
    rows: list[dict[str, Any]] = []
    with studios_server("--count", str(count)) as studios, tempfile.TemporaryDirectory() as old:
        variants = [
            ("now", way, call) for way, call in (("obvious", True), ("obvious", False), ("for_studio", True))
        ]
        if before:
            archive = subprocess.run(
                ["git", "archive", BEFORE, "perfectgym_appointments_client"], cwd=ROOT, capture_output=True,
                check=True,
            ).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
            variants += [("before", "obvious", True), ("before", "obvious", False)]
        for version, way, call in variants:
            for backend in backends:
                print(f"  A. {version} {backend} {way}{'' if call else ', no call'} ...", flush=True)
                config = {"backend": backend, "way": way, "call": call, "studios": studios}
                if version == "now":
                    row = run_child("--clients-child", config)
                    assert row["package"].startswith(str(ROOT)), row["package"]
                else:
                    # The old package from the folder (the working directory, first on sys.path),
                    # the benchmarks from ROOT.
                    env = {**os.environ, "PYTHONPATH": str(ROOT)}
                    row = run_child("--clients-child", config, cwd=Path(old), env=env)
                    assert row["package"].startswith(old), row["package"]
                rows.append({"version": version, "backend": backend, "way": way, "call": call, **row})
    return {"count": count, "rows": rows}


# -- B. a dead studio ------------------------------------------------------------------------------------


class Records(logging.Handler):
    """The client's log records at INFO and above, kept (and not printed)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def breaker_lines(self, host: str) -> list[str]:
        return [
            f"{r.levelname}: {r.getMessage()}"
            for r in self.records
            if host in r.getMessage() and ("in a row" in r.getMessage() or "answers again" in r.getMessage())
        ]


async def sequential_calls(studio: Any, backend: str, calls: int, *, breaker: bool) -> dict[str, Any]:
    from perfectgym_appointments_client import AppointmentsClient, PerfectGymError

    options: dict[str, Any] = {} if breaker else {"circuit_breaker": None}
    appointment = studio.store.listed()[0].id
    errors: collections.Counter[str] = collections.Counter()
    durations = []
    async with AppointmentsClient(
        api_key=studio.api_key, base_url=studio.base_url, http_backend=backend, **options
    ) as client:
        before = studio.stats["requests"]
        started = time.perf_counter()
        for _ in range(calls):
            began = time.perf_counter()
            try:
                await client.get_bookable_appointment(appointment)
                errors["ok"] += 1
            except PerfectGymError as exc:
                errors[type(exc).__name__] += 1
            durations.append(time.perf_counter() - began)
        wall = time.perf_counter() - started
    return {
        "calls": calls, "wall_s": wall, "requests": studio.stats["requests"] - before,
        "outcomes": dict(errors), "slowest_call_s": max(durations),
        "last_call_ms": durations[-1] * 1000,
    }  # fmt: skip


async def time_to_heal(studio: Any, backend: str, *, back_after: float, every: float) -> dict[str, Any]:
    """A caller tries every ``every`` s; ``back_after`` s after its first fast failure (the breaker
    open) the studio answers again. Seconds from then to the first success."""
    from perfectgym_appointments_client import AppointmentsClient, CircuitOpenError, PerfectGymError
    from perfectgym_appointments_client.sandbox import Faults

    appointment = studio.store.listed()[0].id
    opened = anyio.Event()
    moments: dict[str, float] = {}
    calls: list[tuple[float, str]] = []  # (seconds from the start when the call began, outcome)
    started = time.perf_counter()

    async def bring_back() -> None:
        await opened.wait()
        await anyio.sleep(back_after)
        studio.faults = Faults()
        moments["back"] = time.perf_counter() - started

    before = studio.stats["requests"]
    async with (
        AppointmentsClient(api_key=studio.api_key, base_url=studio.base_url, http_backend=backend) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(bring_back)
        while True:
            began = time.perf_counter() - started
            try:
                await client.get_bookable_appointment(appointment)
                outcome = "ok"
            except CircuitOpenError:
                outcome = "failed fast"
                if not opened.is_set():
                    moments["first_fast"] = began
                    opened.set()
            except PerfectGymError as exc:
                outcome = type(exc).__name__
            calls.append((began, outcome))
            if outcome == "ok":
                moments["ok"] = time.perf_counter() - started
                break
            await anyio.sleep(every)
    back = moments["back"]
    return {
        "back_after_open_s": back_after, "every_s": every, "first_fast_s": moments["first_fast"], "back_s": back,
        "ok_s": moments["ok"], "heal_s": moments["ok"] - back,
        "failed_fast": sum(outcome == "failed fast" for _, outcome in calls),
        "failed_fast_after_back": sum(outcome == "failed fast" and t >= back for t, outcome in calls),
        "failed_slow": sum(outcome not in ("ok", "failed fast") for _, outcome in calls),
        "requests": studio.stats["requests"] - before,
    }  # fmt: skip


async def dead_studio(backends: Sequence[str], calls: int) -> dict[str, Any]:
    """B, against in-process studios (the heal needs the studio's faults changed while it runs):
    three down studios per backend, one per scenario, so no breaker state carries over."""
    from perfectgym_appointments_client import CircuitBreaker
    from perfectgym_appointments_client.sandbox import Faults, Studios, StudioSettings

    down = StudioSettings(faults=Faults(rate_503=1.0))
    settings = {1 + i: down for i in range(3 * len(backends))}
    records = Records()
    package_logger = logging.getLogger("perfectgym_appointments_client")
    package_logger.addHandler(records)
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False
    results: dict[str, Any] = {
        "cooldown_s": CircuitBreaker().cooldown,
        "threshold": CircuitBreaker().failure_threshold,
    }
    try:
        async with Studios(1 + len(settings), rate_limit=None, settings=settings) as studios:
            for n, backend in enumerate(backends):
                off, on, heal = (studios[1 + 3 * n + k] for k in range(3))
                print(f"  B. {backend}: {calls} calls, breaker off ...", flush=True)
                without = await sequential_calls(off, backend, calls, breaker=False)
                print(f"  B. {backend}: {calls} calls, breaker on ...", flush=True)
                with_breaker = await sequential_calls(on, backend, calls, breaker=True)
                with_breaker["log"] = records.breaker_lines(on.base_url.split("//")[1])
                print(f"  B. {backend}: time to heal ...", flush=True)
                healed = await time_to_heal(heal, backend, back_after=2.0, every=0.25)
                healed["log"] = records.breaker_lines(heal.base_url.split("//")[1])
                results[backend] = {"breaker_off": without, "breaker_on": with_breaker, "heal": healed}
    finally:
        package_logger.removeHandler(records)
        package_logger.propagate = True
    return results


# -- C and D: sweeps, each in a worker process ------------------------------------------------------------


def trace_turn_lags(backend: str) -> list[float]:
    """Instruments this process (a sweep worker) to record, for every slot request, the seconds
    from the rate-limit turn it spends (taken alone, or reserved with its call's other windows)
    to its answer: how much later than its turn the server may count it. The client keeps its
    budget over the span + ``SPAN_MARGIN`` (1 s), so a lag above that can let the server see
    more than its limit in its span. Wraps two private methods; measuring only."""
    import contextvars

    from perfectgym_appointments_client import _throttling

    if backend == "aiohttp":
        from perfectgym_appointments_client._aiohttp_backend import AiohttpBackend as Backend
    else:
        from perfectgym_appointments_client._httpx_backend import HttpxBackend as Backend  # type: ignore[assignment]
    turn_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("turn_at", default=None)
    lags: list[float] = []
    wait, send = _throttling.Throttle._wait, Backend.send

    async def timed_wait(self: Any, operation: str, cost: int, **kwargs: Any) -> float:
        waited = await wait(self, operation, cost, **kwargs)
        if operation == SWEEP_OPERATIONS[1]:
            turn_at.set(time.monotonic())  # inherited by the tasks of a reservation's windows
        return waited

    async def timed_send(self: Any, method: str, url: str, *args: Any) -> Any:
        answer = await send(self, method, url, *args)
        began = turn_at.get()
        if began is not None and "/slots" in url:
            lags.append(time.monotonic() - began)
        return answer

    _throttling.Throttle._wait = timed_wait  # type: ignore[method-assign]
    Backend.send = timed_send  # type: ignore[method-assign]
    return lags


async def sweep_worker(config: dict[str, Any]) -> dict[str, Any]:
    """One sweep (``examples/many_studios.py``) in this (fresh) interpreter."""
    from examples.many_studios import StudioTarget, sweep
    from perfectgym_appointments_client import AppointmentsClient, RateLimit

    backend = config["backend"]
    lags = trace_turn_lags(backend) if config.get("trace_lags") else None
    if backend == "aiohttp":
        import aiohttp  # noqa: F401 - before the baseline
    targets = []
    for studio in config["studios"]:
        limit = studio["rate_limit"] if config["budget_per_studio"] else None
        budget = None if limit is None else RateLimit(requests=limit[0], seconds=max(1, round(limit[1])))
        targets.append(StudioTarget(studio["name"], studio["base_url"], studio["api_key"], budget))
    options: dict[str, Any] = {}
    if config["parent_budget"] is not None:
        requests, seconds = config["parent_budget"]
        options["rate_limit"] = RateLimit(
            requests=requests, seconds=seconds, storage=config["storage"], margin=config.get("margin", 1)
        )
    gc.collect()
    base_rss, base_sockets = rss_mib(), open_sockets()
    if config.get("start_at"):
        await anyio.sleep(max(config["start_at"] - time.time(), 0.0))
    first = targets[0]
    with Peaks(0.05, sockets=True) as peaks:
        started, epoch = time.perf_counter(), time.time()
        parent = AppointmentsClient(
            api_key=first.api_key, base_url=first.base_url, http_backend=backend,
            max_connections=config["max_connections"], **options,
        )  # fmt: skip
        async with parent:
            results = await sweep(
                parent, targets, concurrency=config["concurrency"], per_studio=config["per_studio"]
            )
        wall = time.perf_counter() - started
        ended = time.time()
    return {
        "wall_s": wall, "started": epoch, "ended": ended,
        "peak_rss_mib": peaks.rss - base_rss, "peak_sockets": peaks.sockets - base_sockets,
        "base_sockets": base_sockets, "lags": lags,
        "studios": [
            {
                "name": r.name, "seconds": r.seconds, "appointments": len(r.slots or {}), "slots": r.slot_count,
                "error": None if r.error is None else type(r.error).__name__,
                "message": None if r.error is None else str(r.error)[:300],
            }
            for r in results
        ],
    }  # fmt: skip


def slot_requests(appointments: int, days_per_request: int = DAYS_PER_REQUEST) -> int:
    """The slot requests a week of an appointment takes: one per window of at most the days allowed."""
    return appointments * math.ceil(DAYS / days_per_request)


def budget_floor(requests: int, allowed: int, seconds: float, *, margin: int = SPAN_MARGIN) -> float:
    """The least wall of ``requests`` to one endpoint under a budget of ``allowed`` per ``seconds``:
    the first ``allowed`` at once, then ``allowed`` per span, the client's span being
    ``seconds + margin`` (benchmarks/rate_limit.py's ``floor``)."""
    return math.ceil(requests / allowed - 1) * (seconds + margin)


def bulk_sweep(count: int, backends: Sequence[str]) -> dict[str, Any]:
    """C: per backend a fresh server (the rate-limited studio's window starts empty) and a fresh
    worker (no breaker state, learned limit or budget carried over)."""
    concurrency, per_studio, max_connections = 32, 4, 64
    limited = (20, 10.0)
    out: dict[str, Any] = {"count": count, "concurrency": concurrency, "per_studio": per_studio,
                           "max_connections": max_connections, "limited": limited, "runs": {}}  # fmt: skip
    for backend in backends:
        print(f"  C. {backend}: {count} studios ...", flush=True)
        with studios_server(
            "--count", str(count), "--varied", "--rate-limit", "1000/60",
            "--studio-rate-limit", f"5={limited[0]}/{limited[1]:g}",
        ) as studios:  # fmt: skip
            config = {
                "backend": backend, "studios": studios, "budget_per_studio": True, "parent_budget": None,
                "storage": None, "concurrency": concurrency, "per_studio": per_studio,
                "max_connections": max_connections,
            }  # fmt: skip
            run = run_child("--sweep-worker", config)
            stats = sandbox_stats(studios)
        by_name = {r["name"]: r for r in run["studios"]}
        roles = {s["name"]: s["role"] for s in studios}
        slow = next(by_name[n] for n, role in roles.items() if role == "slow")
        limited_one = next(by_name[n] for n, role in roles.items() if role == "rate-limited")
        # The slow studio (1 s a request): its list page, then its appointments per_studio at a
        # time, each one's windows one after another (get_slots without a start date asks its
        # first window alone: its slots name the studio's zone, hence its today, for the rest);
        # the rate-limited one: its slot requests under its budget.
        slow_rounds = 1 + math.ceil(slow["appointments"] / per_studio) * math.ceil(DAYS / DAYS_PER_REQUEST)
        limited_floor = budget_floor(slot_requests(limited_one["appointments"]), limited[0], limited[1])
        run.update(
            slow_rounds=slow_rounds, slow_floor_s=slow_rounds * 1.0, limited_floor_s=limited_floor,
            floor_s=max(slow_rounds * 1.0, limited_floor),
            ok=sum(r["error"] is None for r in run["studios"]),
            failed={r["name"]: f"{roles[r['name']]}: {r['error']}" for r in run["studios"] if r["error"]},
            failed_messages={r["name"]: r["message"] for r in run["studios"] if r["error"]},
            rate_limited=sum(s["rate_limited"] for s in stats),
            requests=sum(s["requests"] - 1 for s in stats),
            slots=sum(r["slots"] for r in run["studios"]),
            special={
                roles[name]: {k: by_name[name][k] for k in ("seconds", "appointments", "slots", "error")}
                for name in list(roles)[:6]
            },
            special_requests={roles[s["name"]]: st["requests"] - 1 for s, st in zip(studios[:6], stats[:6], strict=True)},
        )  # fmt: skip
        del run["studios"]
        out["runs"][backend] = run
    return out


def several_processes(
    count: int,
    workers: int,
    backend: str,
    redis_url: str,
    *,
    max_connections: int = 64,
    concurrency: int = 32,
    margin: int = SPAN_MARGIN,
) -> dict[str, Any]:
    """D, first part: ``workers`` processes sweep the same ``count`` studios at once, their budgets
    on one Redis, each kept over the span + ``margin`` seconds (``RateLimit.margin``)."""
    limit = (30, 10)
    with studios_server("--count", str(count), "--rate-limit", f"{limit[0]}/{limit[1]}") as studios:
        config = {
            "backend": backend, "studios": studios, "budget_per_studio": False, "parent_budget": list(limit),
            "storage": redis_url, "concurrency": concurrency, "per_studio": 4, "max_connections": max_connections,
            "margin": margin,
            "start_at": time.time() + 3.0,  # every worker imported and waiting by then
            "trace_lags": True,
        }  # fmt: skip
        with contextlib.ExitStack() as stack:
            files = []
            for _ in range(workers):
                file = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))
                json.dump(config, file)
                file.flush()
                files.append(file)
            command = [sys.executable, "-m", "benchmarks.many_studios", "--sweep-worker"]
            processes = [
                subprocess.Popen(
                    [*command, file.name], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                for file in files
            ]
            runs = []
            for process in processes:
                stdout, stderr = process.communicate(timeout=300)
                if process.returncode != 0:
                    raise RuntimeError(f"a sweep worker failed: {stderr[-3000:]}")
                runs.append(json.loads(stdout.strip().splitlines()[-1]))
        stats = sandbox_stats(studios)
    appointments = statistics.median(s["appointments"] for run in runs for s in run["studios"])
    lags = sorted(lag for run in runs for lag in run["lags"])
    requests = [s["requests"] - 1 for s in stats]
    return {
        "count": count, "workers": workers, "backend": backend, "limit": limit,
        "wall_s": max(run["ended"] for run in runs) - config["start_at"],
        "worker_walls_s": [run["wall_s"] for run in runs],
        "start_spread_s": max(r["started"] for r in runs) - min(r["started"] for r in runs),
        "floor_s": budget_floor(workers * slot_requests(int(appointments)), *limit, margin=margin),
        "margin": margin,
        "ok": sum(s["error"] is None for run in runs for s in run["studios"]),
        "failed": sum(s["error"] is not None for run in runs for s in run["studios"]),
        "rate_limited": sum(s["rate_limited"] for s in stats),
        "requests_per_studio": {"min": min(requests), "max": max(requests), "total": sum(requests)},
        "first_studio_by_endpoint": stats[0]["requests_by_endpoint"],
        "concurrency": concurrency, "max_connections": max_connections,
        "lag_s": {
            "median": statistics.median(lags), "p99": lags[int(len(lags) * 0.99)], "max": lags[-1],
            "over_margin": sum(lag > margin for lag in lags), "requests": len(lags),
        },
        "rate_limited_by_studio": {s["name"]: st["rate_limited_by_endpoint"] for s, st in zip(studios, stats, strict=True) if st["rate_limited"]},
        "appointments_per_studio": appointments,
    }  # fmt: skip


@contextlib.contextmanager
def counted_round_trips() -> Iterator[list[int]]:
    """Every write redis-py makes to a socket in this process (a command, or a pipeline's
    commands at once: one round trip each) while inside; yields a one-item list, the count."""
    from redis.connection import AbstractConnection

    original = AbstractConnection.send_packed_command
    count = [0]
    lock = threading.Lock()

    def counting(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            count[0] += 1
        return original(self, command, *args, **kwargs)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


async def redis_cost(redis_url: str, count: int, swept: int, concurrency: int = 32) -> dict[str, Any]:
    """D, second part: ``count`` studios' throttles on one (emptied) Redis, one turn of each of
    the sweep's two reading endpoints each, ``concurrency`` at a time; then the first ``swept`` of
    them take the rest of a 12-appointment studio's sweep (23 more slot turns each): what a
    studio's moving window costs once it holds a sweep's requests."""
    import redis

    from perfectgym_appointments_client import RateLimit
    from perfectgym_appointments_client._throttling import Throttle

    logger = logging.getLogger("benchmarks.many_studios")
    limit = RateLimit(storage=redis_url)  # the API's 1,000 a minute: nothing waits

    async def take(throttles: Sequence[Any], operations: Sequence[str]) -> tuple[float, int]:
        pending = iter(throttles)

        async def turns() -> None:
            for throttle in pending:
                for operation in operations:
                    await throttle.wait_turn(operation, patience=None)

        started = time.perf_counter()
        with counted_round_trips() as trips:
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(turns)
        return time.perf_counter() - started, trips[0]

    with redis.Redis.from_url(redis_url) as conn:
        conn.flushall()
        conn.config_resetstat()
        memory, keys = int(conn.info("memory")["used_memory"]), int(conn.dbsize())
        gc.collect()
        rss = rss_mib()
        throttles = [
            Throttle(limit, api_key=f"studio-{i}-key", base_url=f"https://studio-{i:05d}.open-api.perfectgym.com",
                     logger=logger)
            for i in range(count)
        ]  # fmt: skip
        client_mib = rss_mib() - rss
        wall, trips = await take(throttles, SWEEP_OPERATIONS)
        first_memory = int(conn.info("memory")["used_memory"])
        used, added = first_memory - memory, int(conn.dbsize()) - keys
        commands = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in conn.info("commandstats").items()
            if name.removeprefix("cmdstat_").split("|")[0] not in ("info", "config", "dbsize", "flushall")
        }
        sample = next(iter(conn.scan_iter(count=100))).decode()
        ttl = conn.ttl(sample)
        head, _, _, *tail = sample.split("/")  # LIMITS:LIMITER/<namespace>/<operation>/1000/61/second

        def studio_bytes(throttles: Sequence[Any]) -> float:
            """The mean of MEMORY USAGE over each studio's two keys, summed: bytes per studio."""
            sizes = [
                conn.memory_usage("/".join([head, t.namespace, operation, *tail]), samples=0) or 0
                for t in throttles
                for operation in SWEEP_OPERATIONS
            ]
            return sum(sizes) / len(throttles)

        one_turn = studio_bytes(throttles[:swept])
        more = 23  # 1 list + 24 slot requests: 12 appointments, a week each in two windows
        swept_wall, swept_trips = await take(throttles[:swept], [SWEEP_OPERATIONS[1]] * more)
        a_sweep = studio_bytes(throttles[:swept])
    requests = count * len(SWEEP_OPERATIONS)
    return {
        "studios": count, "requests": requests, "concurrency": concurrency, "wall_s": wall,
        "keys": added, "keys_per_studio": added / count, "used_memory_mib": used / MIB,
        "bytes_per_studio": used / count, "commands": commands, "round_trips": trips,
        "round_trips_per_request": trips / requests, "key_sample": sample, "key_ttl_s": ttl,
        "client_rss_mib": client_mib, "swept": swept, "swept_requests": swept * more, "swept_wall_s": swept_wall,
        "swept_round_trips_per_request": swept_trips / (swept * more),
        "key_bytes_one_turn": one_turn, "key_bytes_a_sweep": a_sweep,
    }  # fmt: skip


def redis_part(count: int, workers: int, studios: int, backend: str) -> dict[str, Any]:
    from benchmarks.redis_process import RedisMissing, RedisProcess

    try:
        server = RedisProcess().start()
    except RedisMissing as exc:
        return {"skipped": str(exc)}
    try:
        shared = []
        for concurrency, margin in ((32, SPAN_MARGIN), (8, SPAN_MARGIN), (32, 3)):
            print(
                f"  D. {workers} workers x {count} studios on one Redis, {concurrency} at a time, "
                f"margin {margin} s ...",
                flush=True,
            )
            shared.append(
                several_processes(count, workers, backend, server.url, concurrency=concurrency, margin=margin)
            )
        print(f"  D. {studios:,} studios' throttles on Redis ...", flush=True)
        cost = anyio.run(redis_cost, server.url, studios, min(studios, 500))
    finally:
        server.close()
    return {"processes": shared, "cost": cost}


# -- the report --------------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines = [f"Measured {results['date']} (`{results['command']}`), {results['machine']}.", ""]
    a = results.get("clients")
    if a:
        lines += [
            f"A. {a['count']} clients, each its own key and base URL, against {a['count']} studios served "
            "by another process:",
            "",
            "| package | backend | way | construct | open | one call each | close | RSS peak | RSS after close | fds peak | fds after close |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in a["rows"]:
            way = r["way"] + ("" if r["call"] else ", no call")
            call = f"{r['call_s']:.2f} s" if "call_s" in r else "-"
            lines.append(
                f"| {'now' if r['version'] == 'now' else BEFORE} | {r['backend']} | {way} | {r['construct_s']:.2f} s "
                f"| {r['open_s']:.2f} s | {call} | {r['close_s']:.2f} s | {r['peak_rss_mib']:+.1f} MiB "
                f"| {r['after_rss_mib']:+.1f} MiB | {r['peak_fds']:+.0f} | {r['after_fds']:+.0f} |"
            )
        bases = {
            (r["backend"]): (r["base_rss_mib"], r["base_fds"]) for r in a["rows"] if r["version"] == "now"
        }
        lines += [
            "",
            "Baselines (after imports): "
            + ", ".join(f"{b} {rss:.0f} MiB, {fds} fds" for b, (rss, fds) in bases.items()),
            "",
        ]
    b = results.get("dead")
    if b:
        lines += [
            f"B. A studio answering 503 to everything: {results['dead_calls']} sequential `get_bookable_appointment` "
            f"calls (default retries: 2, full-jitter backoff); breaker threshold {b['threshold']}, cooldown "
            f"{b['cooldown_s']:g} s:",
            "",
            "| backend | breaker | wall | requests the studio got | outcomes | last call |",
            "|---|---|---|---|---|---|",
        ]
        for backend in BACKENDS:
            if backend not in b:
                continue
            for name in ("breaker_off", "breaker_on"):
                r = b[backend][name]
                outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].items())
                lines.append(
                    f"| {backend} | {'on' if name == 'breaker_on' else 'off'} | {r['wall_s']:.2f} s | {r['requests']} "
                    f"| {outcomes} | {r['last_call_ms']:.1f} ms |"
                )
        lines += [
            "",
            "| backend | studio back (after its breaker opened) | first success after | calls failed fast (after it was back) | requests the studio got |",
            "|---|---|---|---|---|",
        ]
        for backend in BACKENDS:
            if backend not in b:
                continue
            h = b[backend]["heal"]
            lines.append(
                f"| {backend} | {h['back_after_open_s']:g} s | {h['heal_s']:.2f} s "
                f"| {h['failed_fast']} ({h['failed_fast_after_back']}) | {h['requests']} |"
            )
        first = next(b[x] for x in BACKENDS if x in b)
        lines += ["", "Log: " + "; ".join(first["heal"]["log"]), ""]
    c = results.get("sweep")
    if c:
        lines += [
            f"C. The bulk sweep: {c['count']} studios (`Studios.varied`, the rate-limited one "
            f"{c['limited'][0]} per {c['limited'][1]:g} s), parent `max_connections={c['max_connections']}`, "
            f"`concurrency={c['concurrency']}`, `per_studio={c['per_studio']}`:",
            "",
            "| backend | wall | floor | studios ok | failed | slots | requests | 429s from the sandbox | peak RSS growth | peak sockets |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for backend, r in c["runs"].items():
            failed = "; ".join(f"{role}" for role in r["failed"].values())
            lines.append(
                f"| {backend} | {r['wall_s']:.1f} s | {r['floor_s']:.1f} s | {r['ok']} | {len(r['failed'])} ({failed}) "
                f"| {r['slots']:,} | {r['requests']:,} | {r['rate_limited']} | +{r['peak_rss_mib']:.1f} MiB "
                f"| {r['peak_sockets']:.0f} |"
            )
        r = next(iter(c["runs"].values()))
        lines += [
            "",
            f"Floor: the slow studio {r['slow_rounds']} requests one after another x 1 s = {r['slow_floor_s']:.0f} s; the rate-limited "
            f"one {r['limited_floor_s']:.0f} s (its slot requests over its budget, span + {SPAN_MARGIN} s). "
            "The six special studios (seconds, requests): "
            + "; ".join(
                f"{role} {v['seconds']:.1f} s, {r['special_requests'][role]}"
                + (f", {v['error']}" if v["error"] else "")
                for role, v in r["special"].items()
            ),
            "",
        ]
        for name, message in r["failed_messages"].items():
            lines += [f"{name}: {message}", ""]
    d = results.get("redis")
    if d and "skipped" in d:
        lines += [f"D. skipped: {d['skipped']}", ""]
    elif d:
        p, k = d["processes"][0], d["cost"]
        lines += [
            f"D. {p['workers']} processes ({p['backend']}) sweeping the same {p['count']} studios at once, each "
            f"studio's limit {p['limit'][0]} per {p['limit'][1]} s, each worker's budget the same on one Redis "
            f"(`max_connections={p['max_connections']}`, `per_studio=4`); lag: from a slot request's rate-limit "
            "turn to its answer:",
            "",
            "| studios at once per worker | margin | wall | floor | workers' walls | sweeps ok | failed | 429s from the sandbox "
            "| requests per studio | lag median | lag p99 | lag max | requests with lag > margin |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in d["processes"]:
            lag = p["lag_s"]
            lines.append(
                f"| {p['concurrency']} | {p.get('margin', 1)} s | {p['wall_s']:.1f} s | {p['floor_s']:.0f} s "
                f"| {', '.join(f'{w:.1f}' for w in p['worker_walls_s'])} s | {p['ok']} | {p['failed']} "
                f"| {p['rate_limited']} | {p['requests_per_studio']['min']}-{p['requests_per_studio']['max']} "
                f"(total {p['requests_per_studio']['total']:,}) | {lag['median']:.2f} s | {lag['p99']:.2f} s "
                f"| {lag['max']:.2f} s | {lag['over_margin']:,} of {lag['requests']:,} |"
            )
        lines += [
            "",
            f"{k['studios']:,} studios on Redis, one turn of each of the sweep's two endpoints "
            f"({k['requests']:,} requests, {k['concurrency']} at a time):",
            "",
            "| keys | keys per studio | memory | bytes per studio | round trips per request | wall | client memory for the throttles |",
            "|---|---|---|---|---|---|---|",
            f"| {k['keys']:,} | {k['keys_per_studio']:.1f} | {k['used_memory_mib']:.1f} MiB | {k['bytes_per_studio']:.0f} "
            f"| {k['round_trips_per_request']:.2f} | {k['wall_s']:.1f} s | +{k['client_rss_mib']:.1f} MiB |",
            "",
            f"Then the first {k['swept']:,} of them took the rest of a sweep's turns ({k['swept_requests']:,} "
            f"more slot turns, 23 each: 25 in all, a 12-appointment studio's week) in {k['swept_wall_s']:.1f} s, "
            f"{k['swept_round_trips_per_request']:.2f} round trips each. Its two keys (`MEMORY USAGE`) take "
            f"{k['key_bytes_one_turn']:,.0f} bytes after one turn each, {k['key_bytes_a_sweep']:,.0f} holding a "
            f"sweep's 25 requests; `used_memory` counts {k['bytes_per_studio']:,.0f} bytes per studio after one "
            f"turn each (keys, expiry entries, the allocator's share). A key: `{k['key_sample']}`, its TTL "
            f"after the run {k['key_ttl_s']} s.",
            "",
            "Commands Redis ran (those inside the Lua scripts included): "
            + ", ".join(f"{name} {n:,}" for name, n in sorted(k["commands"].items(), key=lambda x: -x[1])),
            "",
        ]  # fmt: skip
    return "\n".join(lines)


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} at the start, Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (fewer studios and calls)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure here as JSON")
    parser.add_argument("--no-before", action="store_true", help=f"leave out the package as of {BEFORE}")
    parser.add_argument("--only", choices=("A", "B", "C", "D"), action="append", help="these parts only")
    parser.add_argument("--clients-child", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--sweep-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients_child or args.sweep_worker:
        child = clients_child if args.clients_child else sweep_worker
        config = json.loads(Path(args.clients_child or args.sweep_worker).read_text(encoding="utf-8"))
        print(json.dumps(anyio.run(child, config)))
        return
    quick, parts = args.quick, set(args.only or "ABCD")
    command = "python -m benchmarks.many_studios" + (" --quick" if quick else "")
    results: dict[str, Any] = {
        "command": command, "date": dt.date.today().isoformat(), "machine": machine(),
        "dead_calls": 6 if quick else 20,
    }  # fmt: skip
    started = time.perf_counter()
    if "A" in parts:
        print("A. clients ...", flush=True)
        results["clients"] = five_hundred_clients(50 if quick else 500, BACKENDS, before=not args.no_before)
    if "B" in parts:
        print("B. a dead studio ...", flush=True)
        results["dead"] = anyio.run(dead_studio, BACKENDS[:1] if quick else BACKENDS, results["dead_calls"])
    if "C" in parts:
        print("C. the bulk sweep ...", flush=True)
        results["sweep"] = bulk_sweep(30 if quick else 200, BACKENDS)
    if "D" in parts:
        print("D. several processes on one Redis ...", flush=True)
        results["redis"] = redis_part(
            10 if quick else 50, 2 if quick else 3, 500 if quick else 10_000, "httpx"
        )
    results["wall_s"] = time.perf_counter() - started
    print()
    print(report(results))
    print(f"\n({results['wall_s']:.0f} s in all)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
