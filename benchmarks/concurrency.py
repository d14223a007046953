"""Section 4: 100 tasks sharing one client against the sandbox over HTTP and HTTPS, the facade
against raw httpx with its default limits and with the facade's: what the pool settings and the
facade each cost in throughput and client CPU.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

from benchmarks._common import KEY, stats
from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client._constants import DEFAULT_MAX_CONNECTIONS


async def concurrency(
    base_url: str, requests: int = 5_000, tasks: int = 100, tls: ssl.SSLContext | None = None
) -> dict[str, float]:
    """``requests`` GETs from ``tasks`` tasks sharing one client: the facade vs raw httpx.

    Raw httpx twice: with its default limits (100 connections, 20 kept alive) and with the
    facade's (16 and 16), so the pool's effect and the facade's own cost show apart. Over HTTPS
    (``tls``) the facade gets an httpx client that trusts the sandbox, with its default limits.
    """
    verify: ssl.SSLContext | bool = tls or True
    same = httpx.Limits(
        max_connections=DEFAULT_MAX_CONNECTIONS, max_keepalive_connections=DEFAULT_MAX_CONNECTIONS
    )
    ids: list[int] = []
    async with AppointmentsClient(
        api_key=KEY, base_url=base_url, http_client=httpx.AsyncClient(verify=verify), rate_limit=None
    ) as lister:
        ids = [a.id async for a in lister.bookable_appointments(slice_size=100)]

    async def drive(call: Callable[[int], Awaitable[object]]) -> tuple[float, float, int]:
        errors = 0
        per_task = requests // tasks

        async def worker(offset: int) -> None:
            nonlocal errors
            for n in range(per_task):
                try:
                    await call(ids[(offset + n) % len(ids)])
                except Exception:  # noqa: BLE001 - counted and reported
                    errors += 1

        started, cpu = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as tg:
            for t in range(tasks):
                tg.start_soon(worker, t)
        return time.perf_counter() - started, time.process_time() - cpu, errors

    result: dict[str, float] = {"requests": requests}
    for name in ("raw", "raw_same_limits", "facade") * 2:
        before = stats(base_url, tls)["connections"]
        if name.startswith("raw"):
            limits = (
                same
                if name == "raw_same_limits"
                else httpx.Limits(max_connections=100, max_keepalive_connections=20)
            )
            async with httpx.AsyncClient(
                base_url=base_url, headers={"X-API-KEY": KEY}, limits=limits, verify=verify
            ) as http:

                async def raw_call(appointment_id: int) -> object:
                    answer = await http.get(f"/v1/appointments/bookable/{appointment_id}")
                    answer.raise_for_status()
                    return json.loads(answer.content)

                wall, cpu, errors = await drive(raw_call)
        else:
            http_client = httpx.AsyncClient(verify=verify, limits=same) if tls else None
            async with AppointmentsClient(
                api_key=KEY, base_url=base_url, http_client=http_client, rate_limit=None
            ) as client:
                wall, cpu, errors = await drive(client.get_bookable_appointment)
            if http_client is not None:
                await http_client.aclose()
        connections = stats(base_url, tls)["connections"] - before
        # the second round of each wins: the first one warms up both sides
        result[f"{name}_rps"] = requests / wall
        result[f"{name}_cpu_us"] = cpu / requests * 1e6
        result[f"{name}_errors"] = errors
        result[f"{name}_connections"] = connections
    result["facade/raw"] = result["facade_rps"] / result["raw_rps"]
    result["facade/raw_same_limits"] = result["facade_rps"] / result["raw_same_limits_rps"]
    return result
