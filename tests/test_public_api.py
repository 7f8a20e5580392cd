"""The public API is declared (``__all__`` in every public module), documented (docstrings), and
exactly what ``docs/api.md`` lists."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import aiofutu

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
#: At least these; every other module without a ``_`` in its dotted name is public too.
REQUIRED_MODULES = (
    "aiofutu",
    "aiofutu.errors",
    "aiofutu.enums",
    "aiofutu.models",
    "aiofutu.frames",
    "aiofutu.client",
    "aiofutu.streams",
    "aiofutu.state",
    "aiofutu.codes",
    "aiofutu.sim",
    "aiofutu.testing",
    "aiofutu.bridge",
    "aiofutu.bus",
)
PUBLIC_MODULES = tuple(
    sorted(
        {"aiofutu"}
        | {
            m.name
            for m in pkgutil.walk_packages(aiofutu.__path__, "aiofutu.")
            if not any(part.startswith("_") for part in m.name.split("."))
        }
    )
)

#: Public members allowed to lack a docstring (none: every public member is documented).
KNOWN_UNDOCUMENTED: frozenset[str] = frozenset()


def _own_doc(obj: Any) -> str | None:
    """The object's own docstring (a class does not inherit its base's here)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
    else:
        doc = getattr(getattr(obj, "__wrapped__", obj), "__doc__", None)
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def _needs_doc(obj: Any) -> bool:
    """Classes, functions and other callables (e.g. pytest fixtures) need a docstring."""
    return inspect.isclass(obj) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__")


def _doc_sections() -> dict[str, list[tuple[str, str, str]]]:
    """``## `module``` sections of docs/api.md -> their table rows (name, kind, summary)."""
    sections: dict[str, list[tuple[str, str, str]]] = {}
    current: list[tuple[str, str, str]] | None = None
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        if heading := re.fullmatch(r"## `([\w.]+)`", line):
            current = sections.setdefault(heading[1], [])
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := re.match(r"\| `(\w+)` \| ([^|]+) \| (.*) \|$", line)):
            current.append((row[1], row[2].strip(), row[3]))
    return sections


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_declares_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert _own_doc(module), f"{module_name} has no module docstring"
    names = module.__dict__.get("__all__")
    assert isinstance(names, tuple), f"{module_name}.__all__ must be a tuple, got {names!r}"
    assert all(isinstance(n, str) for n in names)
    assert len(set(names)) == len(names), f"duplicates in {module_name}.__all__"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module_name}.__all__ names missing attributes: {missing}"
    undocumented = [
        n for n in names if _needs_doc(getattr(module, n)) and not _own_doc(getattr(module, n))
    ]
    assert not undocumented, f"{module_name}: public names without a docstring: {undocumented}"


def test_top_level_names_come_from_public_modules() -> None:
    """Every class and function re-exported by ``aiofutu`` is declared by the public module
    that defines it (nothing leaks from a private ``_module``)."""
    wrong = []
    for name in aiofutu.__all__:
        obj = getattr(aiofutu, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        home = importlib.import_module(obj.__module__)
        if obj.__module__ not in PUBLIC_MODULES or name not in getattr(home, "__all__", ()):
            wrong.append(f"{name} (from {obj.__module__})")
    assert not wrong, wrong


def test_top_level_api_is_exactly_what_the_docs_list() -> None:
    documented = [name for name, _, _ in _doc_sections()["aiofutu"]]
    assert len(documented) == len(set(documented)), "a name is listed twice in docs/api.md"
    undocumented = sorted(set(aiofutu.__all__) - set(documented))
    stale = sorted(set(documented) - set(aiofutu.__all__))
    assert not undocumented, f"in aiofutu.__all__ but not in docs/api.md: {undocumented}"
    assert not stale, f"in docs/api.md but not in aiofutu.__all__: {stale}"


def test_required_modules_are_public() -> None:
    assert set(REQUIRED_MODULES) <= set(PUBLIC_MODULES)


@pytest.mark.parametrize(
    "module_name",
    ["aiofutu.sim", "aiofutu.testing", "aiofutu.record", "aiofutu.bridge", "aiofutu.bus"],
)
def test_submodule_api_is_exactly_what_the_docs_list(module_name: str) -> None:
    sections = _doc_sections()
    assert module_name in sections, f"docs/api.md has no section for {module_name}"
    documented = [name for name, _, _ in sections[module_name]]
    declared = importlib.import_module(module_name).__all__
    assert len(documented) == len(set(documented)), f"a {module_name} name is listed twice"
    undocumented = sorted(set(declared) - set(documented))
    stale = sorted(set(documented) - set(declared))
    assert not undocumented, f"in {module_name}.__all__ but not in docs/api.md: {undocumented}"
    assert not stale, f"in docs/api.md but not in {module_name}.__all__: {stale}"


def _has_member(cls: type, name: str) -> bool:
    if hasattr(cls, name):
        return True
    # an instance attribute set in __init__ (or another method) of the class or a base
    for klass in cls.__mro__[:-1]:
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if re.search(rf"\bself\.{name}\b\s*(:[^=]+)?=", source):
            return True
    return False


def test_documented_members_exist() -> None:
    """The methods and attributes docs/api.md names for a class exist: in a class's row, a bare
    identifier (``burst()``, ``state``) is a member of that class."""
    stale = []
    for module_name, rows in _doc_sections().items():
        module = importlib.import_module(module_name)
        for name, kind, summary in rows:
            if kind != "class":
                continue
            cls = getattr(module, name)
            for member in re.findall(r"`(\w+)(?:\(\))?`", summary):
                if not _has_member(cls, member):
                    stale.append(f"{module_name}.{name}.{member}")
    assert not stale, f"docs/api.md names members that do not exist: {stale}"


def _undocumented_members() -> set[str]:
    """Public methods and properties, defined by the public classes of every public module, that
    have no docstring of their own (as ``Class.member``)."""
    found = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            cls = getattr(module, name)
            if not inspect.isclass(cls):
                continue
            for attr, value in vars(cls).items():
                if attr.startswith("_"):
                    continue
                func = value.fget if isinstance(value, property) else value
                if isinstance(func, (classmethod, staticmethod)):
                    func = func.__func__
                if inspect.isfunction(func) and not _own_doc(func):
                    found.add(f"{cls.__qualname__}.{attr}")
    return found


def test_public_members_have_docstrings() -> None:
    new = sorted(_undocumented_members() - KNOWN_UNDOCUMENTED)
    assert not new, f"public members without a docstring: {new}"


def test_member_docstring_gaps_are_closed() -> None:
    assert not _undocumented_members()
