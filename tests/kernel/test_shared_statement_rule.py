"""Every statement that outlives a call is made through ``kernel/db/shared_statements``: one built at
import is ``warmed``, a builder kept per argument is ``built_once``, never ``functools.cache``.

Such a statement is shared by threads, and SQLAlchemy completes a statement lazily on its first
compile; threads doing that at once ran wrong SQL (tests/kernel/test_shared_statements.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from harness.code_reading import ROOT, rel, source_files, tree_of

# SQLAlchemy's statement constructors, called by name in this code base.
BUILDERS = {"select", "update", "insert", "delete", "aliased"}
PLAIN_CACHES = {"cache", "lru_cache"}


def _builds_a_statement(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in BUILDERS for n in ast.walk(node)
    )


def _label(path: Path) -> str:
    return rel(path) if path.is_relative_to(ROOT) else path.name


def _decorator_name(decorator: ast.expr) -> str:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""


def _cached_statement_builders(path: Path) -> Iterator[str]:
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.FunctionDef) and _builds_a_statement(node):
            if any(_decorator_name(d) in PLAIN_CACHES for d in node.decorator_list):
                yield f"{_label(path)}:{node.lineno} {node.name}"


def _unwarmed_module_statements(path: Path) -> Iterator[str]:
    for node in tree_of(path).body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        value = node.value
        warmed = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "warmed"
        if not warmed and _builds_a_statement(value):
            yield f"{_label(path)}:{node.lineno}"


def test_no_statement_builder_is_cached_by_functools() -> None:
    found = [hit for path in source_files("factory", "api") for hit in _cached_statement_builders(path)]
    assert not found, f"use kernel.db.shared_statements.built_once: {found}"


def test_every_statement_built_at_import_is_warmed() -> None:
    found = [hit for path in source_files("factory", "api") for hit in _unwarmed_module_statements(path)]
    assert not found, f"wrap in kernel.db.shared_statements.warmed: {found}"


def test_the_rule_sees_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import functools\n"
        "from sqlalchemy import select\n"
        "_A = select(1)\n"
        "_B = warmed(select(2))\n"
        "@functools.cache\n"
        "def _c(x):\n"
        "    return select(x)\n"
        "@built_once\n"
        "def _d(x):\n"
        "    return select(x)\n"
    )
    assert [hit.rsplit(" ", 1)[-1] for hit in _cached_statement_builders(sample)] == ["_c"]
    assert [hit.rsplit(":", 1)[-1] for hit in _unwarmed_module_statements(sample)] == ["3"]
