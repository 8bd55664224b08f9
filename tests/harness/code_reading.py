"""Reading the project's code as syntax trees, for the house rules (tests/test_architecture.py)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("factory", "api", "imaging", "hardware_drivers")
AREAS = ("intake", "identity", "sanitisation", "custody", "line", "audit", "provisioning", "tablets")
PUBLIC_FACES = ("service", "views", "errors", "models")
MIGRATIONS = ROOT / "factory" / "kernel" / "db" / "migrations"


def _is_migration(path: Path) -> bool:
    return MIGRATIONS in path.parents


def source_files(*packages: str) -> list[Path]:
    files = []
    for package in packages or SOURCE_PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if not _is_migration(f)]


@functools.cache
def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, absolute, with ``from pkg import mod`` seen as ``pkg.mod``."""
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def area_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "factory" and parts[1] in AREAS else None


def calls(path: Path) -> Iterator[ast.Call]:
    return (n for n in ast.walk(tree_of(path)) if isinstance(n, ast.Call))


def call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""
