"""examples/webapp as deployed, for tests/test_webapp.py: the app in a real uvicorn process, the
sandbox as a ``perfectgym-appointments sandbox`` process (or in-process, where a test holds a
request at the server with its ``on_request`` hook), each process's stderr read on a thread, and
every process stopped and its pipe closed on the way out.

Waits are on lines a process writes or on conditions polled with a bound, never on the clock.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import httpx

ROOT = Path(__file__).resolve().parent.parent
# Distinctive, so that a test can look for it in every answer and log line.
API_KEY = "webapp-test-key-5f3a9c"
WAIT = 20.0  # seconds any wait for a process may take before the test fails


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Log:
    """A process's stderr, read line by line on a thread; ``wait_for`` a line, with a bound."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, *, count: int = 1, timeout: float = WAIT) -> str:
        """The ``count``-th line holding ``text``; AssertionError (with the log) if it does not come."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: sum(text in line for line in self.lines) >= count or self._ended, timeout
            )
            matching = [line for line in self.lines if text in line]
            if not found or len(matching) < count:
                raise AssertionError(f"no {count} line(s) with {text!r} in:\n{self.text()}")
            return matching[count - 1]

    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(5)


def stop(process: subprocess.Popen[str], log: Log) -> None:
    """SIGTERM (a kill if it does not end in 10 s), then its stderr reader joined and closed."""
    try:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    finally:
        log.join()
        if process.stderr is not None:
            process.stderr.close()


@attrs.define
class SandboxProcess:
    base_url: str
    api_key: str
    process: subprocess.Popen[str]
    log: Log

    def stats(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.base_url}/_sandbox/stats", timeout=5)
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def bookings(self, customer_id: int) -> list[dict[str, Any]]:
        """The customer's bookings as the sandbox lists them (its own API, not the app)."""
        answer = httpx.get(
            f"{self.base_url}/v1/appointments/booking",
            params={"customerId": customer_id},
            headers={"X-API-KEY": self.api_key},
            timeout=5,
        )
        answer.raise_for_status()
        bookings: list[dict[str, Any]] = answer.json()
        return bookings


@contextlib.contextmanager
def sandbox_process(*options: str) -> Iterator[SandboxProcess]:
    """``perfectgym-appointments sandbox --port 0`` with ``options``, once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "perfectgym_appointments_client.cli", "sandbox", "--port", "0", "--quiet",
         "--api-key", API_KEY, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert process.stderr is not None
    log = Log(process.stderr)
    try:
        line = log.wait_for("export PERFECTGYM_BASE_URL=")
        match = re.search(r"PERFECTGYM_BASE_URL=(\S+)", line)
        assert match is not None, line
        yield SandboxProcess(match.group(1), API_KEY, process, log)
    finally:
        stop(process, log)


@attrs.define
class AppProcess:
    url: str
    db_path: Path
    process: subprocess.Popen[str]
    log: Log

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=WAIT, **kwargs)

    def outcomes(self) -> list[dict[str, Any]]:
        """The app's store, read from its SQLite file (also once the app has stopped)."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM booking_outcomes ORDER BY id")]


def app_command(
    port: int, *, python_options: tuple[str, ...] = (), uvicorn_options: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable, *python_options, "-m", "uvicorn", "--factory", "examples.webapp.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "1", "--no-access-log",
        *uvicorn_options,
    ]  # fmt: skip


def app_env(base_url: str, db_path: Path, settings: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBAPP_", "PERFECTGYM_"))}
    env.update(PERFECTGYM_BASE_URL=base_url, PERFECTGYM_API_KEY=API_KEY, WEBAPP_DB=str(db_path))
    env.update(settings)
    return env


@contextlib.contextmanager
def app_process(
    base_url: str,
    tmp_path: Path,
    *,
    python_options: tuple[str, ...] = (),
    uvicorn_options: tuple[str, ...] = (),
    db_path: Path | None = None,
    **settings: str,
) -> Iterator[AppProcess]:
    """examples/webapp under uvicorn (``settings``: WEBAPP_* variables), once it listens (its
    lifespan has started: the booking journal recovered). ``db_path``: its store (the booking
    journal beside it, by default), e.g. the one of an earlier process, for a restart."""
    port = free_port()
    db_path = tmp_path / f"outcomes-{port}.sqlite3" if db_path is None else db_path
    process = subprocess.Popen(
        app_command(port, python_options=python_options, uvicorn_options=uvicorn_options),
        env=app_env(base_url, db_path, settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stderr is not None
    log = Log(process.stderr)
    try:
        log.wait_for("Uvicorn running on")
        yield AppProcess(f"http://127.0.0.1:{port}", db_path, process, log)
    finally:
        stop(process, log)
