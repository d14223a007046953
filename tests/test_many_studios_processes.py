"""Several processes serving the same studios keep every studio's budget through one real Redis:
each worker process derives a client per studio (``for_studio``) from one parent whose rate limit
lives on Redis, and together they never make a studio answer 429. And the example sweep across
studios, as an integrator runs it: one result per studio, a failed studio as its typed error."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from perfectgym_appointments_client import AppointmentsClient, ServiceUnavailableError
from perfectgym_appointments_client.sandbox import Faults, Studios, StudioSettings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.anyio

_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import anyio
    from perfectgym_appointments_client import AppointmentsClient, RateLimit, PerfectGymError

    async def main():
        studios = json.loads(os.environ["STUDIOS"])
        calls = int(os.environ["CALLS"])
        budget = RateLimit(requests=int(os.environ["REQUESTS"]), seconds=int(os.environ["SECONDS"]),
                           storage=os.environ["REDIS_URL"])
        first = studios[0]
        parent = AppointmentsClient(api_key=first["api_key"], base_url=first["base_url"], rate_limit=budget,
                                    http_backend=os.environ["BACKEND"], timeout=30)
        done, failed = 0, []
        async with parent:
            async def one(studio):
                nonlocal done
                child = parent.for_studio(studio["base_url"], studio["api_key"])
                for _ in range(calls):
                    try:
                        await child.get_bookable_appointment(studio["appointment"])
                        done += 1
                    except PerfectGymError as exc:
                        failed.append(f"{type(exc).__name__}: {exc}")
            async with anyio.create_task_group() as tg:
                for studio in studios:
                    tg.start_soon(one, studio)
        print(json.dumps({"done": done, "failed": failed}))

    anyio.run(main)
    """
)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_three_processes_share_every_studios_budget_on_redis_and_get_no_429(
    redis_url: str, backend: str, anyio_backend: str
) -> None:
    # 8 studios allowing 8 requests per 2 s each; 3 processes x 5 calls = 15 per studio: two
    # windows' worth, so only a budget shared by the three keeps every studio under its limit.
    async with Studios(8, rate_limit=(8, 2.0), appointments=2, customers=8) as studios:
        targets = [
            {"base_url": s.base_url, "api_key": s.api_key, "appointment": s.store.listed()[0].id}
            for s in studios
        ]
        env = {
            **os.environ, "STUDIOS": json.dumps(targets), "CALLS": "5", "REQUESTS": "8", "SECONDS": "2",
            "REDIS_URL": redis_url, "BACKEND": backend,
        }  # fmt: skip
        outputs: list[str] = []

        async def worker() -> None:
            result = await anyio.run_process([sys.executable, "-c", _WORKER], env=env, check=False)
            outputs.append(result.stdout.decode() + result.stderr.decode())

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(worker)
        refused = [studio.stats["rate_limited"] for studio in studios]
        served = [studio.stats["requests"] for studio in studios]
    reports = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    assert refused == [0] * 8, outputs
    assert [r["failed"] for r in reports] == [[], [], []], outputs
    assert sum(r["done"] for r in reports) == 3 * 8 * 5
    assert served == [15] * 8  # each studio got exactly its calls, none twice, none refused


async def test_a_sweep_reports_each_studio_and_a_down_one_as_its_typed_error() -> None:
    from examples.many_studios import sandbox_targets, sweep

    async with Studios.varied(6, settings={4: StudioSettings()}) as studios:  # studio 4 not slow here
        targets = sandbox_targets(studios)
        async with AppointmentsClient(api_key=targets[0].api_key, base_url=targets[0].base_url) as parent:
            done = []
            results = await sweep(parent, targets, concurrency=3, per_studio=2, on_done=done.append)
        listed = [len(studio.store.listed()) for studio in studios]
        refused = sum(studio.stats["rate_limited"] for studio in studios)
    assert [r.name for r in results] == [s.name for s in targets]
    assert sorted(r.name for r in done) == sorted(r.name for r in results)  # each reported once
    down = results[3]
    assert isinstance(down.error, ServiceUnavailableError)
    assert down.slots is None
    for index, result in enumerate(results):
        if index == 3:
            continue
        assert result.error is None, result.error
        assert result.slots is not None
        assert len(result.slots) == listed[index]
        assert result.slot_count > 0
    assert refused == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the example runs in its own process
async def test_the_sweep_example_reads_a_studios_file_keys_from_the_environment_and_prints_a_line_per_studio(
    tmp_path: Path, anyio_backend: str
) -> None:
    async with Studios(
        4, appointments=3, settings={2: StudioSettings(faults=Faults(rate_503=1.0))}
    ) as studios:
        listing = [
            {"name": s.name, "base_url": s.base_url, "api_key_env": f"KEY_{s.index}", "rate_limit": [100, 60]}
            for s in studios
        ]
        (tmp_path / "studios.json").write_text(json.dumps(listing), encoding="utf-8")
        env = {**os.environ, **{f"KEY_{s.index}": s.api_key for s in studios}}
        out = tmp_path / "results.json"
        command = [sys.executable, "-m", "examples.many_studios", "--studios-file", str(tmp_path / "studios.json"),
                   "--json", str(out)]  # fmt: skip
        result = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
        keys = [s.api_key for s in studios]
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    lines = [line for line in stdout.splitlines() if re.match(r"studio-\d+: ", line)]
    assert len(lines) == 4, stdout  # not a terminal: a line per studio, no progress bar
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert [entry["error"] is None for entry in saved] == [True, True, False, True]
    assert saved[2]["error"].startswith("ServiceUnavailableError")
    assert all(entry["appointments"] == 3 for i, entry in enumerate(saved) if i != 2)
    for key in keys:
        assert key not in stdout
        assert key not in out.read_text(encoding="utf-8")
