"""The client-side rate limit, measured (section 7 of RESULTS.md; ``benchmarks.run`` runs it).

* a fan-out against a sandbox with a small limit: with the client's matching ``RateLimit``, wall
  time against the floor that budget allows, and without it (``rate_limit=None``);
* memory and TCP connections per client for 1 to 200 clients (tenants), each with its own pool or
  all sharing one ``httpx.AsyncClient``;
* the limiter's client CPU per call, in memory and on Redis, against no limiter.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx

from benchmarks.redis_process import RedisMissing, RedisProcess
from perfectgym_appointments_client import AppointmentsClient, RateLimit
from perfectgym_appointments_client._throttling import SPAN_MARGIN
from perfectgym_appointments_client.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://api.test"
APPOINTMENT = 1229489023
FAN_OUT = 200  # appointments searched
CONCURRENCY = 16
LIMIT = (50, 5)  # requests per seconds: the sandbox's limit and the client's RateLimit
CLIENT_COUNTS = (1, 10, 200)
SHARED_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)
UNLIMITED = RateLimit(requests=10**6, seconds=60)  # a budget no benchmark round runs out of
APART, APART_CALLS = 0.020, 50  # calls further apart than limits' 10 ms expiry timer


def floor(requests: int, allowed: int, seconds: int) -> float:
    """The least wall time of ``requests`` calls under the client's budget of ``allowed`` per
    ``seconds``: the first ``allowed`` go at once, then ``allowed`` per span, the client's span
    being ``seconds + SPAN_MARGIN``."""
    return math.ceil(requests / allowed - 1) * (seconds + SPAN_MARGIN)


def first_error(exc: BaseException) -> BaseException:
    """The first error inside (nested) exception groups: what a task group raised."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


# -- a. fan-out against a rate-limited sandbox ---------------------------------------------------------


async def _limited_search(key: str, rate_limit: RateLimit | None, *, each: bool = False) -> dict[str, Any]:
    """``search_slots`` over FAN_OUT appointments against a fresh sandbox limited to LIMIT.

    A sandbox and a key of its own each time: the server's counter and the client's budget (one
    in-memory window per key and base URL, for the whole process) start empty. With ``each`` the
    same fan-out is made of single ``get_slots`` calls, keeping every call's outcome instead of
    stopping at the first failure as ``search_slots`` does.
    """
    allowed, seconds = LIMIT
    # a few more: some are not listed (switched off for online booking)
    async with Sandbox(api_key=key, appointments=FAN_OUT + 20, rate_limit=(allowed, float(seconds))) as sb:
        async with AppointmentsClient(api_key=key, base_url=sb.base_url, rate_limit=rate_limit) as client:
            # another endpoint, so it takes nothing from the slots' budget
            ids = [a.id async for a in client.bookable_appointments(slice_size=100, limit=FAN_OUT)]
            assert len(ids) == FAN_OUT
            failed = 0
            error: BaseException | None = None
            started = time.perf_counter()
            if each:
                limiter = anyio.CapacityLimiter(CONCURRENCY)

                async def one(appointment_id: int) -> None:
                    nonlocal failed, error
                    async with limiter:
                        try:
                            await client.get_slots(appointment_id, days_ahead=1)
                        except Exception as exc:  # noqa: BLE001 - counted and reported
                            failed += 1
                            error = exc

                async with anyio.create_task_group() as tg:
                    for appointment_id in ids:
                        tg.start_soon(one, appointment_id)
            else:
                try:
                    found = await client.search_slots(ids, days_ahead=1, concurrency=CONCURRENCY)
                    assert len(found) == FAN_OUT
                except Exception as exc:  # noqa: BLE001 - reported
                    error = first_error(exc)
            wall = time.perf_counter() - started
        served = sb.stats
    slots = "GET /v1/appointments/bookable/{bookableAppointmentId}/slots"
    return {
        "wall_s": wall,
        "requests": served["requests_by_endpoint"].get(slots, 0),
        "rate_limited": served["rate_limited"],
        "failed": failed,
        "error": type(error).__name__ if error is not None else "",
    }


async def limited_fan_out(repeats: int) -> dict[str, Any]:
    """The fan-out with the client's RateLimit matching the sandbox's (median wall of ``repeats``),
    then once without it: ``search_slots``, and the same fan-out call by call."""
    allowed, seconds = LIMIT
    ideal = floor(FAN_OUT, allowed, seconds)
    runs = [
        await _limited_search(f"bench-rate-{n}", RateLimit(requests=allowed, seconds=seconds))
        for n in range(repeats)
    ]
    wall = statistics.median(run["wall_s"] for run in runs)
    return {
        "wall_s": wall,
        "floor_s": ideal,
        "ratio": wall / ideal,
        "rate_limited": sum(run["rate_limited"] for run in runs),
        "errors": sum(1 for run in runs if run["error"]),
        "repeats": repeats,
        "unthrottled": await _limited_search("bench-rate-off", None),
        "unthrottled_each": await _limited_search("bench-rate-off-each", None, each=True),
    }


