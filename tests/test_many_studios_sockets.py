"""5,000 studios do not hold 5,000 sockets: a parent and its studio clients keep at most
``max_connections`` connections open, idle (kept-alive) ones included, on both backends
(httpcore bounds its pool itself; aiohttp counts only connections in use, so the client's
connector closes the oldest idle ones)."""

from __future__ import annotations

import os
from typing import Any

import anyio
import pytest

from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client.sandbox import Studios

pytestmark = pytest.mark.anyio


def open_connections(client: AppointmentsClient) -> int:
    """The client's connections, in use or idle, as its HTTP library holds them."""
    backend: Any = client._api.backend
    if backend.name == "httpx":
        return len(backend.client._transport._pool.connections)
    connector = backend._session.connector
    return len(connector._acquired) + sum(len(queue) for queue in connector._conns.values())


def client_sockets() -> int:
    """This process's TCP sockets (both ends of loopback connections are in it: the studios
    are served from a thread of this process)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


async def test_twelve_studios_through_one_parent_hold_at_most_max_connections(http_backend: str) -> None:
    async with Studios(12, appointments=2, customers=8) as studios:
        idle_sockets = client_sockets()
        first = studios[0]
        async with AppointmentsClient(
            api_key=first.api_key, base_url=first.base_url, http_backend=http_backend, max_connections=4
        ) as parent:
            children = [parent.for_studio(s.base_url, s.api_key) for s in studios]
            for _ in range(2):  # every studio twice: connections to each are made, kept, reused
                async with anyio.create_task_group() as tg:
                    for child in children:
                        tg.start_soon(child.check_api_key)
                assert open_connections(parent) <= 4
            held = open_connections(parent)
            assert held >= 1
            # Each connection is two sockets here (the client's end and the studio's), and a
            # studio may still hold the end of one the client closed: never 12 or 24 more.
            assert client_sockets() - idle_sockets <= 2 * 4 + 4
