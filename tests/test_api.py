"""Tests of the package surface: ``__all__`` in sync, and the pure core free of mitmproxy."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import kanta_guard

PACKAGE = Path(kanta_guard.__file__).resolve().parent
MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages([str(PACKAGE)], prefix="kanta_guard.")
)


@pytest.mark.parametrize("name", ["kanta_guard", *MODULES])
def test_all_is_in_sync(name: str) -> None:
    """Every module's __all__ names exactly its public top-level definitions."""
    module = importlib.import_module(name)
    exported = set(getattr(module, "__all__", ()))
    assert exported, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names undefined {missing}"
    tree = ast.parse(Path(module.__file__ or "").read_text("utf-8"))
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
    }
    assert defined <= exported | {"main"}, f"{name}: public but not exported {defined - exported}"


@pytest.mark.parametrize(
    "name",
    [m for m in MODULES if not m.startswith("kanta_guard.proxy")],
)
def test_core_does_not_import_mitmproxy(name: str) -> None:
    """Only kanta_guard.proxy imports mitmproxy; the rest runs without a proxy."""
    module = importlib.import_module(name)
    tree = ast.parse(Path(module.__file__ or "").read_text("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("mitmproxy") for a in node.names), name
        elif isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("mitmproxy"), name


def test_every_module_opens_with_a_docstring() -> None:
    """Each module states its purpose in its first line."""
    for name in ["kanta_guard", *MODULES]:
        module = importlib.import_module(name)
        assert module.__doc__ and module.__doc__.strip().splitlines()[0], name