# -- b. memory and connections per client ------------------------------------------------------------


def _held(clients: list[AppointmentsClient], shared: httpx.AsyncClient | None) -> int:
    """TCP connections open in the clients' pools (httpcore's pool, private but stable in 1.0)."""
    https: list[Any] = [shared] if shared is not None else [client._api.backend.client for client in clients]
    transports: list[Any] = [http._transport for http in https]
    return sum(len(transport._pool.connections) for transport in transports)


def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def _rss() -> int:
    """This process's resident memory (Linux), bytes."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


async def _tenants(
    base_url: str,
    api_key: str,
    count: int,
    appointment_id: int,
    *,
    shared: bool,
    limited: bool,
    measure: Callable[[], int],
) -> dict[str, float]:
    """``count`` clients: memory per client (``measure``: traced or resident bytes) once
    constructed and after one call each (all at once), and the connections they hold then."""
    rate_limit = RateLimit() if limited else None
    gc.collect()
    start = measure()
    http = httpx.AsyncClient(limits=SHARED_LIMITS) if shared else None
    clients = [
        AppointmentsClient(api_key=api_key, base_url=base_url, http_client=http, rate_limit=rate_limit)
        for _ in range(count)
    ]
    gc.collect()
    idle = measure()
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(client.get_bookable_appointment, appointment_id)
    gc.collect()
    called = measure()
    held = _held(clients, http)
    for client in clients:
        await client.aclose()
    if http is not None:
        await http.aclose()
    return {
        "idle_kib": (idle - start) / count / 1024,
        "called_kib": (called - start) / count / 1024,
        "connections": held,
    }


async def _resident(
    base_url: str, api_key: str, count: int, appointment_id: int, pool: str, limit: str
) -> None:
    """In a fresh process (``python -m benchmarks.rate_limit``): resident memory, which also
    counts what OpenSSL allocates, unseen by tracemalloc. The warm-up client stays alive: memory
    freed earlier would be handed out again and look free."""
    options = {"shared": pool == "shared", "limited": limit == "limited"}
    warm = AppointmentsClient(
        api_key=api_key, base_url=base_url, rate_limit=RateLimit() if options["limited"] else None
    )
    await warm.get_bookable_appointment(appointment_id)
    row = await _tenants(base_url, api_key, count, appointment_id, measure=_rss, **options)
    print(json.dumps(row))
    await warm.aclose()


def _ssl_context_kib(count: int = 20) -> float:
    """In a fresh process: resident memory of one SSL context as httpx makes one for every
    ``httpx.AsyncClient`` by default (certifi's CA bundle loaded), KiB."""
    contexts = [httpx.create_ssl_context()]  # warm up
    start = _rss()
    contexts += [httpx.create_ssl_context() for _ in range(count)]
    return (_rss() - start) / count / 1024


async def client_memory(base_url: str, api_key: str) -> dict[str, float]:
    """Per client, for CLIENT_COUNTS clients of one sandbox (without a rate limit): each with its
    own pool, or all sharing one ``httpx.AsyncClient``; with the default RateLimit and without.
    Traced memory here (after a warm-up), resident memory in a fresh process each."""
    async with AppointmentsClient(api_key=api_key, base_url=base_url, rate_limit=None) as lister:
        appointment_id = (await lister.bookable_appointments(limit=1).to_list())[0].id
    result: dict[str, float] = {}
    for pool in ("own", "shared"):
        for limit in ("limited", "unlimited"):
            options = {"shared": pool == "shared", "limited": limit == "limited"}
            # warm up: imports, caches and the process-wide rate-limit storage are not per client
            await _tenants(base_url, api_key, 1, appointment_id, measure=_rss, **options)
            for count in CLIENT_COUNTS:
                tracemalloc.start()
                row = await _tenants(base_url, api_key, count, appointment_id, measure=_traced, **options)
                tracemalloc.stop()
                fresh = await anyio.run_process(
                    [sys.executable, "-m", "benchmarks.rate_limit", base_url, api_key, str(count),
                     str(appointment_id), pool, limit],
                    cwd=ROOT,
                )  # fmt: skip
                resident = json.loads(fresh.stdout)
                row |= {"rss_idle_kib": resident["idle_kib"], "rss_called_kib": resident["called_kib"]}
                result |= {f"{pool}_{limit}_{count}_{k}": v for k, v in row.items()}
    fresh = await anyio.run_process([sys.executable, "-m", "benchmarks.rate_limit", "ssl"], cwd=ROOT)
    result["ssl_context_kib"] = json.loads(fresh.stdout)
    return result


# -- c. the limiter's CPU per call ---------------------------------------------------------------------


def appointment_transport() -> httpx.MockTransport:
    body = json.dumps(
        {
            "id": APPOINTMENT,
            "title": "Personal Training",
            "duration": 60,
            "category": "Training",
            "description": "One hour of personal training with a coach of your choice.",
            "imgUrl": "https://example.com/img/1.png",
        }
    ).encode()
    headers = {"content-type": "application/json"}
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers=headers))


