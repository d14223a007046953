"""Section 3: ``search_slots`` over 200 appointments, 16 at a time, against ceil(200/16) x latency
and against raw httpx under the same limiter: how close the fan-out comes to its floor.
"""

from __future__ import annotations

import json
import math
import statistics
import time

import anyio
import httpx

from benchmarks._common import APPOINTMENT, BASE, KEY, canned_transport
from perfectgym_appointments_client import AppointmentsClient


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
