"""Cursor pagination: ``async for item in paginator`` or ``async for page in paginator.pages()``.

The API pages with a string ``offset`` cursor: each answer says ``hasNext`` and the cursor of
the next page. While the caller works on one page, the next is already being fetched (at most
one page ahead) in the client's task group, so the caller's time hides the network latency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._exceptions import APIConnectionError, PaginationError

if TYPE_CHECKING:
    # Only in annotations: the models (and attrs' class building) load with the first page, not
    # with ``import`` (benchmarks/RESULTS.md, import time).
    from ._models import Page

__all__ = ["AsyncPaginator"]

T = TypeVar("T")
FetchPage = Callable[[str, int], Awaitable["Page[T]"]]
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


class _Prefetch(Generic[T]):
    """One page being fetched in the background; errors are kept for the consumer, never lost."""

    def __init__(self, fetch: FetchPage[T], offset: str, number: int) -> None:
        self._fetch, self._offset, self._number = fetch, offset, number
        self._done = anyio.Event()
        self._page: Page[T] | None = None
        self._error: BaseException | None = None

    async def run(self) -> None:
        try:
            self._page = await self._fetch(self._offset, self._number)
        except Exception as exc:  # noqa: BLE001 - not lost: re-raised to the consumer on its next step
            self._error = exc
        finally:
            self._done.set()

    async def result(self) -> Page[T]:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        if self._page is None:
            raise APIConnectionError(
                "page prefetch was cancelled (the client was closed)", operation="", method="GET", path=""
            )
        return self._page


class AsyncPaginator(Generic[T]):
    """A lazy listing. Nothing is requested until you iterate; each iteration starts afresh."""

    def __init__(
        self, fetch: FetchPage[T], *, operation: str, limit: int | None, spawn: Spawn | None
    ) -> None:
        self._fetch = fetch
        self._operation = operation
        self._limit = limit
        self._spawn = spawn

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        # A plain async generator with no task group or cancel scope inside: safe to abandon.
        remaining = self._limit
        async for page in self.pages():
            for item in page.items:
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item

    def pages(self) -> AsyncIterator[Page[T]]:
        """Iterate page by page (``Page.items``, ``has_next``, ``offset``, ``number``)."""
        return _PageIterator(self._fetch, self._operation, self._limit, self._spawn)

    async def to_list(self) -> list[T]:
        """Every item (up to ``limit``) in one list."""
        # Page by page: stepping an async generator once per item costs more than parsing it.
        items: list[T] = []
        async for page in self.pages():
            items.extend(page.items)
        return items if self._limit is None else items[: self._limit]


class _PageIterator(AsyncIterator["Page[T]"]):
    def __init__(self, fetch: FetchPage[T], operation: str, limit: int | None, spawn: Spawn | None) -> None:
        self._fetch = fetch
        self._operation = operation
        self._limit = limit
        self._spawn = spawn
        self._offset = "0"
        self._number = 0
        self._items_seen = 0
        # To stop a server that loops, in constant memory (Brent's cycle detection): each new
        # cursor is compared with one remembered cursor, which moves forward after 1, 2, 4, 8...
        # pages. Any loop is caught within twice its length plus the pages before it.
        self._checkpoint = self._offset
        self._checkpoint_every = 1
        self._since_checkpoint = 0
        self._pending: _Prefetch[T] | None = None
        self._loop_error: PaginationError | None = None
        self._finished = False

    async def __anext__(self) -> Page[T]:
        if self._finished:
            if self._loop_error is not None:
                error, self._loop_error = self._loop_error, None
                raise error
            raise StopAsyncIteration
        self._number += 1
        if self._pending is not None:
            page, self._pending = await self._pending.result(), None
        else:
            page = await self._fetch(self._offset, self._number)
        self._items_seen += len(page.items)
        if not page.has_next or (self._limit is not None and self._items_seen >= self._limit):
            self._finished = True
            return page
        if page.offset == self._checkpoint or page.offset == self._offset:
            # This page is new; the one it points to is not. Deliver it, then stop.
            self._finished = True
            self._loop_error = PaginationError(
                f"{self._operation}: the server answered cursor {page.offset!r} again after page "
                f"{self._number}; stopping instead of looping",
                operation=self._operation,
                method="GET",
                path="",
            )
            return page
        self._since_checkpoint += 1
        if self._since_checkpoint == self._checkpoint_every:
            self._checkpoint, self._checkpoint_every, self._since_checkpoint = (
                page.offset,
                self._checkpoint_every * 2,
                0,
            )
        self._offset = page.offset
        if self._spawn is not None:
            self._pending = _Prefetch(self._fetch, self._offset, self._number + 1)
            self._spawn(self._pending.run)
        return page
