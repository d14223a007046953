"""Closing the client finishes what it owes: booking flows still running after their caller was
cancelled are waited for, so their outcomes reach the hook before the connections close.

In-process against the sandbox (both backends, asyncio and trio), and a real uvicorn process
serving a web app that books, stopped by SIGTERM with ``--timeout-graceful-shutdown 1`` while
bookings are in flight: the sandbox's state compared with the hook's reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import httpx
import pytest
from sandbox_studio import BOOK, INSIDE, studio
from webapp_harness import free_port

from perfectgym_appointments_client import OutcomeKind
from perfectgym_appointments_client.sandbox import Faults, Sandbox

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("fault", ["none", "commit_then_drop"])
async def test_closing_the_client_waits_for_a_flow_whose_caller_was_cancelled(
    http_backend: str, fault: str
) -> None:
    async with studio(http_backend) as st:
        appointment = st.plain()
        slot = (await st.slots(appointment, INSIDE))[0]
        if fault == "commit_then_drop":
            st.sb.faults = Faults(rate_commit_then_drop=1.0, max_faults=1)
        held = st.server.hold("received", "POST", BOOK)
        client = st.client
        async with anyio.create_task_group() as tg:
            caller = anyio.CancelScope()

            async def book() -> None:
                with caller:
                    await client.book(
                        customer_id=st.customer, bookable_appointment_id=appointment.id, slot=slot
                    )

            tg.start_soon(book)
            await held.arrived()
            caller.cancel()  # the browser went away: the flow goes on without its caller
            tg.start_soon(client.aclose)  # and the app shuts down
            await anyio.wait_all_tasks_blocked()
            assert st.outcomes == [], "nothing reported yet: the flow is still at the server"
            held.release()
        [made] = [b for b in st.sb.store.snapshot() if b.customer_id == st.customer and b.active]
        [outcome] = st.outcomes
        assert (outcome.kind, outcome.booking_id, outcome.caller_cancelled) == (
            OutcomeKind.BOOKED,
            made.id,
            True,
        )
        st.audit()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test's own loop; uvicorn runs asyncio
async def test_uvicorn_stopped_by_sigterm_reports_every_booking_in_flight(tmp_path: Path) -> None:
    bookings = 8
    arrived = threading.Semaphore(0)
    release = threading.Event()
    shutting_down = threading.Event()

    async def hook(phase: str, method: str, path: str) -> None:  # in the sandbox's loop
        if (phase, method, path) == ("received", "POST", BOOK):
            arrived.release()
            await anyio.to_thread.run_sync(release.wait, 30)

    with Sandbox(seed=5, rate_limit=None, on_request=hook) as sb:
        customers = [sb.store.add_customer().id for _ in range(bookings)]
        appointment = next(a for a in sb.store.listed() if not a.premium_only and not a.all_hours)
        slot_starts = sb.store.slots(appointment.id, sb.store.now().date() + dt.timedelta(days=INSIDE), 3)
        assert len(slot_starts) >= bookings
        outcomes_file = tmp_path / "outcomes.jsonl"
        port = free_port()
        env = {
            **os.environ,
            "SHUTDOWN_APP_BASE_URL": sb.base_url,
            "SHUTDOWN_APP_API_KEY": sb.api_key,
            "SHUTDOWN_APP_OUTCOMES": str(outcomes_file),
        }
        app = subprocess.Popen(  # noqa: ASYNC220 - starting it takes no time; its waits are in threads
            [sys.executable, "-m", "uvicorn", "shutdown_app:app", "--port", str(port), "--host", "127.0.0.1",
             "--timeout-graceful-shutdown", "1", "--app-dir", str(HERE)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        lines: list[str] = []

        def read_log() -> None:
            assert app.stderr is not None
            for line in app.stderr:
                lines.append(line)
                if "Waiting for application shutdown" in line:
                    shutting_down.set()

        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        try:
            with anyio.fail_after(20):
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as web:
                    while True:  # until uvicorn listens
                        try:
                            await web.get("/health")
                            break
                        except httpx.TransportError:
                            await anyio.sleep(0.05)

                    async def press_book(customer: int, start: str, end: str) -> None:
                        # The server goes away under the browser: its answer is not the point.
                        with contextlib.suppress(httpx.TransportError):
                            await web.post("/book", json={"customer": customer, "appointment": appointment.id,
                                                          "start": start, "end": end})  # fmt: skip

                    async with anyio.create_task_group() as tg:
                        for customer, (start, end, _) in zip(customers, slot_starts, strict=False):
                            tg.start_soon(press_book, customer, start.isoformat(), end.isoformat())
                        for _ in range(bookings):  # every booking request is at the API
                            await anyio.to_thread.run_sync(arrived.acquire)
                        app.send_signal(signal.SIGTERM)
                        # uvicorn cancels the handlers after its 1 s and starts the app's shutdown;
                        # only then do the booking requests go on.
                        await anyio.to_thread.run_sync(shutting_down.wait, 15)
                        release.set()
            exit_code = await anyio.to_thread.run_sync(app.wait, 30)
        finally:
            release.set()
            if app.poll() is None:
                app.kill()
            reader.join(5)
            if app.stderr is not None:
                app.stderr.close()
        # uvicorn ends as it was asked to: by re-raising the SIGTERM it caught, once shut down.
        assert exit_code in (0, -signal.SIGTERM), "".join(lines)
        assert any("Application shutdown complete" in line for line in lines), "".join(lines)
        assert any("timeout graceful shutdown exceeded" in line for line in lines), "".join(lines)
        reported = [json.loads(line) for line in outcomes_file.read_text().splitlines()]
        made = {b.id: b for b in sb.store.snapshot() if b.customer_id in customers and b.active}
        assert len(made) == bookings
        booked = {r["booking_id"] for r in reported if r["kind"] == "booked"}
        assert booked == set(made), f"every booking reported to the app: {reported}\n{''.join(lines)}"
        assert all(r["caller_cancelled"] for r in reported)


async def test_a_call_after_the_client_closed_sends_nothing(http_backend: str) -> None:
    from perfectgym_appointments_client import APIConnectionError

    async with studio(http_backend) as st:
        appointment = st.plain()
        await st.client.aclose()
        before = st.sb.stats["requests"]
        with pytest.raises(APIConnectionError, match="has been closed") as caught:
            await st.client.get_bookable_appointment(appointment.id)
        assert not caught.value.may_have_reached_server
        assert st.sb.stats["requests"] == before
        assert getattr(st.client._api.backend, "_session", None) is None, "no session reopened"
