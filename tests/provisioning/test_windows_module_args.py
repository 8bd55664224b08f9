"""Every ansible.windows task's arguments against the documentation of the collection the project
pins (the one installed in the venv with the ansible bundle): option names and aliases, and the
literal values of options with choices. A Windows module that parses its arguments the legacy
way (win_copy) ignores an unknown option silently, and ansible-lint cannot read the argument
spec of a PowerShell module, so nothing else would catch a misspelt or Linux-only option."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import ansible_collections.ansible.windows as windows_collection
import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
MODULES = Path(next(iter(windows_collection.__path__))) / "plugins" / "modules"
TASK_KEYWORDS = {
    "name", "when", "loop", "loop_control", "register", "vars", "no_log", "check_mode", "notify",
    "changed_when", "failed_when", "become", "become_method", "become_flags", "become_user", "tags",
}  # fmt: skip


def _documented_options(module: str) -> dict[str, dict[str, Any]]:
    """option (and each alias) -> its documentation, from the module's DOCUMENTATION block."""
    tree = ast.parse((MODULES / f"{module}.py").read_text())
    [text] = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["DOCUMENTATION"]
        and isinstance(node.value, ast.Constant)
    ]  # fmt: skip
    doc = yaml.safe_load(text)
    options: dict[str, dict[str, Any]] = {}
    for name, spec in (doc.get("options") or {}).items():
        for key in [name, *spec.get("aliases", [])]:
            options[key] = spec
    return options


def _windows_tasks() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(PLAYBOOKS.glob("roles/*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            for key, args in task.items():
                if key.startswith("ansible.windows.") and key not in TASK_KEYWORDS:
                    found.append((f"{path.relative_to(PLAYBOOKS)}: {task['name']}", key.split(".")[-1], args))
    return found


TASKS = _windows_tasks()


def test_the_windows_branch_has_tasks_to_check() -> None:
    modules = {module for _, module, _ in TASKS}
    assert {"win_package", "win_regedit", "win_powershell", "win_copy", "win_acl"} <= modules


@pytest.mark.parametrize(("where", "module", "args"), TASKS, ids=[t[0] for t in TASKS])
def test_windows_task_arguments_are_documented_options(where: str, module: str, args: dict[str, Any]) -> None:
    options = _documented_options(module)
    unknown = sorted(set(args) - set(options))
    assert not unknown, f"{where}: {module} has no option {unknown}"
    for name, value in args.items():
        choices = options[name].get("choices")
        literal = isinstance(value, str) and "{{" not in value
        if choices and literal:
            assert value in choices, f"{where}: {module} {name}={value!r} is not one of {choices}"
