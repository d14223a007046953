"""Many studios of the sandbox in a process of their own, for the many-studio benchmark (section 12).

    python -m benchmarks.studios_server --count 500
    python -m benchmarks.studios_server --count 200 --varied --rate-limit 1000/60 --studio-rate-limit 5=20/10

Builds ``Studios(count)`` (``--varied``: ``Studios.varied(count)``: 0 ordinary, 1 ``daysAhead`` at
most 3, 2 ``sliceSize`` at most 50, 3 down, 4 slow, 5 rate-limited), each studio on a free port of
127.0.0.1. Once every studio accepts connections it prints one JSON line to stdout,
``{"studios": [{"name", "base_url", "api_key", "role", "rate_limit"}, ...]}`` (``rate_limit``
``[requests, seconds]`` or null), and serves until its stdin closes or it gets SIGTERM.

The rate limit is off unless ``--rate-limit REQUESTS/SECONDS`` (every studio) or
``--studio-rate-limit INDEX=REQUESTS/SECONDS`` (one studio; repeatable) says otherwise: the
benchmark sends thousands of requests a minute. Run in its own process, the studios' work does not
share the measured client's GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from perfectgym_appointments_client.sandbox import Studios, StudioSettings


def rate_limit(text: str) -> tuple[int, float] | None:
    """``REQUESTS/SECONDS`` (e.g. ``30/10``) or ``off``."""
    if text == "off":
        return None
    requests, _, seconds = text.partition("/")
    return int(requests), float(seconds)


def studio_rate_limit(text: str) -> tuple[int, tuple[int, float] | None]:
    """``INDEX=REQUESTS/SECONDS``."""
    index, _, limit = text.partition("=")
    return int(index), rate_limit(limit)


def build(args: argparse.Namespace) -> Studios:
    settings: dict[int, StudioSettings] = {}
    for index, limit in args.studio_rate_limit:
        base = Studios.VARIED_SETTINGS.get(index, StudioSettings()) if args.varied else StudioSettings()
        settings[index] = StudioSettings(
            max_days_ahead=base.max_days_ahead,
            max_slice_size=base.max_slice_size,
            limits_in_typed_args=base.limits_in_typed_args,
            rate_limit=limit,
            faults=base.faults,
        )
    options = {"rate_limit": args.rate_limit, "seed": args.seed, "settings": settings}
    return Studios.varied(args.count, **options) if args.varied else Studios(args.count, **options)


def announce(studios: Studios) -> None:
    entries = [
        {
            "name": studio.name,
            "base_url": studio.base_url,
            "api_key": studio.api_key,
            "role": studio.role,
            "rate_limit": None if studio.rate_limit is None else list(studio.rate_limit),
        }
        for studio in studios
    ]
    sys.stdout.write(json.dumps({"studios": entries}) + "\n")
    sys.stdout.flush()


def stop_when_stdin_closes() -> None:
    """SIGTERM to this process once stdin reaches its end (the benchmark closed the pipe or exited):
    uvicorn stops on it as on a plain SIGTERM."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, required=True, help="studios to serve")
    parser.add_argument("--varied", action="store_true", help="Studios.varied: the showcase mix")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--rate-limit", type=rate_limit, default=None, metavar="REQUESTS/SECONDS", help="every studio's (off)"
    )
    parser.add_argument(
        "--studio-rate-limit",
        type=studio_rate_limit,
        action="append",
        default=[],
        metavar="INDEX=REQUESTS/SECONDS",
        help="one studio's own (repeatable)",
    )
    args = parser.parse_args(argv)
    studios = build(args)
    threading.Thread(target=stop_when_stdin_closes, name="stdin-watch", daemon=True).start()
    studios.run_forever(quiet=True, on_ready=lambda: announce(studios))


if __name__ == "__main__":
    main()
