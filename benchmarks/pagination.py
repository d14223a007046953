"""Section 2: a 10,000-item walk with and without prefetch against pages x latency, and the traced
memory of walks up to 300,000 items: prefetch should hide the consumer, and memory must not grow
with the listing.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import tracemalloc

import anyio
import httpx

from benchmarks._common import BASE, KEY
from perfectgym_appointments_client import AppointmentsClient


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
