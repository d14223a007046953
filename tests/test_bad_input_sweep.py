"""The bad-input sweep (benchmarks/bad_input.py): every malformed answer against every operation.

Each case must end in the typed error it names (a ResponseValidationError naming the operation and
the field) or in a tolerant parse it checks; never in a bare exception.
"""

from __future__ import annotations

import pytest

from benchmarks.bad_input import OPERATIONS, Bad, Operation, cases, problem, run_case

pytestmark = pytest.mark.anyio

CASES = cases()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # parsing is backend-independent; test_a_sample_on_trio runs some cases on trio


@pytest.mark.parametrize(("op", "name", "bad"), CASES, ids=[f"{op.name}-{name}" for op, name, _ in CASES])
async def test_malformed_answer(op: Operation, name: str, bad: Bad) -> None:
    outcome = await run_case(op, bad)
    assert problem(op, bad, outcome) is None


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
    problems = [(op.name, name, problem(op, bad, await run_case(op, bad))) for op, name, bad in sample]
    assert [p for p in problems if p[2] is not None] == []
