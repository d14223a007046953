"""A week of free slots of every bookable appointment of every studio: the sweep an integrator
(a booking platform, a chain's member app) runs every few minutes across all its studios.

    python -m examples.many_studios                    # 200 studios of a local sandbox, varied
    python -m examples.many_studios --studios 50 --json results.json

Against a local many-studio sandbox (``Studios.varied``: one studio down, one slow, one allowing
only 3 days ahead, one only 50 per page, one with a small rate limit) unless ``--studios-file``
names a JSON list of real studios: ``[{"name": ..., "base_url": ..., "api_key_env": "VAR",
"rate_limit": [requests, seconds]}]`` (the key is read from the named environment variable,
never from the file).

One parent client holds the connections; each studio gets ``parent.for_studio(...)`` with its
own key, base URL and budget. At most ``--concurrency`` studios are swept at once, each at most
``--per-studio`` requests at a time. A studio that fails is reported with its typed error (a
``PerfectGymError``) and never stops the others. Progress is a bar on a terminal, a line per
studio otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from perfectgym_appointments_client import (
    AppointmentsClient,
    PerfectGymError,
    RateLimit,
    Slot,
)

if TYPE_CHECKING:
    from perfectgym_appointments_client.sandbox import Studio

DAYS = 7


@attrs.frozen
class StudioTarget:
    """One studio to sweep. ``rate_limit`` is its budget when it differs from the API's default."""

    name: str
    base_url: str
    api_key: str = attrs.field(repr=False)
    rate_limit: RateLimit | None = None


@attrs.frozen
class StudioResult:
    """What one studio gave: its slots by bookable appointment, or the error that stopped it."""

    name: str
    base_url: str
    seconds: float
    slots: dict[int, list[Slot]] | None = attrs.field(default=None, repr=False)
    error: PerfectGymError | None = None

    @property
    def slot_count(self) -> int:
        return sum(len(found) for found in (self.slots or {}).values())


async def week_of_slots(studio: AppointmentsClient, *, per_studio: int) -> dict[int, list[Slot]]:
    """Every bookable appointment of the studio, and a week of its free slots each."""
    ids = [appointment.id async for appointment in studio.bookable_appointments(slice_size=100)]
    return await studio.search_slots(ids, days_ahead=DAYS, concurrency=per_studio)


async def sweep(
    parent: AppointmentsClient,
    studios: Sequence[StudioTarget],
    *,
    concurrency: int = 32,
    per_studio: int = 4,
    on_done: Callable[[StudioResult], None] | None = None,
) -> list[StudioResult]:
    """Sweep every studio through ``parent``'s connections, at most ``concurrency`` at once;
    one result per studio, in the order given."""
    results: dict[int, StudioResult] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, target: StudioTarget) -> None:
        async with limiter:
            kwargs: dict[str, Any] = {} if target.rate_limit is None else {"rate_limit": target.rate_limit}
            studio = parent.for_studio(target.base_url, target.api_key, **kwargs)
            started = time.perf_counter()
            try:
                slots = await week_of_slots(studio, per_studio=per_studio)
            except PerfectGymError as exc:  # the studio's own failure: reported, the others go on
                result = StudioResult(target.name, target.base_url, time.perf_counter() - started, error=exc)
            else:
                result = StudioResult(
                    target.name, target.base_url, time.perf_counter() - started, slots=slots
                )
            finally:
                await studio.aclose()
            results[index] = result
            if on_done is not None:
                on_done(result)

    async with anyio.create_task_group() as group:
        for index, target in enumerate(studios):
            group.start_soon(one, index, target)
    return [results[index] for index in range(len(studios))]


def studios_from_file(path: Path) -> list[StudioTarget]:
    targets = []
    for entry in json.loads(path.read_text(encoding="utf-8")):
        key = os.environ.get(entry["api_key_env"], "")
        if not key:
            raise SystemExit(f"{path}: the environment variable {entry['api_key_env']} is not set")
        limit = entry.get("rate_limit")
        targets.append(
            StudioTarget(
                entry.get("name") or entry["base_url"],
                entry["base_url"],
                key,
                None if limit is None else RateLimit(requests=limit[0], seconds=limit[1]),
            )
        )
    return targets


