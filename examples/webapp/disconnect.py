"""Cancelling a handler when its browser goes away (``WEBAPP_CANCEL_ON_DISCONNECT=1``).

Starlette and uvicorn let a handler run to its end after its client disconnected; its answer
goes nowhere. For slow reads that wastes API budget, so an app may prefer to cancel them. For
a booking it changes nothing the member cares about: once the booking request may be at the
API, the client runs the flow to its end whatever its caller does, and the outcome reaches the
store through ``on_booking_outcome`` (with ``caller_cancelled``). tests/test_webapp.py checks
both settings against the sandbox's own bookings.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which runs the handler in a task of its own,
and not polling ``request.is_disconnected()``): it reads the request's messages for the app and
cancels the app on ``http.disconnect``.
"""

from __future__ import annotations

import logging
import math

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CancelOnDisconnect"]

logger = logging.getLogger("webapp")


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Unbounded: the app's request bodies are small JSON; the watcher must read on past the
        # body, or it would never see the disconnect while the handler runs.
        to_app, from_watcher = anyio.create_memory_object_stream[Message](math.inf)
        async with anyio.create_task_group() as task_group:

            async def watch() -> None:
                with to_app:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            logger.info("client went away: cancelling %s %s", scope["method"], scope["path"])
                            task_group.cancel_scope.cancel()
                            return
                        to_app.send_nowait(message)

            task_group.start_soon(watch)
            with from_watcher:
                await self.app(scope, from_watcher.receive, send)
            task_group.cancel_scope.cancel()  # the answer is sent: stop watching
