"""examples/webapp tested as deployed: the app in a real uvicorn process, against a sandbox
process (``perfectgym-appointments sandbox``), driven over sockets with httpx; the sandbox runs
in-process where a test holds a booking at the server (its ``on_request`` hook).

What is checked against what: every route and the error mapping against the sandbox's answers
and its request counts; browsers that go away mid-booking, and a SIGTERM with bookings in
flight, against the sandbox's own bookings (the app's SQLite store must hold every one, none
unknown, none twice); two app processes sharing the rate limit through a real Redis against
the sandbox's count of the 429s it sent (none).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from webapp_harness import (
    API_KEY,
    ROOT,
    WAIT,
    AppProcess,
    Log,
    app_command,
    app_env,
    app_process,
    free_port,
    sandbox_process,
    stop,
)

from perfectgym_appointments_client import (
    APIConnectionError,
    APITimeoutError,
    BookingIdUnknownError,
    BookingOutcomeUnknownError,
    CircuitOpenError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    SlotNotBookableError,
    ValidationStatus,
)
from perfectgym_appointments_client.sandbox import ZONE, Sandbox

pytestmark = pytest.mark.anyio

BOOK = "/v1/appointments/booking/book"
SEED = 42  # the sandbox command's default: the in-process Store below has the same data
INSIDE = 3  # days ahead: inside the bookings list's two weeks


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the tests' own loop; uvicorn runs asyncio


@pytest.fixture(scope="module")
def studio() -> Sandbox:
    """The seeded data the sandbox process serves (same seed), to pick customers and appointments."""
    return Sandbox(SEED)


class BookGate:
    """The in-process sandbox's ``on_request``: every booking request is held at the server
    (counted as it arrives) until :meth:`release`."""

    def __init__(self) -> None:
        self._arrived = threading.Semaphore(0)
        self._released = threading.Event()

    async def __call__(self, phase: str, method: str, path: str) -> None:  # in the sandbox's loop
        if (phase, method, path) == ("received", "POST", BOOK):
            self._arrived.release()
            await anyio.to_thread.run_sync(self._released.wait, WAIT)

    async def arrivals(self, count: int) -> None:
        for _ in range(count):
            arrived = await anyio.to_thread.run_sync(self._arrived.acquire, True, WAIT)
            assert arrived, "a booking request did not reach the sandbox"

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> BookGate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()  # a failing test must not leave requests held until the sandbox stops


def _plain_appointment(sb: Sandbox, *, single_instructor: bool = False) -> Any:
    """Bookable now by anyone; ``single_instructor``: one booking takes its slot (those are premium)."""
    return next(
        a
        for a in sb.store.listed()
        if not a.all_hours
        and not a.requires_confirmation
        and a.lead_minutes == 0
        and (len(a.instructor_ids) == 1 and a.premium_only if single_instructor else not a.premium_only)
    )


def _another_premium_customer(sb: Sandbox, category: str) -> int:
    return next(
        c.id
        for c in sb.store.customers.values()
        if c.profile == "regular"
        and c.premium
        and not c.idle_periods
        and c.contingent.get(category, 0) > 0
        and c.booking_limit > 5
    )


async def _week(
    web: httpx.AsyncClient, appointment_id: int, customer_id: int, start_date: dt.date | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"customer_id": customer_id}
    if start_date is not None:
        params["start_date"] = start_date.isoformat()
    answer = await web.get(f"/appointments/{appointment_id}/slots", params=params)
    assert answer.status_code == 200, answer.text
    slots: list[dict[str, Any]] = answer.json()["slots"]
    return slots


def _audit(sb: Sandbox, app: AppProcess, customers: list[int]) -> tuple[int, int, int, list[int]]:
    """(bookings at the sandbox, double bookings, unknown outcomes in the store, bookings missing from it)."""
    made = [b for b in sb.store.snapshot() if b.customer_id in customers and b.active]
    double = sum(n - 1 for n in Counter(b.customer_id for b in made).values())
    rows = app.outcomes()
    unknown = sum(row["kind"] == "unknown" for row in rows)
    recorded = {row["booking_id"] for row in rows if row["kind"] in ("booked", "already_booked")}
    return len(made), double, unknown, sorted(b.id for b in made if b.id not in recorded)


# -- the routes, over real sockets ----------------------------------------------------------------


async def test_each_route_answers_with_its_status_and_the_api_key_is_in_no_answer(
    tmp_path: Path, studio: Sandbox
) -> None:
    demo = studio.demo_customer_id
    single = _plain_appointment(studio, single_instructor=True)
    other = _another_premium_customer(studio, single.category)
    broke = studio.store.customer_with("no-contingent").id
    answers: list[httpx.Response] = []
    with sandbox_process() as sb, app_process(sb.base_url, tmp_path) as app:
        async with app.client(event_hooks={"response": [_keep(answers)]}) as web:
            assert (await web.get("/healthz")).json() == {"ok": True}

            before = sb.stats()["requests_by_endpoint"]
            listed = await web.get("/appointments", params={"limit": 25, "slice_size": 10})
            assert listed.status_code == 200
            assert len(listed.json()) == 25
            assert _delta(sb, before, "GET /v1/appointments/bookable") == 3, "25 at 10 a page"
            assert (await web.get(f"/appointments/{single.id}")).json()["title"] == single.title

            before = sb.stats()["requests_by_endpoint"]
            # From tomorrow: seven whole days, whatever the time of day now.
            tomorrow = dt.datetime.now(ZONE).date() + dt.timedelta(days=1)
            slots = await _week(web, single.id, demo, tomorrow)
            # A week is more than the API's 6 days a request: two windows, one list.
            assert _delta(sb, before, "GET /v1/appointments/bookable/{bookableAppointmentId}/slots") == 2
            days = {s["start"][:10] for s in slots}
            assert len(days) == 6, days  # six opening days a week (Sunday closed)
            assert min(days) >= tomorrow.isoformat()
            slot = slots[0]
            book = {
                "customer_id": demo,
                "appointment_id": single.id,
                "start": slot["start"],
                "end": slot["end"],
            }

            # A malformed body: 422 in the app's own error shape, not FastAPI's {"detail": [...]}.
            malformed = await web.post(
                "/bookings", json={**book, "customer_id": "not a number", "start": None}
            )
            assert malformed.status_code == 422
            assert malformed.json()["error"] == "invalid_request"
            assert {f["location"] for f in malformed.json()["fields"]} >= {"body.customer_id", "body.start"}
            assert isinstance(malformed.json()["detail"], str)

            made = await web.post("/bookings", json=book)
            assert made.status_code == 201, made.text
            booking_id = made.json()["booking_id"]
            assert made.json()["start"] == slot["start"], "the slot goes back as the API wrote it"
            again = await web.post("/bookings", json=book)  # a resubmit: the same booking, nothing new
            assert (again.status_code, again.json()["booking_id"], again.json()["already_existed"]) == (
                200,
                booking_id,
                True,
            )
            taken = await web.post("/bookings", json={**book, "customer_id": other})
            assert (taken.status_code, taken.json().get("validation_status")) == (
                409,
                "RESOURCE_NOT_AVAILABLE",
            )
            refused = await web.post("/bookings", json={**book, "customer_id": broke})
            assert (refused.status_code, refused.json().get("validation_status")) == (409, "NO_CONTINGENT")
            off_grid = slot["start"].replace(":00.000", ":07.000", 1)
            wrong = await web.post("/bookings", json={**book, "start": off_grid})
            assert (wrong.status_code, wrong.json().get("validation_status")) == (
                422,
                "PERIOD_DOES_NOT_MATCH",
            )
            naive = await web.post("/bookings", json={**book, "start": slot["start"][:19]})
            assert naive.status_code == 422
            assert [f["location"] for f in naive.json()["fields"]] == ["body.start"]
            assert (await web.get("/appointments", params={"limit": 0})).status_code == 422

            mine = await web.get(f"/customers/{demo}/bookings")
            assert booking_id in [b["booking_id"] for b in mine.json()]
            assert (await web.get(f"/bookings/{booking_id}")).json()["status"] == "BOOKED"
            for path in ("/appointments/999999", "/bookings/999999"):
                missing = await web.get(path)
                assert (missing.status_code, missing.json()["error"]) == (404, "not_found"), path
                assert missing.json()["upstream"]["status_code"] == 404
            assert (await web.delete("/bookings/999999")).status_code == 404

            canceled = await web.delete(f"/bookings/{booking_id}")
            assert canceled.status_code == 200
            assert canceled.json()["result"]
            assert (await web.delete(f"/bookings/{booking_id}")).json()["result"] == "already canceled"
            assert [b["bookingStatus"] for b in sb.bookings(demo) if b["bookingId"] == booking_id] == [
                "CANCELED"
            ]

            recorded = (await web.get("/outcomes", params={"customer_id": demo})).json()
            assert [(r["operation"], r["kind"], r["booking_id"]) for r in recorded] == [
                ("book", "booked", booking_id)
            ]
            cancels = (await web.get("/outcomes", params={"kind": "canceled"})).json()
            # Once: the second cancel is answered from the booking journal (and the store keeps a
            # cancel of a booking once per kind anyway).
            assert [r["booking_id"] for r in cancels] == [booking_id]

            # Readiness asks the API once, however many probes come, at once or one after another.
            before_requests = sb.stats()["requests"]
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    for _ in range(50):
                        tg.start_soon(_ready, web)
                for _ in range(50):
                    await _ready(web)
            # The sandbox counts the stats request too.
            assert sb.stats()["requests"] - before_requests - 1 == 1

        assert answers, "the hook saw the answers"
        for answer in answers:
            assert API_KEY not in answer.text
            assert API_KEY not in str(answer.headers)
        assert API_KEY not in app.log.text()
        assert API_KEY not in repr(app.outcomes())


def _keep(answers: list[httpx.Response]) -> Any:
    async def keep(response: httpx.Response) -> None:
        await response.aread()
        answers.append(response)

    return keep


def _delta(sb: Any, before: dict[str, int], endpoint: str) -> int:
    return int(sb.stats()["requests_by_endpoint"].get(endpoint, 0) - before.get(endpoint, 0))


async def _ready(web: httpx.AsyncClient) -> None:
    answer = await web.get("/readyz")
    assert (answer.status_code, answer.json()["ready"]) == (200, True), answer.text


# -- the API failing: the app's answers -----------------------------------------------------------


async def test_a_rate_limited_api_answers_429_with_retry_after_and_the_lockout_sends_nothing_more(
    tmp_path: Path, studio: Sandbox
) -> None:
    appointment = _plain_appointment(studio)
    path = f"/appointments/{appointment.id}"
    with sandbox_process("--rate-limit", "5/60") as sb, app_process(sb.base_url, tmp_path) as app:
        async with app.client() as web:
            for _ in range(5):
                assert (await web.get(path)).status_code == 200
            # The sandbox's 429 (its budget is not the client's): the client locks the endpoint for
            # the span and, with a short per-call wait, the handler answers at once.
            for _ in range(3):
                limited = await web.get(path)
                assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
                retry_after = int(limited.headers["Retry-After"])
                assert 30 <= retry_after <= 61, retry_after  # the lockout's minute, not a blip
            assert sb.stats()["rate_limited"] == 1, "the lockout sent nothing after the first 429"
            # Other endpoints keep their own budget.
            assert (await web.get(f"{path}/slots")).status_code == 200


async def test_an_overloaded_api_answers_503(tmp_path: Path) -> None:
    with sandbox_process("--rate-503", "1") as sb, app_process(sb.base_url, tmp_path) as app:
        async with app.client() as web:
            answer = await web.get("/appointments/1")
            assert (answer.status_code, answer.json()["error"]) == (503, "api_unavailable")
            assert answer.json()["upstream"]["status_code"] == 503
            assert sb.stats()["faults"] == {"503": 3}, "the read was retried twice first"
            not_ready = await web.get("/readyz")
            assert (not_ready.status_code, not_ready.json()["ready"]) == (503, False)


async def test_an_api_slower_than_the_deadline_answers_504(tmp_path: Path) -> None:
    with (
        sandbox_process("--latency", "1") as sb,
        app_process(sb.base_url, tmp_path, WEBAPP_DEADLINE="0.2") as app,
    ):
        async with app.client() as web:
            answer = await web.get("/appointments/1")
            assert (answer.status_code, answer.json()["error"]) == (504, "api_timeout")


# -- browsers that go away mid-booking ------------------------------------------------------------


@pytest.mark.parametrize("cancel_on_disconnect", [False, True], ids=["handler-runs-on", "handler-cancelled"])
async def test_browsers_gone_mid_booking_leave_every_booking_recorded_once(
    tmp_path: Path, cancel_on_disconnect: bool
) -> None:
    gate = BookGate()
    browsers = 4
    with Sandbox(SEED, api_key=API_KEY, rate_limit=None, on_request=gate) as sb, gate:
        customers = [sb.store.add_customer().id for _ in range(browsers)]
        appointment = _plain_appointment(sb)
        settings = {"WEBAPP_CANCEL_ON_DISCONNECT": "1" if cancel_on_disconnect else "0"}
        with app_process(sb.base_url, tmp_path, uvicorn_options=("--log-level", "trace"), **settings) as app:
            async with app.client() as web:
                slots = (await _week(web, appointment.id, customers[0]))[: browsers * 3 : 3]
            bodies = [
                {"customer_id": c, "appointment_id": appointment.id, "start": s["start"], "end": s["end"]}
                for c, s in zip(customers, slots, strict=True)
            ]
            lost_before = app.log.count("HTTP connection lost")
            resubmits: list[httpx.Response] = []

            async def press_book(body: dict[str, Any]) -> None:
                async with app.client() as tab:
                    await tab.post("/bookings", json=body)
                raise AssertionError("the browser was to go away before the answer")  # pragma: no cover

            async def press_again(body: dict[str, Any]) -> None:  # a reload, a second tab
                async with app.client() as tab:
                    resubmits.append(await tab.post("/bookings", json=body))

            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    async with anyio.create_task_group() as tabs:
                        for body in bodies:
                            tabs.start_soon(press_book, body)
                        await gate.arrivals(len(bodies))  # every booking request is at the API, held
                        tabs.cancel_scope.cancel()  # every browser goes away: its connection closes
                    await anyio.to_thread.run_sync(
                        functools.partial(
                            app.log.wait_for, "HTTP connection lost", count=lost_before + len(bodies)
                        )
                    )
                    if cancel_on_disconnect:
                        await anyio.to_thread.run_sync(
                            functools.partial(
                                app.log.wait_for, "client went away: cancelling", count=len(bodies)
                            )
                        )
                    for body in bodies[:2]:
                        tg.start_soon(press_again, body)
                    gate.release()
            await _until(lambda: sum(r["kind"] == "booked" for r in app.outcomes()) >= browsers)
        rows = app.outcomes()
        assert _audit(sb, app, customers) == (browsers, 0, 0, [])
        booked = [r for r in rows if r["kind"] == "booked"]
        # The handler of a browser that went away ran on (default) or was cancelled (the middleware);
        # either way the client finished the booking and the store has it.
        assert [r["caller_cancelled"] for r in booked] == [cancel_on_disconnect] * browsers
        by_customer = {r["customer_id"]: r["booking_id"] for r in booked}
        for answer in resubmits:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["already_existed"] is True
            assert body["booking_id"] in by_customer.values()


async def _until(condition: Any) -> None:
    # The condition is in another process's SQLite file: there is no event to wait on.
    with anyio.fail_after(WAIT):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)


# -- SIGTERM with bookings in flight --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_sigterm_with_bookings_in_flight_records_every_booking_and_leaks_nothing(
    tmp_path: Path, backend: str
) -> None:
    gate = BookGate()
    bookings = 6
    with Sandbox(SEED + 1, api_key=API_KEY, rate_limit=None, on_request=gate) as sb, gate:
        customers = [sb.store.add_customer().id for _ in range(bookings)]
        appointment = _plain_appointment(sb)
        with app_process(
            sb.base_url,
            tmp_path,
            python_options=("-W", "always::ResourceWarning"),
            WEBAPP_HTTP_BACKEND=backend,
        ) as app:
            async with app.client() as web:
                slots = (await _week(web, appointment.id, customers[0]))[: bookings * 3 : 3]

            async def press_book(body: dict[str, Any]) -> None:
                # The server goes away under the browser: its answer is not the point.
                with contextlib.suppress(httpx.TransportError):
                    async with app.client() as tab:
                        await tab.post("/bookings", json=body)

            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    for customer, slot in zip(customers, slots, strict=True):
                        body = {"customer_id": customer, "appointment_id": appointment.id, **slot}
                        body.pop("instructors")
                        tg.start_soon(press_book, body)
                    await gate.arrivals(bookings)
                    app.process.send_signal(signal.SIGTERM)
                    # uvicorn cancels the handlers after its 1 s and closes the app; closing the
                    # client waits for the booking flows, which only now go on.
                    await anyio.to_thread.run_sync(app.log.wait_for, "Waiting for application shutdown")
                    gate.release()
                exit_code = await anyio.to_thread.run_sync(app.process.wait, WAIT)
            log = app.log
            log.join()
        assert exit_code in (0, -signal.SIGTERM), log.text()
        assert "timeout graceful shutdown exceeded" in log.text()
        assert "Application shutdown complete" in log.text()
        assert "Unclosed" not in log.text(), log.text()
        assert "ResourceWarning" not in log.text(), log.text()
        assert _audit(sb, app, customers) == (bookings, 0, 0, [])
        assert all(r["caller_cancelled"] for r in app.outcomes())


# -- two processes, one budget in Redis -----------------------------------------------------------


async def test_two_app_processes_share_the_rate_limit_in_redis_and_the_api_sends_no_429(
    tmp_path: Path, redis_url: str, studio: Sandbox
) -> None:
    appointment = _plain_appointment(studio)
    hammer = 40  # four times what the sandbox allows in its window
    shared = {
        "WEBAPP_RATE_LIMIT": "10/5",
        "WEBAPP_RATE_LIMIT_REDIS": redis_url,
        "WEBAPP_MAX_RATE_LIMIT_WAIT": "0",
    }
    with (
        sandbox_process("--rate-limit", "10/5") as sb,
        app_process(sb.base_url, tmp_path, WEBAPP_HTTP_BACKEND="httpx", **shared) as first,
        app_process(sb.base_url, tmp_path, WEBAPP_HTTP_BACKEND="aiohttp", **shared) as second,
    ):
        answers: list[httpx.Response] = []
        async with first.client() as one, second.client() as two:

            async def ask(web: httpx.AsyncClient) -> None:
                answers.append(await web.get(f"/appointments/{appointment.id}"))

            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    for n in range(hammer):
                        tg.start_soon(ask, (one, two)[n % 2])
        stats = sb.stats()
        statuses = Counter(a.status_code for a in answers)
        sent = stats["requests_by_endpoint"].get("GET /v1/appointments/bookable/{bookableAppointmentId}", 0)
        assert stats["rate_limited"] == 0, stats
        assert set(statuses) <= {200, 429}, statuses
        assert statuses[429] > 0, statuses
        assert statuses[200] == sent, "every 429 came from the app, before any request"
        assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)


# -- startup ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("WEBAPP_HTTP_BACKEND", "curl", "WEBAPP_HTTP_BACKEND must be httpx or aiohttp, got 'curl'"),
        ("PERFECTGYM_BASE_URL", "ftp://studio.example", "base_url"),
    ],
)
def test_a_bad_setting_stops_the_app_before_it_listens_with_one_line(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    env = app_env("http://127.0.0.1:9", tmp_path / "outcomes.sqlite3", {setting: value})
    done = subprocess.run(
        app_command(free_port()), env=env, cwd=ROOT, capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert done.returncode != 0
    assert "webapp: bad setting: " in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Uvicorn running" not in done.stderr, done.stderr
    assert API_KEY not in done.stderr


# -- scripts/webapp: the one command ------------------------------------------------------------


def test_scripts_webapp_serves_the_app_on_a_sandbox_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    # The script as written, with a _venv.sh that only puts this venv first on PATH: the test
    # must not install anything.
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy2(ROOT / "scripts" / "webapp", scripts / "webapp")
    (scripts / "_venv.sh").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\ncd "{ROOT}"\n')
    port = free_port()
    env = {**app_env("", tmp_path / "unused.sqlite3", {}), "WEBAPP_PORT": str(port)}
    for name in ("PERFECTGYM_BASE_URL", "PERFECTGYM_API_KEY", "WEBAPP_DB"):
        env.pop(name)
    script = subprocess.Popen(
        [str(scripts / "webapp"), "--log-level", "info"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )
    assert script.stderr is not None
    log = Log(script.stderr)
    try:
        assert f"webapp on http://127.0.0.1:{port}" in log.wait_for("webapp on http://")
        log.wait_for("Uvicorn running on")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=WAIT)
        assert (ready.status_code, ready.json()["ready"]) == (200, True)
        os.killpg(script.pid, signal.SIGINT)
        # Stopped by the Ctrl-C: uvicorn re-raises the SIGINT once shut down (130, or -2 for the
        # shell's own status), though under load bash may report the interrupted wait as 0.
        assert script.wait(WAIT) in (0, 130, -signal.SIGINT, 128 + signal.SIGINT)
        log.wait_for("Application shutdown complete")
        with pytest.raises(ProcessLookupError):  # the sandbox is gone too
            os.killpg(script.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)
        script.wait(5)
        log.join()
        script.stderr.close()


# -- the mapping itself, for the errors the sandbox cannot be made to raise on cue ----------------


def _status_error(cls: type[Any], status: int, **extra: Any) -> Any:
    return cls(status_code=status, operation="op", method="GET", path="/v1/x", error_message="no", **extra)


def _mapping_cases() -> Iterator[tuple[Exception, int, str]]:
    timeout = APITimeoutError("slow", operation="op", method="POST", path="/v1/x")
    reset = APIConnectionError("reset", operation="op", method="POST", path="/v1/x")
    start = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    for cause, status in ((timeout, 504), (reset, 502)):
        yield (
            BookingOutcomeUnknownError("?", customer_id=1, cause=cause, start_date_time=start),
            status,
            "booking_outcome_unknown",
        )
    yield (
        BookingIdUnknownError("made", customer_id=1, bookable_appointment_id=2, start_date_time=start,
                              end_date_time=start, visible_from=dt.date(2026, 12, 2), cause=reset),
        202,
        "booked_id_unknown",
    )  # fmt: skip
    taken = SlotNotBookableError(
        ValidationStatus.RESOURCE_NOT_AVAILABLE, customer_id=1, bookable_appointment_id=2
    )
    past = SlotNotBookableError(
        ValidationStatus.PAST_START_DATE_TIME, customer_id=1, bookable_appointment_id=2
    )
    yield taken, 409, "slot_not_bookable"
    yield past, 422, "slot_not_bookable"
    yield _status_error(ConflictError, 409), 409, "conflict"
    yield _status_error(NotFoundError, 404), 404, "not_found"
    yield _status_error(ServiceUnavailableError, 503), 503, "api_unavailable"
    yield timeout, 504, "api_timeout"
    yield reset, 502, "api_unreachable"
    yield CircuitOpenError("down", operation="op", method="GET", path="/v1/x"), 503, "studio_unavailable"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [pytest.param(*case, id=f"{type(case[0]).__name__}-{case[1]}") for case in _mapping_cases()],
)
def test_each_client_error_maps_to_its_http_answer(error: Exception, status: int, code: str) -> None:
    from examples.webapp.errors import classify

    answer = classify(error, now=0.0, lockout_seconds=60)  # type: ignore[arg-type]
    assert (answer.status, answer.body["error"]) == (status, code)


def test_an_open_circuit_breaker_answers_503_with_retry_after_until_its_probe() -> None:
    from examples.webapp.errors import classify

    error = CircuitOpenError("down", operation="op", method="GET", path="/v1/x")
    error.retry_in = 7.2
    answer = classify(error, now=0.0, lockout_seconds=60)
    assert (answer.status, answer.headers) == (503, {"Retry-After": "8"})


@pytest.mark.parametrize(
    ("reopens_in", "retry_after", "expected"),
    [(12.2, None, 13), (0.01, None, 1), (None, 4.5, 5), (None, None, 60)],
)
def test_retry_after_is_whole_seconds_from_reopens_at_and_at_least_one(
    reopens_in: float | None, retry_after: float | None, expected: int
) -> None:
    from examples.webapp.errors import classify

    error = _status_error(RateLimitError, 429, retry_after=retry_after)
    if reopens_in is not None:
        error.reopens_at = 1000.0 + reopens_in
    answer = classify(error, now=1000.0, lockout_seconds=60)
    assert (answer.status, answer.headers) == (429, {"Retry-After": str(expected)})


# -- tracing, as a deployment turns it on --------------------------------------------------------

# The deployment's OpenTelemetry SDK (here: every span as one JSON line on stdout), set up before
# uvicorn imports the app; WEBAPP_OTEL=1 hands the global providers to the client.
_TRACED_LAUNCHER = """
import sys

