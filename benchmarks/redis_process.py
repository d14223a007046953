"""A real redis-server on a free loopback port that a test or a benchmark can stop (SIGTERM),
freeze (SIGSTOP), thaw and start again on the same port: the faults of a shared rate-limit storage.

``RedisProcess()`` raises ``RedisMissing`` where there is no redis-server (the Debian package;
``.ci/run`` installs it): tests skip then, benchmarks say so.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PASSWORD = "s3cret-redis-password"  # noqa: S105 - a test server's, checked never to be logged


class RedisMissing(RuntimeError):
    """No redis-server on this machine."""


class RedisProcess:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissing(
                "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
            )
        self._binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._folder = tempfile.TemporaryDirectory()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self._process = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(Path(self._folder.name)), "--requirepass", PASSWORD],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit code {self._process.poll()})")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
                return b"+PONG" in conn.recv(64)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, and wait until it is gone: connections refused from now on."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a frozen one cannot act on SIGTERM
            self._process.terminate()
            self._process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, and nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def keys(self) -> list[str]:
        import redis

        with redis.Redis.from_url(self.url) as conn:
            return [k.decode() for k in conn.keys("*")]

    def close(self) -> None:
        self.stop()
        self._folder.cleanup()
