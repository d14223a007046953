"""Section 1: seconds per call of raw httpx + ``json.loads``, the generated layer used by hand and the
facade, in-process and over loopback: what the request layer adds to the parse no caller can skip.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._common import (
    APPOINTMENT,
    BASE,
    KEY,
    canned_transport,
    page_payload,
    profile_line,
    slots_payload,
    where_time_goes,
)
from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client._generated.api.appointments import (
    get_bookable_appointment_slots,
    get_bookable_appointments,
)
from perfectgym_appointments_client._zoned import _parse


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """Mean seconds per call over ``calls`` sequential calls (after one warm-up call)."""
    await call()
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def overhead(
    rounds: int, calls: int, base_url: str | None, profile: bool = False
) -> dict[str, dict[str, Any]]:
    """Seconds per call of raw httpx + json.loads, the generated parse by hand and the facade.

    The generated layer has no transport of its own: "generated" is what a caller of it writes,
    ``build_request`` -> httpx -> ``json.loads`` -> ``parse_response`` (the models built), so the
    facade over it is the request layer's own cost (URL and headers, the retry loop, typed errors,
    the backend's wrapper). With ``profile``, where the facade's time goes (``where_time_goes``).
    """
    transport = None if base_url else canned_transport()
    url = base_url or BASE
    headers = {"X-API-KEY": KEY}
    raw_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    gen_http = (
        httpx.AsyncClient(transport=transport, base_url=url, headers=headers)
        if transport
        else httpx.AsyncClient(base_url=url, headers=headers)
    )
    facade_http = httpx.AsyncClient(transport=transport, base_url=url) if transport else None
    # default retries on; no rate limit (thousands of calls a minute to one endpoint)
    facade = AppointmentsClient(api_key=KEY, base_url=url, http_client=facade_http, rate_limit=None)
    appointment = APPOINTMENT
    days = 6
    if base_url:
        # a 90-minute appointment: about 30 free slots in three days
        first = (await raw_http.get("/v1/appointments/bookable", params={"sliceSize": 100})).json()["result"]
        appointment = next(a["id"] for a in first if a["duration"] == 90)
        days = 3

    async def raw_page() -> object:
        answer = await raw_http.get("/v1/appointments/bookable", params={"offset": "0", "sliceSize": 50})
        return json.loads(answer.content)

    async def raw_slots() -> object:
        answer = await raw_http.get(
            f"/v1/appointments/bookable/{appointment}/slots", params={"daysAhead": days}
        )
        return json.loads(answer.content)

    async def generated(operation: Any, *args: Any, **kwargs: Any) -> object:
        prepared = operation.build_request(*args, **kwargs)
        answer = await gen_http.request(
            prepared.method, prepared.path, params=prepared.params, headers=prepared.headers
        )
        return operation.parse_response(answer.status_code, json.loads(answer.content))

    async def gen_page() -> object:
        return await generated(get_bookable_appointments, offset="0", slice_size=50)

    async def gen_slots() -> object:
        return await generated(get_bookable_appointment_slots, appointment, days_ahead=days)

    async def facade_page() -> object:
        return await facade.bookable_appointments(slice_size=50, limit=50).to_list()

    async def facade_slots() -> object:
        return await facade.get_slots(appointment, days_ahead=days)

    async def facade_slots_cold() -> object:
        _parse.cache_clear()  # as if every date-time were new to this process
        return await facade.get_slots(appointment, days_ahead=days)

    variants = {
        "page": {"raw": raw_page, "generated": gen_page, "facade": facade_page},
        "slots": {
            "raw": raw_slots,
            "generated": gen_slots,
            "facade": facade_slots,
            "facade_cold": facade_slots_cold,
        },
    }
    samples: dict[str, dict[str, list[float]]] = {op: {v: [] for v in vs} for op, vs in variants.items()}
    profiles: dict[str, dict[str, Any]] = {}
    async with facade:
        for _ in range(rounds):
            for op, vs in variants.items():
                for name, call in vs.items():
                    samples[op][name].append(await per_call(call, calls))
        if profile:
            for op, vs in variants.items():
                profiles[op] = await where_time_goes(vs["facade"], 1, calls)
    # the models alone: parse_response on an answer already decoded (the date-time cache warm)
    models: dict[str, float] = {}
    if transport is not None:
        decoded = {"page": json.loads(page_payload()), "slots": json.loads(slots_payload())}
        for op, operation in (("page", get_bookable_appointments), ("slots", get_bookable_appointment_slots)):
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(calls):
                    operation.parse_response(200, decoded[op])
                times.append((time.perf_counter() - started) / calls)
            models[op] = statistics.median(times)
    await raw_http.aclose()
    await gen_http.aclose()
    result: dict[str, dict[str, Any]] = {}
    for op, by_variant in samples.items():
        result[op] = {name: statistics.median(values) for name, values in by_variant.items()}
        result[op]["facade/raw"] = statistics.median(
            f / r for f, r in zip(by_variant["facade"], by_variant["raw"], strict=True)
        )
        result[op]["facade/generated"] = statistics.median(
            f / g for f, g in zip(by_variant["facade"], by_variant["generated"], strict=True)
        )
        result[op]["generated/raw"] = statistics.median(
            g / r for g, r in zip(by_variant["generated"], by_variant["raw"], strict=True)
        )
        if "facade_cold" in by_variant:
            result[op]["facade_cold/raw"] = statistics.median(
                f / r for f, r in zip(by_variant["facade_cold"], by_variant["raw"], strict=True)
            )
        if op in profiles:
            result[op]["profile"] = profiles[op]
        if op in models:
            result[op]["models"] = models[op]
    return result


def overhead_notes(o_in: dict[str, Any]) -> list[str]:
    """For a missed in-process goal: the models' share (``parse_response`` timed apart) of what the
    facade adds to raw, and the profile of the facade's calls."""
    lines: list[str] = []
    for op, name in (("page", "50-item page"), ("slots", "30 slots")):
        r = o_in[op]
        if r["facade/raw"] <= 1.2:
            continue
        added, models = (r["facade"] - r["raw"]) * 1e6, r["models"] * 1e6
        rest = added - models
        lines += [
            f"{name}, facade/raw {r['facade/raw']:.2f} (missed): the facade takes {added:.0f} µs more than raw "
            f"httpx + `json.loads`. The models alone (`parse_response` on an answer already decoded, timed "
            f"apart) take {models:.0f} µs, so everything else the facade does costs {rest:+.0f} µs net against "
            "raw's `http.get(path, params=...)`. Without the models the facade would be at "
            f"{(r['facade'] - r['models']) / r['raw']:.2f} x raw. "
            + profile_line(r["profile"], f"{name}, sequential in-process facade calls"),
            "",
        ]
    return lines
