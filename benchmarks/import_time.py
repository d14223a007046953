"""Section 6: ``from perfectgym_appointments_client import AppointmentsClient`` against ``import
httpx`` in fresh interpreters, and what the package imports beyond httpx: what a user pays before
the first call. The client, not the bare package: ``import perfectgym_appointments_client`` loads
only the exceptions (the rest on first use, PEP 562), and timing that would hide httpx's cost.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT

CLIENT_IMPORT = "from perfectgym_appointments_client import AppointmentsClient"


def import_time(repeats: int) -> dict[str, Any]:
    # With byte code cached, for both sides: compiling on every import (an editable install, a
    # dev set installed with --no-compile, PYTHONDONTWRITEBYTECODE) measures the compiler.
    import sysconfig

    for tree in (ROOT / "perfectgym_appointments_client", Path(sysconfig.get_paths()["purelib"])):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    samples: dict[str, list[float]] = {"base": [], "httpx": [], "package": []}
    for _ in range(repeats):
        samples["base"].append(run("pass"))
        samples["httpx"].append(run("import httpx"))
        samples["package"].append(run(CLIENT_IMPORT))
    med = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "httpx_ms": (med["httpx"] - med["base"]) * 1000,
        "package_ms": (med["package"] - med["base"]) * 1000,
        "ratio": (med["package"] - med["base"]) / (med["httpx"] - med["base"]),
        "repeats": repeats,
        "beyond_httpx": import_breakdown(3),
    }


def import_breakdown(repeats: int) -> list[tuple[float, str, int]]:
    """What ``CLIENT_IMPORT`` imports beyond ``import httpx``
    (``python -X importtime``, median of ``repeats`` fresh interpreters): own import time in ms by
    top-level package (the package itself by module, its generated layer as one), largest first,
    with the number of modules."""

    def modules(code: str) -> dict[str, int]:
        trace = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
        ).stderr
        found: dict[str, int] = {}
        for line in trace.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                own, _, name = line.removeprefix("import time:").split("|")
                found[name.strip()] = int(own)
        return found

    httpx_modules = set(modules("import httpx"))
    runs = [modules(CLIENT_IMPORT) for _ in range(repeats)]
    groups: dict[str, list[str]] = {}
    for name in runs[0]:
        if name in httpx_modules:
            continue
        parts = name.split(".")
        if parts[0] == "perfectgym_appointments_client" and len(parts) > 1:
            group = ".".join(parts[:2])
        else:
            group = parts[0]
        groups.setdefault(group, []).append(name)
    sizes = [
        (statistics.median(sum(run.get(name, 0) for name in names) for run in runs) / 1000, group, len(names))
        for group, names in groups.items()
    ]
    return sorted(sizes, reverse=True)


def import_notes(imp: dict[str, Any]) -> list[str]:
    """What the package imports beyond httpx, the largest first (``import_breakdown``)."""
    if imp["ratio"] <= 1.25:
        return []
    extra = sum(ms for ms, _, _ in imp["beyond_httpx"])
    top = ", ".join(
        f"`{group}` {ms:.0f} ms ({count} module{'s' if count != 1 else ''})"
        for ms, group, count in imp["beyond_httpx"][:8]
    )
    return [
        f"Missed by {imp['package_ms'] - 1.25 * imp['httpx_ms']:.0f} ms. Beyond what `import httpx` imports, "
        f"`python -X importtime` counts {extra:.0f} ms of own import time (median of 3; `-X importtime` adds its "
        f"own overhead), the largest: {top}.",
        "",
    ]