import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

provider = TracerProvider()
exporter = ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\\n")
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
uvicorn.run("examples.webapp.app:create_app", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
            timeout_graceful_shutdown=1, access_log=False)
"""


async def test_with_webapp_otel_a_booking_is_one_span_tree_and_no_span_holds_the_key_or_ids(
    tmp_path: Path, studio: Sandbox
) -> None:
    import json

    demo = studio.demo_customer_id
    appointment = _plain_appointment(studio)
    launcher = tmp_path / "traced.py"
    launcher.write_text(_TRACED_LAUNCHER)
    port = free_port()
    with sandbox_process() as sb:
        env = app_env(sb.base_url, tmp_path / "outcomes.sqlite3", {"WEBAPP_OTEL": "1"})
        spans_file = tmp_path / "spans.jsonl"
        with spans_file.open("w") as spans_out:
            app = subprocess.Popen(  # noqa: ASYNC220 - starting it takes no time; its waits are in threads
                [sys.executable, str(launcher), str(port)],
                env=env, stdout=spans_out, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            )  # fmt: skip
        assert app.stderr is not None
        log = Log(app.stderr)
        try:
            log.wait_for("Uvicorn running on")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as web:
                tomorrow = dt.datetime.now(ZONE).date() + dt.timedelta(days=1)
                slot = (await _week(web, appointment.id, demo, tomorrow))[0]
                made = await web.post(
                    "/bookings",
                    json={"customer_id": demo, "appointment_id": appointment.id, "start": slot["start"],
                          "end": slot["end"]},
                )  # fmt: skip
                assert made.status_code == 201, made.text
        finally:
            await anyio.to_thread.run_sync(stop, app, log)
    out = spans_file.read_text()
    spans = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_id = {s["context"]["span_id"]: s for s in spans}
    [book] = [s for s in spans if s["name"] == "AppointmentsClient.book"]
    children = sorted(
        (s for s in spans if s["parent_id"] == book["context"]["span_id"]), key=lambda s: s["start_time"]
    )
    assert [c["name"] for c in children] == ["validateForAppointmentBooking", "bookAppointmentBooking"]
    assert book["attributes"]["perfectgym.booking.outcome"] == "booked"
    assert all(c["kind"] == "SpanKind.CLIENT" for c in children)
    assert children[1]["attributes"]["http.response.status_code"] == 200
    assert children[1]["attributes"]["url.template"] == "/v1/appointments/booking/book"
    [week] = [s for s in spans if s["name"] == "AppointmentsClient.get_slots"]
    windows = [s for s in spans if s["parent_id"] == week["context"]["span_id"]]
    assert len(windows) == 2, "a week is two windows of the API's six days"
    assert all(s["context"]["trace_id"] == by_id[s["parent_id"]]["context"]["trace_id"]
               for s in spans if s["parent_id"] in by_id)  # fmt: skip
    assert API_KEY not in out
    # The client's spans (its calls and everything under them); the others are the app's own
    # (FastAPI's server spans, whose URLs are the app's business).
    ours = [s for s in spans if s["name"].startswith("AppointmentsClient.")]
    ours += [s for s in spans if s["parent_id"] in {o["context"]["span_id"] for o in ours}]
    assert len(ours) == 2 + 2 + 2
    text = json.dumps(ours)
    for value in (str(demo), str(made.json()["booking_id"]), str(appointment.id)):
        assert value not in text, f"{value!r} in a span of the client"