def sandbox_targets(studios: Iterable[Studio]) -> list[StudioTarget]:
    """The studios of a running ``Studios`` sandbox, each with the budget its sandbox enforces."""
    targets = []
    for studio in studios:
        limit = studio.rate_limit
        budget = None if limit is None else RateLimit(requests=limit[0], seconds=max(1, round(limit[1])))
        targets.append(StudioTarget(studio.name, studio.base_url, studio.api_key, budget))
    return targets


def report(results: Sequence[StudioResult], wall: float) -> None:
    """A table of the failed studios and the slowest others; each failure's message in full below."""
    from rich.console import Console
    from rich.table import Table

    failed = [r for r in results if r.error is not None]
    swept = sorted((r for r in results if r.error is None), key=lambda r: -r.seconds)
    table = Table(title=f"{len(results)} studios in {wall:.1f} s: {len(swept)} swept, {len(failed)} failed")
    for column in ("studio", "appointments", "slots", "seconds", "outcome"):
        table.add_column(column, justify="left" if column in ("studio", "outcome") else "right")
    for result in [*failed, *swept[:5]]:  # the failures, then the slowest five
        outcome = "ok" if result.error is None else type(result.error).__name__
        table.add_row(
            result.name,
            str(len(result.slots or {})),
            str(result.slot_count),
            f"{result.seconds:.2f}",
            outcome,
        )
    console = Console()
    console.print(table)
    for result in failed:
        console.print(f"{result.name} ({result.base_url}): {result.error}", soft_wrap=True, highlight=False)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--studios", type=int, default=200, help="studios of the local sandbox (at least 6)")
    parser.add_argument(
        "--studios-file", type=Path, help="a JSON list of real studios instead of the sandbox"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="studios swept at once")
    parser.add_argument("--per-studio", type=int, default=4, help="requests at once per studio")
    parser.add_argument("--backend", choices=("httpx", "aiohttp"), default="httpx")
    parser.add_argument("--json", type=Path, help="write the per-studio results here")
    args = parser.parse_args(argv)
    if args.studios_file is None:
        from perfectgym_appointments_client.sandbox import Studios

        async with Studios.varied(args.studios) as studios:
            return await _run(sandbox_targets(studios), args)
    return await _run(studios_from_file(args.studios_file), args)


async def _run(targets: list[StudioTarget], args: argparse.Namespace) -> int:
    from rich.progress import Progress

    first = targets[0]
    # The parent is a client like any other (here: the first studio's); its pool is every studio's.
    parent = AppointmentsClient(
        api_key=first.api_key, base_url=first.base_url, http_backend=args.backend, max_connections=64
    )
    started = time.perf_counter()
    async with parent:
        if sys.stdout.isatty():
            with Progress(transient=True) as progress:
                task = progress.add_task("studios", total=len(targets))
                results = await sweep(
                    parent, targets, concurrency=args.concurrency, per_studio=args.per_studio,
                    on_done=lambda _: progress.advance(task),
                )  # fmt: skip
        else:

            def line(result: StudioResult) -> None:
                outcome = "ok" if result.error is None else type(result.error).__name__
                print(
                    f"{result.name}: {result.slot_count} slots, {result.seconds:.2f} s, {outcome}", flush=True
                )

            results = await sweep(
                parent, targets, concurrency=args.concurrency, per_studio=args.per_studio, on_done=line
            )
    wall = time.perf_counter() - started
    report(results, wall)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "name": r.name, "base_url": r.base_url, "seconds": round(r.seconds, 3),
                        "appointments": len(r.slots or {}), "slots": r.slot_count,
                        "error": None if r.error is None else f"{type(r.error).__name__}: {r.error}",
                    }
                    for r in results
                ],
                indent=1,
            ),
            encoding="utf-8",
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
