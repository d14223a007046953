"""The guides' code runs as shown: the setup on the Getting started page (docs/index.md, "Running
the guides' code") makes every name the guides' blocks use without defining it, every page whose
code needs it says so at its top and links there, and the guides' blocks run after that setup,
exactly as written, in one session (the setup in Python's asyncio REPL, too).

tests/test_docs_examples.py runs the same blocks against names the test prepares; this file holds
the page a reader follows to the same result.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ROOT / "docs" / "guides"
PAGES = sorted(GUIDES.glob("*.md"))
INDEX = ROOT / "docs" / "index.md"
LINK = "../index.md#running-the-guides-code"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*\Z", re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the code's first line, code) of every python block meant to run."""
    return [
        (text[: m.start()].count("\n") + 2, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1).strip() == "python" and not NO_RUN.search(text[: m.start()])
    ]


def setup_block() -> str:
    text = INDEX.read_text(encoding="utf-8")
    section = text[text.index("## Running the guides' code") :]
    section = section[: section.index("\n## ", 1)]
    [(_, code)] = python_blocks(section)
    return code


def _parse(code: str) -> ast.Module:
    # Top-level await allowed, as a notebook runs the code.
    tree = compile(code, "<guide>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert isinstance(tree, ast.Module)
    return tree


def _uses_top_level_await(code: str) -> bool:
    try:
        compile(code, "<guide>", "exec")
    except SyntaxError:
        return True
    return False


def defined_and_used(code: str) -> tuple[set[str], set[str]]:
    """(names a block binds, names it reads) at any depth: enough for "is it defined on the page"."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(_parse(code)):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store | ast.Del) else read).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, read


def undefined_names(page: Path) -> set[str]:
    """The names a page's blocks read and never bind (builtins aside): the setup's to make."""
    bound: set[str] = set()
    read: set[str] = set()
    for _, code in python_blocks(page.read_text(encoding="utf-8")):
        b, r = defined_and_used(code)
        bound |= b
        read |= r
    return {name for name in read - bound if not hasattr(builtins, name)}


SETUP_NAMES = defined_and_used(setup_block())[0]


def test_the_setup_makes_every_name_a_guide_uses_without_defining_it() -> None:
    assert {"client", "customer_id", "bookable_appointment_id", "slots", "booking_id", "sb"} <= SETUP_NAMES
    for page in PAGES:
        missing = undefined_names(page) - SETUP_NAMES
        assert not missing, f"{page.name} uses {sorted(missing)}, which neither it nor the setup defines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_a_page_whose_code_needs_the_setup_or_await_says_so_at_its_top(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    needs = sorted(undefined_names(page))
    awaits = any(_uses_top_level_await(code) for _, code in blocks)
    if not needs and not awaits:
        return
    top = text[: FENCE.search(text).start()]  # type: ignore[union-attr]  # a page with blocks has a fence
    note = " ".join(re.sub(r"^>[ ]?", "", top, flags=re.MULTILINE).split())  # as read, quote marks aside
    assert LINK in note, f"{page.name}: no link to the guides' setup before its first code block"
    assert "top-level `await`" in note, page.name
    for name in needs:
        assert f"`{name}`" in note, f"{page.name}: the note does not name `{name}`, which its code uses"


async def _run(code: str, namespace: dict[str, Any], filename: str) -> None:
    compiled = compile(code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # noqa: S307 - the documentation's own code
    if inspect.iscoroutine(result):
        await result


def test_the_guides_run_as_shown_after_the_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # The setup sets both variables itself; these only make the test put them back afterwards.
    monkeypatch.setenv("PERFECTGYM_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PERFECTGYM_API_KEY", "placeholder")
    monkeypatch.delenv("PERFECTGYM_HTTP_BACKEND", raising=False)
    monkeypatch.delenv("PERFECTGYM_ACCEPT_LANGUAGE", raising=False)

    async def main() -> None:
        session: dict[str, Any] = {"__name__": "docs_setup"}
        await _run(setup_block(), session, str(INDEX))
        try:
            for page in PAGES:
                namespace = dict(session)  # each page from the setup, as in a new notebook after it
                namespace["__name__"] = f"docs_guides_{page.stem.replace('-', '_')}"
                text = page.read_text(encoding="utf-8")
                for line, code in python_blocks(text):
                    await _run("\n" * (line - 1) + code, namespace, str(page))
        finally:
            await session["client"].aclose()
            session["sb"].stop()

    asyncio.run(main())


def test_the_setup_runs_in_the_asyncio_repl() -> None:
    """Pasted into ``python -m asyncio`` as it stands: statements end at its blank lines."""
    script = (
        setup_block()
        + "\nprint('names', sorted(n for n in ('client', 'customer_id', 'bookable_appointment_id',"
        " 'slots', 'booking_id', 'sb') if n in globals()), len(slots) > 0, isinstance(booking_id, int))\n"
        "await client.aclose()\nsb.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFECTGYM_")}
    repl = subprocess.run(
        [sys.executable, "-m", "asyncio"], input=script, capture_output=True, text=True, env=env, timeout=120
    )
    assert "Error" not in repl.stderr.replace("KeyboardInterrupt", ""), repl.stderr
    assert (
        "names ['bookable_appointment_id', 'booking_id', 'client', 'customer_id', 'sb', 'slots'] True True"
        in repl.stdout + repl.stderr
    ), repl.stdout + repl.stderr
