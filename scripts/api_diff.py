"""What changed between two versions of the API's spec, for callers of this client.

    python scripts/api_diff.py old.yaml new.yaml

Compares what a caller of the client sees: operations (by operationId), their parameters (added,
removed, required or not, bounds and defaults), the fields of every schema (added, removed,
required or not), enum values and parameter bounds. Each change is marked breaking or not for
callers: a removal, a new required input, a narrower bound, or a new required field in a request
body breaks a caller's code; additions do not (enums are open in this client, so a new value is
not breaking either). ``scripts/generate.py --from NEW_SPEC`` prints this and writes it into
CHANGELOG.md.

No library fit: the OpenAPI differs on PyPI either wrap a Go binary (oasdiff) or compare raw JSON
(deepdiff), which cannot say that a new optional field is harmless and a new required parameter
is not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Change", "diff_specs", "load_spec", "render_changelog"]

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BOUNDS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems")


@dataclass(frozen=True, order=True)
class Change:
    kind: str  # "added", "changed" or "removed" (Keep a Changelog's sections)
    what: str
    breaking: bool

    def line(self) -> str:
        return f"- {'**breaking**' if self.breaking else 'non-breaking'}: {self.what}"


def load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        loaded = yaml.safe_load(fh)
    if not isinstance(loaded, dict) or "paths" not in loaded:
        raise ValueError(f"{path} is not an OpenAPI document (no paths)")
    return loaded


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 32:
            raise ValueError(f"unsupported reference {ref!r}")
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, seen = target, seen + 1
    return node


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                found[op.get("operationId") or f"{method.upper()} {path}"] = (method.upper(), path, op)
    return found


def _parameters(spec: dict[str, Any], op: dict[str, Any], item: dict[str, Any]) -> dict[tuple[str, str], Any]:
    params = [_resolve(spec, p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
    return {(p["in"], p["name"]): p for p in params}


def _bounds(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in (*BOUNDS, "default") if k in schema}


def _narrower(key: str, old: Any, new: Any) -> bool:
    if key == "default" or old is None:
        return key != "default" and old is None  # a new bound narrows; a new default does not
    if new is None:
        return False  # a bound dropped widens
    return bool(new > old) if key.startswith("min") else bool(new < old)


def _request_schemas(spec: dict[str, Any]) -> set[str]:
    """Schemas callers send (request bodies), directly or nested: a new required field there breaks them."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in names:
                    names.add(name)
                    walk(spec["components"]["schemas"].get(name))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _, _, op in _operations(spec).values():
        walk(op.get("requestBody"))
    return names


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Properties and required names, through allOf."""
    schema = _resolve(spec, schema)
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, more_required = _fields(spec, part)
        properties.update(more)
        required |= more_required
    return properties, required


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change a caller of the client can notice, sorted by kind."""
    return sorted(set(_diff(old, new)))


