from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_studio_state() -> Iterator[None]:
    """What the process learned of studios (circuit breakers, stricter limits) is process-wide,
    keyed by base URL, and many tests reuse one (the fake API's): each test starts from none."""
    from perfectgym_appointments_client import _breaker, _studio_limits

    _breaker._states.clear()
    _studio_limits._studios.clear()
    yield
    _breaker._states.clear()
    _studio_limits._studios.clear()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on both asyncio and trio (anyio's pytest plugin)."""
    return str(request.param)


@pytest.fixture(params=["httpx", "aiohttp"])
async def http_backend(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Tests that use it run on both HTTP backends (aiohttp on asyncio only): the fake API
    (tests/fakeapi.py) is then reached through httpx.MockTransport or over a loopback socket; the
    sandbox's booking tests (tests/sandbox_studio.py) only read the name. Async, so that the fake
    API's servers are shut down inside the test's loop; tests using it are async."""
    import fakeapi

    marker = request.node.get_closest_marker("httpx_only")
    if request.param == "aiohttp" and marker is not None:
        pytest.skip(str(marker.args[0]))
    fakeapi.BACKEND["name"] = request.param
    try:
        yield str(request.param)
    finally:
        fakeapi.BACKEND["name"] = "httpx"
        await fakeapi.stop_servers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """aiohttp runs on asyncio only: its trio combinations are not tests (its construction under
    trio failing is one, in tests/test_backends.py)."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        (
            drop
            if params.get("anyio_backend") == "trio" and params.get("http_backend") == "aiohttp"
            else keep
        ).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    with (ROOT / "openapi.yaml").open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, for this test session only.

    ``.ci/run`` installs the Debian package when it is missing; where it still cannot be started
    the tests that need it are skipped, saying why.
    """
    from benchmarks.rate_limit import redis_server  # the benchmark starts its own the same way

    server = redis_server()
    try:
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.skip(f"{exc} (Debian package redis-server; .ci/run installs it)")
    try:
        if url is None:
            pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run installs it)")
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A redis-server of this test's own (benchmarks/redis_process.py), to stop, freeze and start
    again: the faults of a shared storage. Skipped, saying why, where none can be started."""
    from benchmarks.redis_process import RedisMissing, RedisProcess

    try:
        server = RedisProcess().start()
    except RedisMissing as exc:
        pytest.skip(f"{exc} (Debian package redis-server; .ci/run installs it)")
    try:
        yield server
    finally:
        server.close()
