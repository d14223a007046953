"""Hostile servers: answers that never end, end too big, or come a byte at a time; and what they
cost the client (peak memory, time to the error) on each backend.

Each shape is a :class:`benchmarks.loopback.LoopbackServer` handler, so the same bytes reach both
backends over a real socket: a gzip bomb (a few MB that unpack to GiB), an endless chunked
stream, a huge body (declared in Content-Length, or sized by closing the connection), a body of
one byte per interval, and a head of one byte per interval. ``tests/test_hostile_server.py``
serves them (small) to both backends and checks the typed error; ``python -m benchmarks.hostile``
measures each (full size) in a fresh subprocess: its peak RSS before the call and after it
(Linux's VmHWM: ``ru_maxrss`` would start from the peak of the process that started it), and
the seconds to the error.
"""

from __future__ import annotations

import argparse
import functools
import json
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio
import anyio.from_thread

from .loopback import Answer, Handler, Request, response_bytes

__all__ = [
    "SHAPES",
    "endless_chunked",
    "gzip_bomb",
    "huge_body",
    "trickle_body",
    "trickle_head",
]

_MIB = 1 << 20
_ZEROS = bytes(_MIB)


@functools.cache
def gzip_bomb_bytes(mib: int) -> bytes:
    """A gzip body that unpacks to ``mib`` MiB of zeros: about 1 KB per MiB (4 GiB: 4.2 MB).

    Each MiB is compressed after a full flush, so it compresses to the same bytes: written out
    once and repeated, with the trailer's CRC of the whole, in a second where compressing 4 GiB
    takes fifteen."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the gzip frame is ours
    first = compressor.compress(_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(_ZEROS, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + first + again * (mib - 1) + end + struct.pack("<II", crc, (mib * _MIB) & 0xFFFFFFFF)


def _handler(answer: Callable[[], Answer]) -> Handler:
    async def handle(request: Request) -> Answer:
        return answer()

    return handle


def gzip_bomb(mib: int) -> Handler:
    """200 with ``Content-Encoding: gzip``: ``mib`` MiB once unpacked."""
    body = gzip_bomb_bytes(mib)
    head = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    return _handler(lambda: Answer(response_bytes(200, [*head, ("Content-Length", str(len(body)))], body)))


def endless_chunked(piece: int = 64 * 1024) -> Handler:
    """200, ``Transfer-Encoding: chunked``, chunks of ``piece`` bytes for as long as the client reads."""
    frame = f"{piece:x}\r\n".encode() + b"0," * (piece // 2) + b"\r\n"

    async def more() -> AsyncGenerator[bytes, None]:
        while True:
            yield frame

    head = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    return _handler(lambda: Answer(response_bytes(200, head), more=more))


def huge_body(mib: int, *, declared: bool) -> Handler:
    """200 with ``mib`` MiB of body: its size in Content-Length (``declared``), or none, the body
    ending when the server closes the connection."""
    block = b" " * _MIB

    async def more() -> AsyncGenerator[bytes, None]:
        for _ in range(mib):
            yield block

    framing = [("Content-Length", str(mib * _MIB))] if declared else [("Connection", "close")]
    head = [("Content-Type", "application/json"), *framing]
    return _handler(lambda: Answer(response_bytes(200, head), close=not declared, more=more))


def trickle_body(interval: float, size: int = 10_000) -> Handler:
    """200 with a Content-Length of ``size``, then one byte of the body every ``interval`` seconds:
    each read comes well within any read timeout, the answer within none."""

    async def more() -> AsyncGenerator[bytes, None]:
        for _ in range(size):
            await anyio.sleep(interval)
            yield b" "

    head = [("Content-Type", "application/json"), ("Content-Length", str(size))]
    return _handler(lambda: Answer(response_bytes(200, head), more=more))


def trickle_head(interval: float) -> Handler:
    """The status line, then a header one byte every ``interval`` seconds, never ending the head."""

    async def more() -> AsyncGenerator[bytes, None]:
        yield b"HTTP/1.1 200 OK\r\nX-Slow: "
        while True:
            await anyio.sleep(interval)
            yield b"a"

    return _handler(lambda: Answer(more=more))


# name -> (full-size handler for the benchmark, client timeout in seconds)
SHAPES: dict[str, tuple[Callable[[], Handler], float]] = {
    "gzip-bomb-4GiB": (lambda: gzip_bomb(4096), 30.0),
    "endless-chunked": (endless_chunked, 30.0),
    "huge-body-500MiB-declared": (lambda: huge_body(500, declared=True), 30.0),
    "huge-body-500MiB-undeclared": (lambda: huge_body(500, declared=False), 30.0),
    "trickle-body-1-byte-per-s": (lambda: trickle_body(1.0), 5.0),
    "trickle-head-1-byte-per-s": (lambda: trickle_head(1.0), 5.0),
}


# -- the benchmark: one call per fresh subprocess -----------------------------------------------------

_CHILD = """
import json, resource, sys, time
import anyio
from perfectgym_appointments_client import AppointmentsClient, PerfectGymError, RetryPolicy

url, backend, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])

def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main():
    async with AppointmentsClient(
        api_key="hostile-key", base_url=url, http_backend=backend, rate_limit=None,
        retry_policy=RetryPolicy(max_retries=0), timeout=timeout,
    ) as client:
        before = peak_kib()
        started = time.perf_counter()
        try:
            await client.get_slots(1, customer_id=5, days_ahead=6)
            outcome = "no error"
        except PerfectGymError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
    peak = peak_kib()
    print(json.dumps({"before_kib": before, "peak_kib": peak, "seconds": seconds, "outcome": outcome}))

anyio.run(main)
"""


def measure_one(handler: Handler, backend: str, timeout: float) -> dict[str, Any]:
    """One call from a fresh interpreter against ``handler`` (served from this process)."""
    from .loopback import LoopbackServer

    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(LoopbackServer(handler, on_error=lambda exc: None)) as server,
    ):
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, server.url, backend, str(timeout)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{backend}: the client process failed: {result.stderr[-2000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return measured


def measure(backends: tuple[str, ...] = ("httpx", "aiohttp")) -> list[dict[str, Any]]:
    rows = []
    for name, (make, timeout) in SHAPES.items():
        handler = make()
        for backend in backends:
            started = time.perf_counter()
            one = measure_one(handler, backend, timeout)
            rows.append({"shape": name, "backend": backend, **one, "wall": time.perf_counter() - started})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=("httpx", "aiohttp"))
    args = parser.parse_args()
    print(
        f"{'shape':30} {'backend':8} {'peak before':>11} {'after':>8} {'added':>8} {'to error':>9}  outcome"
    )
    for row in measure(tuple(args.backend or ("httpx", "aiohttp"))):
        before, peak = row["before_kib"] / 1024, row["peak_kib"] / 1024
        print(
            f"{row['shape']:30} {row['backend']:8} {before:8.0f} MiB {peak:4.0f} MiB {peak - before:4.0f} MiB"
            f" {row['seconds']:7.1f} s  {row['outcome'][:110]}"
        )


if __name__ == "__main__":
    main()
