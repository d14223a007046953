"""Fault injection: the outermost ASGI layer, so faults hit before (or after) the API's own code.

Off by default. ``Faults`` is a frozen value; ``FaultInjector.faults`` can be swapped while the
server runs (``Sandbox.faults = Faults(...)``), and the next request sees the new setting.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import attrs
from starlette.types import ASGIApp, Receive, Scope, Send

from ._i18n import content_language, negotiate, text

__all__ = ["FaultInjector", "Faults"]

BOOK_PATH = "/v1/appointments/booking/book"
CANCEL_PATH = re.compile(r"/v1/appointments/booking/[^/]+")
STATS_PATH = "/_sandbox/stats"


def _rate(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class Faults:
    """What goes wrong, per request. Rates are probabilities (0 to 1) drawn from ``seed``.

    * ``latency`` (+ up to ``latency_jitter``) seconds from each request to its answer;
    * ``rate_429`` / ``rate_503``: answered 429 / 503, with no ``Retry-After`` (the API documents
      none) unless ``retry_after`` seconds are given;
    * ``rate_reset``: the connection is cut before the request is handled;
    * ``rate_409``: a booking or a cancel is answered 409 (concurrent modification) and not done;
    * ``rate_commit_then_drop``: a booking is made, then the connection is cut before the answer;
    * ``rate_500_after_commit``: a booking is made, then answered 500 ``errormessage.internal.error``
      (a request the rules refuse is answered 500 all the same: ``500_after_refusal``);
    * ``rate_slow_commit``: a booking request waits ``slow_commit_seconds`` before it is handled,
      so a client with a shorter read timeout gives up while its booking still lands later;
    * ``max_faults``: at most this many requests get a fault (latency aside) while this setting
      holds, then every request passes (``None``: no limit). With a rate of 1 it makes exactly
      the next request(s) the fault can hit fail: ``Faults(rate_commit_then_drop=1, max_faults=1)``.

    The write faults (409, commit then drop, 500 after commit, slow commit) share one roll, so
    their rates together must not exceed 1.
    """

    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_jitter: float = attrs.field(default=0.0, validator=_non_negative)
    rate_429: float = attrs.field(default=0.0, validator=_rate)
    rate_503: float = attrs.field(default=0.0, validator=_rate)
    rate_reset: float = attrs.field(default=0.0, validator=_rate)
    rate_commit_then_drop: float = attrs.field(default=0.0, validator=_rate)
    retry_after: int | None = attrs.field(default=None, validator=_non_negative)
    rate_409: float = attrs.field(default=0.0, validator=_rate)
    seed: int = 0
    rate_500_after_commit: float = attrs.field(default=0.0, validator=_rate)
    rate_slow_commit: float = attrs.field(default=0.0, validator=_rate)
    slow_commit_seconds: float = attrs.field(default=1.0, validator=_non_negative)
    max_faults: int | None = attrs.field(default=None, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.rate_429 + self.rate_503 + self.rate_reset > 1.0:
            raise ValueError("rate_429 + rate_503 + rate_reset must not exceed 1")
        writes = (
            self.rate_409 + self.rate_commit_then_drop + self.rate_500_after_commit + self.rate_slow_commit
        )
        if writes > 1.0:
            raise ValueError(
                "rate_409 + rate_commit_then_drop + rate_500_after_commit + rate_slow_commit must not exceed 1"
            )

    @property
    def active(self) -> bool:
        return any((self.latency, self.latency_jitter, self.rate_429, self.rate_503, self.rate_reset,
                    self.rate_409, self.rate_commit_then_drop, self.rate_500_after_commit,
                    self.rate_slow_commit))  # fmt: skip


class FaultInjector:
    """ASGI middleware applying :class:`Faults`; ``counts`` tells how many of each it injected.

    It also counts requests and client connections (distinct client ports), which benchmarks
    read from another process at ``GET /_sandbox/stats`` (not part of the API), together with
    whatever ``extra_stats`` adds (the rate limiter's counts).
    """

    def __init__(
        self, app: ASGIApp, faults: Faults, extra_stats: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.app = app
        self._extra_stats = extra_stats
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self.clients: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self.faults = faults

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)  # noqa: S311 - reproducible faults, not secrets
            self._injected = 0  # faults injected under this setting, for its max_faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        if scope.get("client"):
            self.clients.add(tuple(scope["client"]))
        if scope["path"] == STATS_PATH:
            await self._stats(send)
            return
        faults = self._faults
        if not faults.active:
            await self.app(scope, receive, send)
            return
        with self._lock:
            roll, drop_roll, jitter = self._random.random(), self._random.random(), self._random.random()
        # Latency is the server's response time: its own work counts toward it, as a real
        # server's database time would, rather than being added on top.
        deadline = anyio.current_time() + faults.latency + jitter * faults.latency_jitter
        fault = _choose(faults, scope, roll, drop_roll)
        if fault is not None and not self._take(faults):
            fault = None
        if fault == "reset":
            self.counts["reset"] += 1
            await _wait_until(deadline)
            await _cut(send)
            return
        answers = {
            "429": (429, "errormessage.rate.limit.exceeded", faults.retry_after),
            "503": (503, "errormessage.service.unavailable", faults.retry_after),
            "409": (409, "errormessage.concurrent.modification", None),
        }
        if fault in answers:
            status, code, retry_after = answers[fault]
            self.counts[fault] += 1
            await _wait_until(deadline)
            await _answer(scope, send, status, code, retry_after)
            return
        if fault in ("commit_then_drop", "500_after_commit"):
            statuses: list[int] = []

            async def swallow(message: Any) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await self.app(scope, receive, swallow)
            made = statuses == [200]
            if fault == "commit_then_drop":
                self.counts["commit_then_drop" if made else "drop_after_refusal"] += 1
                await _wait_until(deadline)
                await _cut(send)
            else:
                self.counts["500_after_commit" if made else "500_after_refusal"] += 1
                await _wait_until(deadline)
                await _answer(scope, send, 500, "errormessage.internal.error", None)
            return
        if fault == "slow_commit":
            self.counts["slow_commit"] += 1
            # The body is read first: once the client has given up, uvicorn answers reads with
            # http.disconnect, and the booking must still land, as a slow database's would.
            receive = await _buffered(receive)
            await anyio.sleep(faults.slow_commit_seconds)

        async def send_late(message: Any) -> None:
            if message["type"] == "http.response.start":
                await _wait_until(deadline)
            await send(message)

        await self.app(scope, receive, send_late)

    def _take(self, faults: Faults) -> bool:
        """Whether a fault may still be injected under ``faults`` (its ``max_faults``)."""
        if faults.max_faults is None:
            return True
        with self._lock:
            if faults is not self._faults or self._injected >= faults.max_faults:
                return False
            self._injected += 1
            return True

    def stats(self) -> dict[str, Any]:
        """Requests served, client connections seen and faults injected, so far (and the extras)."""
        stats = {"requests": self.requests, "connections": len(self.clients), "faults": dict(self.counts)}
        if self._extra_stats is not None:
            stats.update(self._extra_stats())
        return stats

    async def _stats(self, send: Send) -> None:
        body = json.dumps(self.stats()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _choose(faults: Faults, scope: Scope, roll: float, drop_roll: float) -> str | None:
    """Which fault this request gets, if any, from its two rolls.

    ``roll`` picks among reset, 429 and 503 (any request); ``drop_roll`` among the write faults.
    Each rate takes its slice of a roll in a fixed order, so adding a fault leaves the others'
    sequence be.
    """
    for fault, rate in (("reset", faults.rate_reset), ("429", faults.rate_429), ("503", faults.rate_503)):
        if roll < rate:
            return fault
        roll -= rate
    is_book = scope["method"] == "POST" and scope["path"] == BOOK_PATH
    is_cancel = scope["method"] == "DELETE" and CANCEL_PATH.fullmatch(scope["path"]) is not None
    if is_book or is_cancel:
        if drop_roll < faults.rate_409:
            return "409"
        drop_roll -= faults.rate_409
    if not is_book:
        return None
    for fault, rate in (
        ("commit_then_drop", faults.rate_commit_then_drop),
        ("500_after_commit", faults.rate_500_after_commit),
        ("slow_commit", faults.rate_slow_commit),
    ):
        if drop_roll < rate:
            return fault
        drop_roll -= rate
    return None


async def _buffered(receive: Receive) -> Receive:
    """Read the request's body now; the returned ``receive`` replays it, then reads on."""
    messages: list[Any] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Any:
        return messages.pop(0) if messages else await receive()

    return replay


async def _wait_until(deadline: float) -> None:
    remaining = deadline - anyio.current_time()
    if remaining > 0:
        await anyio.sleep(remaining)


async def _answer(scope: Scope, send: Send, status: int, code: str, retry_after: int | None) -> None:
    sent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept-language"), None)
    language = negotiate(sent)
    # A trace id like the API's own: a client must not be able to tell an injected fault apart.
    answer = {"errorMessage": text(code, language), "errorCode": code, "traceId": secrets.token_hex(16)}
    body = json.dumps(answer, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"content-language", content_language(language).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _cut(send: Send) -> None:
    """Reset the connection with no answer, the way a crashed proxy or a dropped link does."""
    # uvicorn's ``send`` is a method of its request cycle, which holds the asyncio transport.
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # pragma: no cover - another server: fail loudly, not silently succeed
        raise RuntimeError("the sandbox's fault injection needs uvicorn to cut connections")
    transport.abort()
    # Let uvicorn see the connection is gone, so it does not try to write a 500 into it.
    for _ in range(5):
        if getattr(cycle, "disconnected", True):
            break
        await anyio.lowlevel.checkpoint()
