"""Several requests of one call at once, ending in one typed outcome.

An anyio task group raises ``ExceptionGroup`` when a task fails, and ``except RateLimitError`` (or
a web framework's handler for it) does not match a group. A call that fans out (``get_slots`` over
more than one window, ``search_slots``, the validations of ``book_first_available``) runs its
requests here instead: the first failure cancels the siblings and is raised as itself; failures
of siblings that ended before the cancel reached them are named in its ``__notes__``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import anyio

__all__ = ["run_all"]

# A failure's notes name at most this many siblings: a fan-out of hundreds that all failed at
# once would otherwise grow one exception without bound.
MAX_NOTED_SIBLINGS = 5


async def run_all(jobs: Iterable[Callable[[], Awaitable[None]]], *, limit: int | None = None) -> None:
    """Run every job concurrently (at most ``limit`` at a time); raise the first failure as itself.

    Cancellation from outside is not a failure: it goes on as usual.
    """
    failures: list[Exception] = []
    limiter = anyio.CapacityLimiter(limit) if limit is not None else None

    async def guarded(job: Callable[[], Awaitable[None]]) -> None:
        try:
            if limiter is None:
                await job()
            else:
                async with limiter:
                    await job()
        except Exception as exc:  # noqa: BLE001 - the first is raised below, as itself
            failures.append(exc)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for job in jobs:
            tg.start_soon(guarded, job)
    if failures:
        first, *others = failures
        for other in others[:MAX_NOTED_SIBLINGS]:
            first.add_note(f"a sibling request of the same call also failed: {type(other).__name__}: {other}")
        if len(others) > MAX_NOTED_SIBLINGS:
            first.add_note(f"... and {len(others) - MAX_NOTED_SIBLINGS} more sibling failures")
        raise first
