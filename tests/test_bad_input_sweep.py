"""The bad-input sweep (benchmarks/bad_input.py): every malformed answer against every operation,
on both HTTP backends (httpx through httpx.MockTransport, aiohttp over a loopback socket).

Each case must end in the typed error it names (a ResponseValidationError naming the operation and
the field) or in a tolerant parse it checks; never in a bare exception.

The backends differ up to the answer as received (``HTTPResponse``: status, headers, body); the
parse of it is one code path. So a shape that only spoils a field or an item of a well-formed JSON
answer of the usual size runs on httpx, and on aiohttp for each operation's first typed error and
first tolerant parse of that kind; every other shape (the body as a whole, its status, size,
encoding or pace) runs on both (``test_every_operation_and_shape_of_the_answer_runs_on_both_backends``).
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
    _body_cases,
    _field_cases,
    _list_cases,
    _status_cases,
    cases,
    problem,
    run_case,
    sweep,
)
from perfectgym_appointments_client import APIConnectionError

pytestmark = pytest.mark.anyio

CASES = cases()


def _parse_only() -> set[tuple[str, str]]:
    """(operation, shape) of the field and list shapes left to httpx alone: well-formed JSON of
    the usual size, one field or item spoiled; each operation keeps its first typed error and
    first tolerant parse of them on aiohttp too. The answers' sizes (huge-page, long-string) go
    through a backend's reading: those run on both."""
    duty = {(op.name, name): bad.error is None for op, name, bad in CASES}
    left: set[tuple[str, str]] = set()
    for op in OPERATIONS:
        spoiled = [
            name
            for name, _ in [*_field_cases(op), *_list_cases(op)]
            if name not in ("huge-page", "long-string")
        ]
        kept = {
            next((n for n in spoiled if duty[op.name, n] is tolerant), None) for tolerant in (False, True)
        }
        left |= {(op.name, name) for name in spoiled if name not in kept}
    return left


PARSE_ONLY = _parse_only()
SWEEP = [
    pytest.param(op, name, bad, backend, id=f"{op.name}-{name}-{backend}")
    for op, name, bad in CASES
    for backend in HTTP_BACKENDS
    if backend == "httpx" or (op.name, name) not in PARSE_ONLY
]


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


@pytest.mark.parametrize(("op", "name", "bad", "backend"), SWEEP)
async def test_malformed_answer(
    op: Operation, name: str, bad: Bad, backend: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("loopback") if backend == "aiohttp" else None
    outcome = await run_case(op, bad, backend, server)
    assert problem(op, bad, outcome) is None
    assert outcome.requests >= 1


def test_every_operation_and_shape_of_the_answer_runs_on_both_backends() -> None:
    on = {
        backend: {(p.values[0].name, p.values[1]) for p in SWEEP if p.values[3] == backend}
        for backend in HTTP_BACKENDS
    }
    assert on["httpx"] == {(op.name, name) for op, name, _ in CASES}
    assert on["aiohttp"] == on["httpx"] - PARSE_ONLY
    assert 150 < len(PARSE_ONLY) < len(CASES) // 2
    for op in OPERATIONS:
        for backend in HTTP_BACKENDS:
            duties = {
                bad.error is None for o, name, bad in CASES if o is op and (op.name, name) in on[backend]
            }
            assert duties == {True, False}, (op.name, backend)
    # Only field and list shapes of the usual size are left to httpx: every other shape runs on both.
    assert {name for _, name in PARSE_ONLY}.isdisjoint(
        {name for op in OPERATIONS for name, _ in _body_cases(op)}
        | {name for op in OPERATIONS for name, _ in _status_cases(op)}
        | {"huge-page", "long-string"}
    )


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
