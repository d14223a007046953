"""The package reads top-down: no module imports one above it (TYPE_CHECKING and function-local
imports included), so a call from ``client.book(...)`` goes down to the socket and never comes
back up. The layers, lowest first, are listed once here; a new module gets a place in them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "perfectgym_appointments_client"
NAME = PACKAGE.name

# Lowest first. Modules on one line may import each other only where the import graph is
# acyclic (checked below); a module imports only from its own line or the lines above.
LAYERS: list[set[str]] = [
    {"_constants", "_field_paths", "_zoned", "_concurrency", "_call_options", "_tls", "_html"},
    {"_generated"},
    {"_version", "_exceptions", "_models", "_http", "_telemetry"},
    {"_httpx_backend", "_aiohttp_backend"},
    {"_backends", "_retry", "_throttling", "_breaker", "_connections", "_studio_limits"},
    {"_journal._base", "_journal._sqlite", "_journal._redis", "_journal"},
    {"_request"},
    {"_pagination", "_arguments", "_configuration"},
    {"_operations"},
    {"_booking._evidence", "_booking._outcome", "_booking._journaling"},
    {"_booking._check", "_booking._shield"},
    {"_booking._recover"},
    {"_booking._cancel"},
    {"_booking._book"},
    {"_booking._reschedule", "_booking._first_available"},
    {"_booking._flows"},
    {"_booking"},
    {"_client", "_display"},
    {""},  # the package's __init__: the public names
]
# Applications built on the package, beside it rather than in its layers.
APPS = ("cli", "sandbox")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def rank(module: str) -> int:
    if module.startswith("_generated"):
        module = "_generated"
    for index, layer in enumerate(LAYERS):
        if module in layer:
            return index
    raise LookupError(module)


def imports(path: Path, source: str | None = None) -> set[str]:
    """Every package module ``path`` imports (or ``source``, read as if it stood there), anywhere
    in the file, relative to the package."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text)):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join([*base, node.module] if node.module else base)
                # ``from . import x``: x is a module.
                targets = [prefix] if node.module else [f"{prefix}.{a.name}".lstrip(".") for a in node.names]
            elif node.module and (node.module == NAME or node.module.startswith(NAME + ".")):
                targets = [node.module.removeprefix(NAME).lstrip(".")]
        elif isinstance(node, ast.Import):
            targets = [
                a.name.removeprefix(NAME).lstrip(".")
                for a in node.names
                if a.name == NAME or a.name.startswith(NAME + ".")
            ]
        found.update(t.lstrip(".") for t in targets)
    found.discard(module)
    return found


HAND_WRITTEN = sorted(
    p for p in PACKAGE.rglob("*.py") if "_generated" not in p.parts and not module_of(p).startswith(APPS)
)


def test_every_hand_written_module_has_a_layer() -> None:
    missing = []
    for path in HAND_WRITTEN:
        try:
            rank(module_of(path))
        except LookupError:
            missing.append(module_of(path))
    assert missing == []


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: module_of(p) or "__init__")
def test_no_module_imports_a_layer_above_it(path: Path) -> None:
    here = rank(module_of(path))
    upward = sorted(t for t in imports(path) if rank(t) > here)
    assert upward == [], f"{module_of(path)} imports {upward} from above it"


def test_the_import_graph_has_no_cycle() -> None:
    graph = {module_of(p): imports(p) for p in HAND_WRITTEN}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done or module not in graph:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_the_check_sees_an_upward_import_even_under_type_checking() -> None:
    source = PACKAGE / "_booking" / "_flows.py"
    text = source.read_text(encoding="utf-8")
    assert "_client" not in imports(source)
    sneaked = text + "\nif TYPE_CHECKING:\n    from .._client import AppointmentsClient\n"
    found = imports(source, sneaked)
    assert "_client" in found
    assert rank("_client") > rank(module_of(source))