class ExpiryTimer:
    """What limits' MemoryStorage does on every hit, alone: re-arm a 10 ms ``threading.Timer``
    (a new thread) once the last one has fired, to drop expired entries."""

    def __init__(self) -> None:
        self.timer: threading.Timer | None = None

    def __call__(self) -> None:
        if self.timer is None or not self.timer.is_alive():
            self.timer = threading.Timer(0.01, lambda: None)
            self.timer.start()


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """Client CPU (``time.process_time``: every thread of this process) and wall seconds per call,
    over ``calls`` sequential calls after one warm-up call."""
    await call()
    started, used = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - used) / calls, (time.perf_counter() - started) / calls


def timer_thread_cpu(count: int = 50) -> float:
    """CPU seconds of one such timer thread, started, fired and finished."""
    used = time.process_time()
    for _ in range(count):
        timer = threading.Timer(0.01, lambda: None)
        timer.start()
        timer.join()
    return (time.process_time() - used) / count


async def limiter_cpu(rounds: int, calls: int, redis_url: str | None) -> dict[str, float]:
    """``get_bookable_appointment`` through a MockTransport, ``calls`` sequential calls: no
    limiter, the limiter in memory and on Redis, in interleaved rounds; and APART_CALLS calls
    APART seconds apart, without and with the limiter in memory.

    Each round gives every client a new key (so a new window): it starts empty and holds at most
    ``calls`` entries, as a real one holds at most its budget (1,000 by default). Where the time
    goes, in the same rounds: no limiter plus limits' expiry timer alone, a limiter's
    ``wait_turn`` alone (in memory and on Redis), and a bare ``anyio.to_thread`` hop.
    """
    # name: (rate limit, seconds between calls, against which variant)
    variants: dict[str, tuple[RateLimit | None, float, str]] = {
        "none": (None, 0.0, "none"),
        "memory": (UNLIMITED, 0.0, "none"),
        "timer": (None, 0.0, "none"),
        "none_apart": (None, APART, "none_apart"),
        "memory_apart": (UNLIMITED, APART, "none_apart"),
    }
    if redis_url is not None:
        redis = RateLimit(requests=UNLIMITED.requests, seconds=UNLIMITED.seconds, storage=redis_url)
        variants["redis"] = (redis, 0.0, "none")
    http = httpx.AsyncClient(transport=appointment_transport(), base_url=BASE)
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    for number in range(rounds):
        for name, (limit, apart, _) in variants.items():
            client = AppointmentsClient(
                api_key=f"bench-cpu-{number}-{name}", base_url=BASE, http_client=http, rate_limit=limit
            )
            timer = ExpiryTimer() if name == "timer" else None

            async def call(
                client: AppointmentsClient = client, timer: ExpiryTimer | None = timer, apart: float = apart
            ) -> None:
                if apart:
                    await anyio.sleep(apart)
                await client.get_bookable_appointment(APPOINTMENT)
                if timer is not None:
                    timer()

            samples = {name: await per_call(call, APART_CALLS if apart else calls)}
            if client._api.throttle is not None and not apart:  # the limiter without the call around it
                turn = functools.partial(
                    client._api.throttle.wait_turn, "getBookableAppointment", patience=None
                )
                samples[f"{name}_turn"] = await per_call(turn, calls)
            await client.aclose()
            for key, (used, took) in samples.items():
                cpu.setdefault(key, []).append(used)
                wall.setdefault(key, []).append(took)
        used, took = await per_call(functools.partial(anyio.to_thread.run_sync, int), calls)
        cpu.setdefault("hop", []).append(used)
        wall.setdefault("hop", []).append(took)
    await http.aclose()
    result: dict[str, float] = {
        "calls": calls,
        "rounds": rounds,
        "timer_thread_cpu_us": timer_thread_cpu() * 1e6,
    }
    for name in cpu:
        result[f"{name}_cpu_us"] = statistics.median(cpu[name]) * 1e6
        result[f"{name}_wall_us"] = statistics.median(wall[name]) * 1e6
    for name, (_, _, base) in variants.items():
        result[f"{name}/{base}"] = statistics.median(c / b for c, b in zip(cpu[name], cpu[base], strict=True))
    return result


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A redis-server on a free loopback port for the benchmark (``RedisProcess``, as the tests
    start one); ``None`` when there is no redis-server to start."""
    try:
        server = RedisProcess()
    except RedisMissing:
        yield None
        return
    try:
        yield server.start().url
    finally:
        server.close()


if __name__ == "__main__":
    # Resident memory, in a fresh process (client_memory runs these):
    #   python -m benchmarks.rate_limit BASE_URL API_KEY COUNT APPOINTMENT_ID own|shared limited|unlimited
    #   python -m benchmarks.rate_limit ssl
    if sys.argv[1:] == ["ssl"]:
        print(json.dumps(_ssl_context_kib()))
    else:
        base_url, api_key, count, appointment_id, pool, limit = sys.argv[1:]
        anyio.run(_resident, base_url, api_key, int(count), int(appointment_id), pool, limit)
