"""A griffe extension for the API reference (mkdocs.yml loads it): the package's docstrings are
written for reST, the reference renders Markdown.

- ``:class:`X```, ``:meth:`m```, ``:func:``, ``:data:``, ``:attr:``, ``:exc:`` become
  cross-references (``[`X`][perfectgym_appointments_client.X]``) when they name a public object:
  a name of ``__all__``, ``Name.member`` of one, or a member of the class whose docstring it is (or
  of ``AppointmentsClient``, the methods the models' docstrings name). A role naming anything
  else (a private helper) stays inline code: it has no page to link to.
- An attrs class (``@attrs.frozen``, ``@attrs.define``, the generated models') gets the
  ``__init__`` attrs makes, so its signature is shown: griffe reads source and knows only
  dataclasses.
- An enum's members are labelled class attributes only, an attrs field instance attribute only.
- A default or value that names a constant with a literal value (``DEFAULT_MAX_RETRIES``, from the
  private ``_constants``) shows that value (``2``): the name says nothing on a page without it.
- A private base class (``_RetryAfterMixin``) is left off the class's bases, and the docstrings of
  its members move to the class's own member of that name, so no private name is shown.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PACKAGE = "perfectgym_appointments_client"
# The class whose methods a bare :meth:`name` means when the docstring's own class has none.
CLIENT = "AppointmentsClient"
# Numbers (16 * 1024 * 1024 too), strings, True, False, None: what reads as a value.
LITERAL = re.compile(r"[-+]?[\d_.]+(?:\s*[*+-]\s*[\d_.]+)*|'[^']*'|\"[^\"]*\"|True|False|None")
ROLE = re.compile(r":(?:py:)?(class|meth|func|data|attr|exc|obj):`(~?)([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Turn reST roles into Markdown cross-references, and hide private base classes."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != PACKAGE:
            return
        public = _public_objects(pkg)
        public_name = {obj.path: name for name, obj in public.items()}
        for obj in _walk(pkg):
            if isinstance(obj, griffe.Class):
                _drop_private_bases(obj)
                _attrs_init(obj)
                _label_enum_members(obj)
            if isinstance(obj, griffe.Function):
                for parameter in obj.parameters:
                    parameter.default = _literal(parameter.default, obj)
            if isinstance(obj, griffe.Attribute):
                obj.value = _literal(obj.value, obj)
            if obj.docstring is not None:
                obj.docstring.value = _link_roles(obj.docstring.value, _owner(obj, public_name), public)


def _link_roles(text: str, owner: str | None, public: dict[str, griffe.Object]) -> str:
    return ROLE.sub(lambda match: _reference(match, owner, public), text)


def _public_objects(pkg: griffe.Module) -> dict[str, griffe.Object]:
    """Each name of ``__all__`` and the object it stands for (aliases followed)."""
    objects = {}
    for name in pkg.exports or ():
        member = pkg.members.get(str(name))
        if member is None:
            continue
        try:
            target = member.final_target if isinstance(member, griffe.Alias) else member
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        objects[str(name)] = target
    return objects


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            found.extend(_walk(member))
    return found


def _owner(obj: griffe.Object, public_name: dict[str, str]) -> str | None:
    """The public name of the class this docstring belongs to (the class's, or its member's)."""
    node: griffe.Object | None = obj
    while node is not None and not isinstance(node, griffe.Class):
        node = node.parent
    return public_name.get(node.path) if node is not None else None


def _has_member(obj: griffe.Object, name: str) -> bool:
    if name.startswith("_"):
        return False
    try:
        return name in obj.all_members
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return name in obj.members


def _reference(match: re.Match[str], owner: str | None, public: dict[str, griffe.Object]) -> str:
    role, short, target = match.groups()
    label = target.rsplit(".", 1)[-1] if short else target
    if role in ("meth", "func"):
        label += "()"
    identifier = None
    head, _, member = target.partition(".")
    if head in public and (not member or _has_member(public[head], member)):
        identifier = f"{PACKAGE}.{target}"
    elif not member:
        for scope in (owner, CLIENT):
            if scope is not None and _has_member(public[scope], target):
                identifier = f"{PACKAGE}.{scope}.{target}"
                break
    if identifier is None:
        return f"`{label}`"
    return f"[`{label}`][{identifier}]"


ATTRS_DECORATORS = frozenset({"attrs.frozen", "attrs.define", "attrs.mutable", "attr.frozen", "attr.define"})
ATTRS_FIELDS = frozenset({"attrs.field", "attr.field", "attr.ib"})


def _call_arguments(expr: object) -> dict[str, str | griffe.Expr]:
    if not isinstance(expr, griffe.ExprCall):
        return {}
    return {arg.name: arg.value for arg in expr.arguments if isinstance(arg, griffe.ExprKeyword)}


def _attrs_init(cls: griffe.Class) -> None:
    """Give an attrs class the ``__init__`` attrs generates (fields in order, kw_only honoured)."""
    decorator = next(
        (d.value for d in cls.decorators if getattr(d.value, "canonical_path", None) in ATTRS_DECORATORS),
        None,
    )
    if decorator is None or "__init__" in cls.members:
        return
    options = _call_arguments(decorator)
    if str(options.get("init")) == "False":
        return
    kw_only = str(options.get("kw_only")) == "True"
    parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    for member in cls.members.values():
        if not isinstance(member, griffe.Attribute) or member.annotation is None:
            continue
        if "instance-attribute" not in member.labels:  # ClassVar
            continue
        # An attrs field is set on each instance; its class-level value is only attrs' input.
        member.labels.discard("class-attribute")
        value = member.value
        field = _call_arguments(value) if getattr(value, "canonical_path", None) in ATTRS_FIELDS else None
        if field is not None and str(field.get("init")) == "False":
            continue
        if field is None:
            default = value
        elif "factory" in field:
            default = f"{field['factory']}()"
        else:
            default = field.get("default")
        kind = (
            griffe.ParameterKind.keyword_only
            if kw_only or (field is not None and str(field.get("kw_only")) == "True")
            else griffe.ParameterKind.positional_or_keyword
        )
        name = str(field["alias"]).strip("'\"") if field and "alias" in field else member.name.lstrip("_")
        default = _literal(default, cls)
        parameters.append(griffe.Parameter(name, annotation=member.annotation, kind=kind, default=default))
        # The field's heading shows its default, not the attrs.field(...) call that declares it.
        member.value = default
    init = griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=griffe.Parameters(*parameters),
        returns="None",
    )
    cls.set_member("__init__", init)


def _label_enum_members(cls: griffe.Class) -> None:
    """An enum's members are its values, labelled once (griffe says class- and instance-attribute)."""
    if not any(str(base).rsplit(".", 1)[-1].endswith("Enum") for base in cls.bases):
        return
    for member in cls.members.values():
        if isinstance(member, griffe.Attribute) and member.annotation is None:
            member.labels.discard("instance-attribute")


def _literal(value: str | griffe.Expr | None, scope: griffe.Object) -> str | griffe.Expr | None:
    """The literal a constant's name stands for (followed through imports), else ``value``."""
    if not isinstance(value, griffe.ExprName) or not value.name.isupper():
        return value
    try:
        constant = scope.modules_collection[value.canonical_path]
        while isinstance(constant, griffe.Alias):
            constant = constant.target
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return value
    if isinstance(constant, griffe.Attribute) and constant.value is not None:
        literal = str(constant.value)
        if LITERAL.fullmatch(literal):
            return literal
    return value


def _drop_private_bases(cls: griffe.Class) -> None:
    private = [base for base in cls.bases if str(base).rsplit(".", 1)[-1].startswith("_")]
    if not private:
        return
    for base in cls.resolved_bases:
        if not base.name.startswith("_"):
            continue
        for name, member in base.members.items():
            own = cls.members.get(name)
            if isinstance(own, griffe.Object) and own.docstring is None and member.docstring is not None:
                own.docstring = griffe.Docstring(member.docstring.value, parent=own)
    cls.bases = [base for base in cls.bases if base not in private]
