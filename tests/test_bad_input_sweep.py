"""The bad-input sweep (benchmarks/bad_input.py): every malformed answer against every operation,
on both HTTP backends (httpx through httpx.MockTransport, aiohttp over a loopback socket).

Each case must end in the typed error it names (a ResponseValidationError naming the operation and
the field) or in a tolerant parse it checks; never in a bare exception.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import anyio.from_thread
import attrs
import httpx
import pytest
from fakeapi import httpx_abandons_its_body_generators

from benchmarks.bad_input import (
    APPOINTMENT,
    HTTP_BACKENDS,
    OPERATIONS,
    Answer,
    Bad,
    LoopbackServer,
    Operation,
    cases,
    problem,
    run_case,
    sweep,
)
from perfectgym_appointments_client import APIConnectionError

pytestmark = pytest.mark.anyio

CASES = cases()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp runs on asyncio only; test_a_sample_on_trio runs some cases on trio


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    """One server for the module's aiohttp cases. Each test gets its own event loop from anyio's
    pytest plugin, so the server runs in a loop of its own, in a portal thread."""
    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(LoopbackServer()) as server,
    ):
        yield server


@pytest.mark.parametrize("backend", HTTP_BACKENDS)
@pytest.mark.parametrize(("op", "name", "bad"), CASES, ids=[f"{op.name}-{name}" for op, name, _ in CASES])
async def test_malformed_answer(
    op: Operation, name: str, bad: Bad, backend: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("loopback") if backend == "aiohttp" else None
    outcome = await run_case(op, bad, backend, server)
    assert problem(op, bad, outcome) is None
    assert outcome.requests >= 1


def test_the_sweep_is_wide() -> None:
    shapes = {name for _, name, _ in CASES}
    assert len(shapes) >= 30
    for op in OPERATIONS:
        assert sum(1 for o, _, _ in CASES if o is op) >= 30, op.name
    # Both duties are exercised: typed errors and tolerant parses.
    assert any(bad.error is None for _, _, bad in CASES)
    assert any(bad.error is not None for _, _, bad in CASES)


SAMPLE = (
    "truncated-json",
    "deeply-nested",
    "bad-gzip",
    "wrong-type-bookingId",
    "enum-unknown",
    "huge-page",
    "500-html",
)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_sample_on_trio(anyio_backend: str) -> None:
    sample = [(op, name, bad) for op, name, bad in CASES if name in SAMPLE]
    assert len(sample) > 20
    problems = []
    for op, name, bad in sample:
        if name != "bad-gzip":
            problems.append((op.name, name, problem(op, bad, await run_case(op, bad))))
            continue
        async with httpx_abandons_its_body_generators():
            # One statement: nothing outside the block holds the error, and through it the generators.
            problems.append((op.name, name, problem(op, bad, await run_case(op, bad))))
    assert [p for p in problems if p[2] is not None] == []


# -- the harness itself ---------------------------------------------------------------------------------


def test_both_backends_get_the_same_bytes() -> None:
    answer = Answer.of(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, b'{"a": 1}')
    assert answer.to_wire().data == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b'Content-Length: 8\r\n\r\n{"a": 1}'
    )
    response = answer.to_httpx()
    assert list(response.headers.items()) == [(k.lower(), v) for k, v in answer.headers]
    # Not decoded (nor failed) in the mock: the client reads it, as it would off a socket.
    with pytest.raises(httpx.DecodingError):
        response.read()
    no_content = Answer.of(204, {}, b"")
    assert no_content.to_wire().data == b"HTTP/1.1 204 No Content\r\n\r\n"
    with pytest.raises(ValueError, match="no body"):
        Answer.of(204, {}, b"x")


async def test_a_request_the_sweep_has_no_answer_for_fails_its_case(loopback: LoopbackServer) -> None:
    # A gap in the sweep itself must fail the case on either backend, not pass as a cut connection
    # (which aiohttp's client would report as a typed APIConnectionError).
    op = next(o for o in OPERATIONS if o.name == "getBookableAppointment")
    elsewhere = attrs.evolve(op, call=lambda c: c.get_bookable_appointment(APPOINTMENT + 1))
    for backend in HTTP_BACKENDS:
        outcome = await run_case(
            elsewhere, Bad(200, b"{}"), backend, loopback if backend == "aiohttp" else None
        )
        assert outcome.kind == "bare", (backend, outcome)
        assert isinstance(outcome.error, KeyError), (backend, outcome)
        assert outcome.requests == 1, backend


async def test_the_sweep_counts_per_backend() -> None:
    selected = [case for case in CASES if case[1] in SAMPLE]
    results = await sweep(HTTP_BACKENDS, selected)
    assert list(results) == list(HTTP_BACKENDS)
    for backend, (counts, wrong) in results.items():
        assert wrong == [], backend
        assert sum(counts.values()) == len(selected), backend
        assert counts["bare"] == 0, (backend, counts)
        assert counts["typed"] > 0, (backend, counts)
        assert counts["ok"] > 0, (backend, counts)


async def test_a_bad_gzip_body_is_no_answer_on_both_backends(loopback: LoopbackServer) -> None:
    [(op, bad)] = [
        (op, bad) for op, name, bad in CASES if name == "bad-gzip" and op.name == "getBookableAppointment"
    ]
    for backend in HTTP_BACKENDS:
        outcome = await run_case(op, bad, backend, loopback if backend == "aiohttp" else None)
        assert isinstance(outcome.error, APIConnectionError), (backend, outcome)
        assert outcome.error.may_have_reached_server, backend
        assert "gzip" in str(outcome.error).lower() or "decod" in str(outcome.error).lower(), (
            backend,
            outcome,
        )