def _diff(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    old_ops, new_ops = _operations(old), _operations(new)
    for name in new_ops.keys() - old_ops.keys():
        method, path, _ = new_ops[name]
        yield Change("added", f"operation `{name}` ({method} {path})", False)
    for name in old_ops.keys() - new_ops.keys():
        method, path, _ = old_ops[name]
        yield Change("removed", f"operation `{name}` ({method} {path})", True)
    for name in old_ops.keys() & new_ops.keys():
        yield from _diff_operation(old, new, name, old_ops[name], new_ops[name])
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    sent = _request_schemas(new)
    for name in new_schemas.keys() - old_schemas.keys():
        yield Change("added", f"schema `{name}`", False)
    for name in old_schemas.keys() - new_schemas.keys():
        yield Change("removed", f"schema `{name}`", True)
    for name in old_schemas.keys() & new_schemas.keys():
        yield from _diff_schema(old, new, name, old_schemas[name], new_schemas[name], name in sent)


def _diff_operation(
    old: dict[str, Any],
    new: dict[str, Any],
    name: str,
    before: tuple[str, str, dict[str, Any]],
    after: tuple[str, str, dict[str, Any]],
) -> Iterator[Change]:
    if before[:2] != after[:2]:
        yield Change("changed", f"`{name}` moved from {before[0]} {before[1]} to {after[0]} {after[1]}", True)
    old_params = _parameters(old, before[2], old["paths"][before[1]])
    new_params = _parameters(new, after[2], new["paths"][after[1]])
    for key in new_params.keys() - old_params.keys():
        required = bool(new_params[key].get("required"))
        what = f"`{name}`: {'required' if required else 'optional'} {key[0]} parameter `{key[1]}`"
        yield Change("added", what, required)
    for key in old_params.keys() - new_params.keys():
        yield Change("removed", f"`{name}`: {key[0]} parameter `{key[1]}`", True)
    for key in old_params.keys() & new_params.keys():
        was, now = old_params[key], new_params[key]
        if bool(was.get("required")) != bool(now.get("required")):
            became = "required" if now.get("required") else "optional"
            yield Change(
                "changed", f"`{name}`: {key[0]} parameter `{key[1]}` became {became}", became == "required"
            )
        old_bounds = _bounds(_resolve(old, was.get("schema", {})))
        new_bounds = _bounds(_resolve(new, now.get("schema", {})))
        for bound in sorted(old_bounds.keys() | new_bounds.keys()):
            a, b = old_bounds.get(bound), new_bounds.get(bound)
            if a != b:
                what = f"`{name}`: parameter `{key[1]}` {bound} {a if a is not None else '(none)'} -> {b if b is not None else '(none)'}"
                yield Change("changed", what, _narrower(bound, a, b))
        if "$ref" not in was.get("schema", {}):  # a referenced enum is diffed once, as its schema
            yield from _diff_enum(
                f"`{name}` parameter `{key[1]}`", was.get("schema", {}), now.get("schema", {})
            )


def _diff_schema(
    old: dict[str, Any], new: dict[str, Any], name: str, before: Any, after: Any, sent: bool
) -> Iterator[Change]:
    before, after = _resolve(old, before), _resolve(new, after)
    yield from _diff_enum(f"`{name}`", before, after)
    old_fields, old_required = _fields(old, before)
    new_fields, new_required = _fields(new, after)
    for field in sorted(new_fields.keys() - old_fields.keys()):
        required = field in new_required
        what = f"`{name}.{field}` ({'required' if required else 'optional'} field)"
        yield Change("added", what, required and sent)
    for field in sorted(old_fields.keys() - new_fields.keys()):
        yield Change("removed", f"`{name}.{field}` (field)", True)
    for field in sorted(old_fields.keys() & new_fields.keys()):
        if (field in old_required) != (field in new_required):
            became = "required" if field in new_required else "optional"
            # Callers send request fields (a new requirement breaks them) and read answers (a
            # field that may now be absent breaks them).
            yield Change("changed", f"`{name}.{field}` became {became}", (became == "required") == sent)
        if "$ref" not in old_fields[field]:  # a referenced enum is diffed once, as its schema
            yield from _diff_enum(f"`{name}.{field}`", old_fields[field], new_fields[field])


def _diff_enum(where: str, before: Any, after: Any) -> Iterator[Change]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return
    old_values, new_values = before.get("enum"), after.get("enum")
    if old_values is None or new_values is None:
        return
    for value in [v for v in new_values if v not in old_values]:
        yield Change("added", f"{where}: enum value `{value}`", False)
    for value in [v for v in old_values if v not in new_values]:
        yield Change("removed", f"{where}: enum value `{value}`", True)


def render_changelog(old: dict[str, Any], new: dict[str, Any], changes: list[Change], date: str) -> str:
    """A Keep a Changelog section for the new API version."""
    old_version, new_version = (
        str(old.get("info", {}).get("version")),
        str(new.get("info", {}).get("version")),
    )
    lines = [
        f"## [API {new_version}] - {date}",
        "",
        f"The spec moved from API {old_version} to {new_version}.",
    ]
    if not changes:
        lines += ["", "No change a caller of the client can notice."]
    for kind, heading in (("added", "Added"), ("changed", "Changed"), ("removed", "Removed")):
        section = [c.line() for c in changes if c.kind == kind]
        if section:
            lines += ["", f"### {heading}", "", *section]
    breaking = sum(1 for c in changes if c.breaking)
    lines += ["", f"{breaking} breaking change{'s' if breaking != 1 else ''} for callers.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    old, new = load_spec(args.old), load_spec(args.new)
    changes = diff_specs(old, new)
    print(render_changelog(old, new, changes, "unreleased"))
    return 1 if any(c.breaking for c in changes) else 0


if __name__ == "__main__":
    sys.exit(main())
