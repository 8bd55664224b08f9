"""Every module a benchmark imports can be found, nested imports included: a benchmark's
sub-command that imports a helper only when it runs (line.py's soak) broke unseen when the test
helpers moved, because nothing runs benchmarks in CI (their timings are not tests)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_every_module_a_benchmark_imports_is_found(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The paths the benchmarks put first (their own directory, the project, tests/ for harness/).
    for extra in (ROOT / "tests", ROOT, ROOT / "benchmarks"):
        monkeypatch.syspath_prepend(str(extra))
    missing = sorted(name for name in _imported_modules(path) if importlib.util.find_spec(name) is None)
    assert not missing, f"{path.name} imports modules that do not exist: {missing}"


def test_the_check_finds_a_module_that_is_gone(tmp_path: Path) -> None:
    planted = tmp_path / "bench.py"
    planted.write_text("def soak():\n    from line_support import kill9\n")
    assert "line_support" in _imported_modules(planted)
    assert importlib.util.find_spec("line_support") is None
    assert sys.modules.get("line_support") is None
