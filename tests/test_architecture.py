"""Dependencies point inward: api -> factory -> (imaging, hardware_drivers); enforced here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_only_the_runner_adapter_imports_ansible_runner() -> None:
    importers = []
    for path in ROOT.glob("*/**/*.py"):
        if any(part in {".venv", "tests", "benchmarks"} for part in path.relative_to(ROOT).parts):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "ansible_runner" or n.startswith("ansible_runner.") for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert set(importers) <= {"factory/provisioning/ansible_adapter.py"}, importers
