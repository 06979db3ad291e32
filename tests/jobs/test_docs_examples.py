"""The examples in docs/jobs.md import the library names they use."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import backburner
import backburner.jobs
import backburner.storage

PAGE = Path(__file__).parents[2] / "docs" / "jobs.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
LIBRARY_NAMES = {
    name
    for module in (backburner, backburner.jobs, backburner.storage)
    for name in getattr(module, "__all__", ())
}


def _blocks() -> list[ast.Module]:
    text = PAGE.read_text(encoding="utf-8")
    # Top-level ``await`` is allowed: the examples run in an async app.
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST
    return [
        compile(block, str(PAGE), "exec", flags=flags)
        for block in _BLOCK.findall(text)
    ]


def _imports(tree: ast.Module) -> dict[str, str]:
    """Each name a block imports from backburner, with its module."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
    return found


def _used(tree: ast.Module) -> set[str]:
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


BLOCKS = _blocks()
PAGE_IMPORTS = _imports(BLOCKS[0])


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_imports_the_library_names_it_uses(index: int) -> None:
    tree = BLOCKS[index]
    imported = PAGE_IMPORTS | _imports(tree)

    missing = (_used(tree) & LIBRARY_NAMES) - set(imported)

    assert not missing, f"block {index} uses {missing} without importing"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_library_import_in_an_example_exists(index: int) -> None:
    for name, module in _imports(BLOCKS[index]).items():
        if module.split(".")[0] == "backburner":
            assert hasattr(importlib.import_module(module), name), (
                f"{module} has no {name}"
            )
