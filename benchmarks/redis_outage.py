"""What a Redis outage costs the shared rate limit: calls per second with Redis up, stopped (SIGTERM)
and frozen (SIGSTOP); how long the first call after the fault takes (the fall back to the
in-process budget); and how long after Redis answers again the budget is back on it.

One client, sequential calls to a local sandbox (no server-side limit), the default
``RateLimit(storage=...)`` timeouts (0.25 s a Redis call, asked again after 5 s).

    python -m benchmarks.redis_outage        # prints the figures as JSON
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from benchmarks.redis_process import RedisMissing, RedisProcess
from perfectgym_appointments_client import AppointmentsClient, RateLimit
from perfectgym_appointments_client.sandbox import Sandbox

CALLS = 300


async def _rate(client: AppointmentsClient, appointment: int, calls: int = CALLS) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await client.get_bookable_appointment(appointment)
    return calls / (time.perf_counter() - started)


async def _first_call(client: AppointmentsClient, appointment: int) -> float:
    started = time.perf_counter()
    await client.get_bookable_appointment(appointment)
    return time.perf_counter() - started


async def _until_shared(client: AppointmentsClient, appointment: int) -> tuple[float, int]:
    """Seconds (and calls, one every 50 ms) until the budget is on Redis again."""
    throttle = client._api.throttle
    assert throttle is not None
    started, calls = time.perf_counter(), 0
    with anyio.fail_after(60):
        while not throttle.shared:
            await client.get_bookable_appointment(appointment)
            calls += 1
            await anyio.sleep(0.05)
    return time.perf_counter() - started, calls


async def measure() -> dict[str, Any]:
    redis = RedisProcess().start()
    try:
        with Sandbox(rate_limit=None) as sb:
            appointment = sb.store.listed()[0].id
            async with AppointmentsClient(
                api_key=sb.api_key, base_url=sb.base_url, rate_limit=RateLimit(storage=redis.url)
            ) as client:
                figures: dict[str, Any] = {"calls_per_second_redis_up": await _rate(client, appointment)}
                for fault, stop, resume in (
                    ("stopped", redis.stop, redis.start),
                    ("frozen", redis.freeze, redis.thaw),
                ):
                    stop()
                    figures[f"first_call_s_{fault}"] = await _first_call(client, appointment)
                    figures[f"calls_per_second_{fault}"] = await _rate(client, appointment)
                    resume()
                    back, calls = await _until_shared(client, appointment)
                    figures[f"back_on_redis_s_after_{fault}"] = back
                    figures[f"calls_until_back_after_{fault}"] = calls
                return figures
    finally:
        redis.close()


if __name__ == "__main__":
    try:
        print(json.dumps(anyio.run(measure), indent=2))
    except RedisMissing as exc:
        print(json.dumps({"skipped": str(exc)}))
