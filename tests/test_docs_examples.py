"""The guides (docs/guides/*.md) say what works: every Python block of every guide runs against a
sandbox, the claims tests depend on are where the readers look for them, and what a page lists
(the sandbox's options, the CLI's commands) is what exists.

The blocks of one page run in order in one namespace, as a reader pastes them into a notebook
(top-level ``await`` included), with a few names prepared for them: ``client`` (a client on the
sandbox, also reachable as ``AppointmentsClient()`` through the environment), ``customer_id``,
``bookable_appointment_id``, ``slots`` (a week of its slots), ``booking_id`` (a booking of that
customer) and ``sb`` (the sandbox). A block that is not meant to run says why in an HTML comment
right before its fence: ``<!-- no-run: reason -->``.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import inspect
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from perfectgym_appointments_client import AppointmentsClient
from perfectgym_appointments_client.sandbox import Faults, Sandbox

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "docs" / "guides"
PAGES = sorted(GUIDES.glob("*.md"))
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*\Z", re.DOTALL)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the fence's first code line, 1-based
    language: str
    code: str
    no_run: str | None  # the reason given, when the block is marked not to run


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        marker = NO_RUN.search(before)
        reason = marker.group(1).strip() if marker else None
        line = before.count("\n") + 2
        found.append(Block(page, line, match.group(1).strip(), match.group(2), reason))
    return found


def python_blocks(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.language == "python"]


def page_text(name: str) -> str:
    return (GUIDES / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Studio:
    sb: Sandbox
    customer_id: int
    bookable_appointment_id: int
    booking_id: int


@pytest.fixture(scope="module")
def studio() -> Iterator[Studio]:
    with Sandbox() as sb:
        customer_id = sb.demo_customer_id

        async def prepare() -> Studio:
            async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client:
                # An appointment without confirmation or premium rules, with slots all week.
                for appointment in sb.store.listed():
                    if any(word in appointment.title for word in ("Plus", "Extended", "Premium")):
                        continue
                    week = await client.get_slots(appointment.id, customer_id=customer_id, days_ahead=7)
                    if len(week) >= 10:
                        break
                else:
                    raise AssertionError("the sandbox has no appointment with slots this week")
                # A booking out of the week the pages book in, so that none of them collides with it.
                later = await client.get_slots(
                    appointment.id,
                    customer_id=customer_id,
                    days_ahead=3,
                    start_date=dt.date.today() + dt.timedelta(days=9),
                )
                booking = await client.book(
                    customer_id=customer_id, bookable_appointment_id=appointment.id, slot=later[0]
                )
                return Studio(sb, customer_id, appointment.id, booking.booking_id)

        yield asyncio.run(prepare())


async def run_page(page: Path, studio: Studio) -> None:
    sb = studio.sb
    async with AppointmentsClient(api_key=sb.api_key, base_url=sb.base_url) as client:
        namespace: dict[str, Any] = {
            "__name__": f"docs_guides_{page.stem.replace('-', '_')}",
            "client": client,
            "sb": sb,
            "customer_id": studio.customer_id,
            "bookable_appointment_id": studio.bookable_appointment_id,
            "booking_id": studio.booking_id,
            "slots": await client.get_slots(
                studio.bookable_appointment_id, customer_id=studio.customer_id, days_ahead=7
            ),
        }
        for block in python_blocks(page):
            if block.no_run is not None:
                continue
            # Padded so that a traceback names the line of the page.
            source = "\n" * (block.line - 1) + block.code
            name = str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)
            code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)  # noqa: S307 - the guide's own code
            if inspect.iscoroutine(result):
                await result
    sb.faults = Faults()  # whatever a page injected ends with it


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.stem)
def test_every_python_block_of_the_guide_runs_against_the_sandbox(
    page: Path, studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `AppointmentsClient()` in a guide is configured by the environment, as a reader's would be.
    monkeypatch.setenv("PERFECTGYM_BASE_URL", studio.sb.base_url)
    monkeypatch.setenv("PERFECTGYM_API_KEY", studio.sb.api_key)
    monkeypatch.delenv("PERFECTGYM_HTTP_BACKEND", raising=False)
    monkeypatch.delenv("PERFECTGYM_ACCEPT_LANGUAGE", raising=False)
    asyncio.run(run_page(page, studio))


def test_a_block_that_raises_fails_its_page(tmp_path: Path, studio: Studio) -> None:
    page = tmp_path / "broken.md"
    page.write_text(
        "```python\nfound = await client.get_bookable_appointment(bookable_appointment_id)\n```\n\n"
        "```python\nawait client.get_bookable_appointment(1)  # no such appointment\n```\n"
    )
    from perfectgym_appointments_client import NotFoundError

    with pytest.raises(NotFoundError) as raised:
        asyncio.run(run_page(page, studio))
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert (str(page), 6) in [(frame.filename, frame.lineno) for frame in frames]  # the page's own line


def test_a_block_not_run_says_why() -> None:
    marked = [block for page in PAGES for block in python_blocks(page) if block.no_run is not None]
    for block in marked:
        assert block.no_run, f"{block.page.name}:{block.line}: <!-- no-run: --> without a reason"
    runnable = sum(1 for page in PAGES for block in python_blocks(page) if block.no_run is None)
    assert runnable >= 15  # the guides show code; if they stop, this test should be looked at


def test_the_marker_parser_finds_a_reason_and_only_right_before_a_fence(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- no-run: needs a real tenant -->\n```python\nx = 1\n```\n\n"
        "<!-- no-run: far away -->\n\ntext between\n\n```python\ny = 2\n```\n"
    )
    first, second = python_blocks(page)
    assert (first.no_run, first.line, first.code) == ("needs a real tenant", 3, "x = 1\n")
    assert second.no_run is None


@pytest.mark.parametrize(
    ("page", "claim"),
    [
        ("listing.md", "slice_size` is 10 to 100"),
        ("slots.md", "consecutive windows of at most 6 days"),
        ("errors.md", "check_api_key()"),
        ("errors.md", 'accept_language="de"'),
        ("errors.md", "required_scope"),
        ("errors.md", "typed_args"),
        ("booking.md", "14 `ValidationStatus` values"),
        ("errors.md", "getBookableAppointmentSlots"),
        ("errors.md", "checkApiKey"),
        ("errors.md", "409 (concurrent modification)"),
        ("cli.md", "perfectgym-appointments check-key"),
        ("sandbox.md", "--rate-limit"),
        ("sandbox.md", "booking horizon of 28 days"),
        ("booking.md", "within two weeks of now"),
        ("sandbox.md", "read_only_api_key"),
        ("cli.md", "`validate`: the slot is not `AVAILABLE`"),
    ],
)
def test_the_guides_state_the_current_contract(page: str, claim: str) -> None:
    # As read, not as wrapped: a claim may break across lines anywhere.
    assert claim in " ".join(page_text(page).split())


def test_the_many_studios_guide_states_the_breakers_defaults() -> None:
    from perfectgym_appointments_client import CircuitBreaker
    from perfectgym_appointments_client._constants import MAX_BREAKER_COOLDOWN

    defaults = CircuitBreaker()
    text = " ".join(page_text("many-studios.md").split())
    assert (
        f"CircuitBreaker(failure_threshold={defaults.failure_threshold}, cooldown={defaults.cooldown})"
        in text
    )
    assert f"at most {MAX_BREAKER_COOLDOWN:g} s" in text


def test_the_booking_guide_names_every_validation_status() -> None:
    from perfectgym_appointments_client import ValidationStatus

    booking = page_text("booking.md")
    for status in ValidationStatus:
        assert f"`{status.value}`" in booking, status


def test_the_guides_stay_within_the_api_limits() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for size in re.findall(r"slice_size=(\d+)", text):
            assert 10 <= int(size) <= 100, (page.name, size)
        for days in re.findall(r"days_ahead=(\d+)", text):
            assert 1 <= int(days) <= 366, (page.name, days)


def test_the_cli_guide_shows_every_command() -> None:
    from typer.main import get_command

    from perfectgym_appointments_client.cli import app

    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    [usage] = [block.code for block in blocks(GUIDES / "cli.md") if block.language == "bash"]
    shown = {line.split()[1] for line in usage.splitlines() if line.startswith("perfectgym-appointments ")}
    assert shown == commands


def test_the_sandbox_guide_documents_every_option_and_fault() -> None:
    import attrs
    from typer.main import get_command

    from perfectgym_appointments_client.cli import app

    guide = page_text("sandbox.md")
    sandbox_command = get_command(app).commands["sandbox"]  # type: ignore[attr-defined]
    options = {opt for param in sandbox_command.params for opt in param.opts if opt != "--help"}
    assert options, "the sandbox command has options"
    for option in options:
        assert f"`{option}`" in guide, f"sandbox.md does not document {option}"
    for name in inspect.signature(Sandbox.__init__).parameters:
        if name != "self":
            assert f"`{name}`" in guide, f"sandbox.md does not document Sandbox({name}=)"
    for field in attrs.fields(Faults):
        assert f"`{field.name}`" in guide, f"sandbox.md does not document Faults({field.name}=)"


def test_the_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/guides/[\w-]+\.md)\)", readme))
    assert linked == {str(page.relative_to(ROOT)) for page in PAGES}


def test_the_web_app_lifespan_example_serves_requests_under_uvicorn(tmp_path: Path) -> None:
    import httpx
    from webapp_harness import Log, free_port, stop

    example, _tracing = [block.code for block in python_blocks(GUIDES / "webapp.md")]
    (tmp_path / "guide_app.py").write_text(example)
    with Sandbox() as sb:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFECTGYM_")}
        env |= {"PERFECTGYM_BASE_URL": sb.base_url, "PERFECTGYM_API_KEY": sb.api_key}
        app = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "guide_app:app", "--app-dir", str(tmp_path),
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert app.stderr is not None
        log = Log(app.stderr)
        try:
            log.wait_for("Uvicorn running on")
            appointment = sb.store.listed()[0]
            answer = httpx.get(f"http://127.0.0.1:{port}/appointments/{appointment.id}", timeout=20)
            missing = httpx.get(f"http://127.0.0.1:{port}/appointments/1", timeout=20)
        finally:
            stop(app, log)
    assert answer.status_code == 200, log.text()
    assert answer.json() == {"id": appointment.id, "title": appointment.title}
    # Mapping errors to answers is examples/webapp's errors.py; unmapped, NotFoundError is a 500.
    assert missing.status_code == 500
    assert "NotFoundError" in log.text()
    assert "Application shutdown complete" in log.text()


def test_the_tracing_example_makes_a_client_with_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    _app, tracing = [block.code for block in python_blocks(GUIDES / "webapp.md")]
    monkeypatch.setenv("PERFECTGYM_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PERFECTGYM_API_KEY", "guide-key")
    namespace: dict[str, object] = {}
    exec(compile(tracing, "docs/guides/webapp.md (tracing)", "exec"), namespace)  # noqa: S102 - the guide's own code
    client = namespace["client"]
    assert type(client).__name__ == "AppointmentsClient"
    assert client._telemetry is not None  # type: ignore[attr-defined]


def test_the_web_app_command_is_a_script_in_the_repository() -> None:
    [command] = [block.code for block in blocks(GUIDES / "webapp.md") if block.language == "bash"]
    script = command.split()[0]
    assert script == "./scripts/webapp"
    assert os.access(ROOT / script, os.X_OK)
