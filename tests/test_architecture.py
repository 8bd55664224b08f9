"""The house rules, enforced by reading the code (AST), not by convention.

Dependencies point inward: api -> factory -> (imaging, hardware_drivers). Inside factory/, the
kernel (lifecycle, ledger, database) depends on no area; an area imports the kernel and only the
public face of another area (its service, views, errors or models). One writer per kind of
state: only the lifecycle's ``change_state`` assigns a device's state, only the ledger's append
builds a custody entry, only the erase-round service opens or closes an erase round, and each
custody status (allocation, consignment, disposal batch) has one writer of its own.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.code_reading import (
    AREAS,
    PUBLIC_FACES,
    ROOT,
    SOURCE_PACKAGES,
    area_of,
    call_name,
    calls,
    imported_modules,
    rel,
    source_files,
    tree_of,
)

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


# ---------------------------------------------------------------- dependency direction


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_kernel_imports_no_area() -> None:
    offenders = [
        f"{rel(path)}:{line} imports {module}"
        for path in source_files("factory/kernel")
        for line, module in imported_modules(path)
        if area_of(module)
    ]
    assert not offenders, "\n".join(offenders)


def test_areas_import_only_the_public_face_of_other_areas() -> None:
    offenders = []
    for path in source_files("factory", "api"):
        own = area_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for line, module in imported_modules(path):
            target = area_of(module)
            if target is None or target == own:
                continue
            parts = module.split(".")
            # factory.<area>, factory.<area>.<face>, a name imported from a face, or a name the
            # area's package exports (its __init__, held to its own area by the test below)
            if len(parts) == 2 or parts[2] in PUBLIC_FACES or not _is_submodule(parts[:3]):
                continue
            offenders.append(f"{rel(path)}:{line} reaches into {module}")
    assert not offenders, "\n".join(sorted(set(offenders)))


def _is_submodule(parts: list[str]) -> bool:
    where = ROOT.joinpath(*parts)
    return where.with_suffix(".py").exists() or where.is_dir()


def test_area_packages_export_only_their_own_names() -> None:
    """An area's ``__init__`` may re-export what a light caller needs (``factory wipe`` must not load
    the database layers), but only from its own modules: it is not a way round the faces rule."""
    offenders = []
    for area in AREAS:
        init = ROOT / "factory" / area / "__init__.py"
        if not init.exists():
            continue
        for line, module in imported_modules(init):
            if module.split(".")[0] in ("factory", "api") and area_of(module) != area:
                offenders.append(f"{rel(init)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_only_the_runner_adapter_imports_ansible_runner() -> None:
    importers = {
        rel(path)
        for path in source_files()
        for _line, module in imported_modules(path)
        if module == "ansible_runner" or module.startswith("ansible_runner.")
    }
    assert importers <= {"factory/provisioning/ansible_adapter.py"}, importers


# ---------------------------------------------------------------- one writer per kind of state


def _is_web_app_state(node: ast.Attribute) -> bool:
    """``app.state`` is Starlette's per-application namespace, not a lifecycle state."""
    owner = node.value
    return node.attr == "state" and (
        (isinstance(owner, ast.Name) and owner.id == "app")
        or (isinstance(owner, ast.Attribute) and owner.attr == "app")
    )


def _assigned_attributes(root: ast.AST) -> Iterator[tuple[int, str]]:
    """Attributes assigned under ``root``: ``x.attr = ...``, ``x.attr += ...``, ``setattr(x, "attr", ...)``."""
    for node in ast.walk(root):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and not _is_web_app_state(sub):
                    yield node.lineno, sub.attr
        if isinstance(node, ast.Call) and call_name(node) == "setattr" and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                yield node.lineno, name.value


def others_than(*allowed: str) -> list[Path]:
    """The files of factory/ and api/ other than the ones allowed to do a thing."""
    return [path for path in source_files("factory", "api") if rel(path) not in allowed]


def test_only_change_state_assigns_a_device_state() -> None:
    offenders = [
        f"{rel(path)}:{line}"
        for path in others_than("factory/kernel/lifecycle/transition.py")
        for line, attr in _assigned_attributes(tree_of(path))
        if attr == "state"
    ]
    assert not offenders, offenders


def test_device_state_is_never_written_by_an_update_statement() -> None:
    offenders = [
        f"{rel(path)}:{call.lineno}"
        for path in source_files("factory", "api")
        for call in calls(path)
        if call_name(call) == "values" and any(k.arg in {"state", "erase_round_seq"} for k in call.keywords)
    ]
    assert not offenders, offenders


def test_only_the_ledger_append_builds_custody_entries() -> None:
    offenders = []
    for path in others_than("factory/kernel/ledger/append.py"):
        for call in calls(path):
            if call_name(call) == "CustodyEntry":
                offenders.append(f"{rel(path)}:{call.lineno} builds a CustodyEntry")
            if call_name(call) == "insert" and any(
                isinstance(a, ast.Name) and a.id == "CustodyEntry" for a in call.args
            ):
                offenders.append(f"{rel(path)}:{call.lineno} inserts into CustodyEntry")
        for node in ast.walk(tree_of(path)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "insert into custody_entry" in " ".join(node.value.lower().split()):
                    offenders.append(f"{rel(path)}:{node.lineno} inserts into custody_entry in SQL")
    assert not offenders, offenders


def _event_arguments(call: ast.Call) -> Iterator[str]:
    for value in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id in {"Event", "E"}:
            yield value.attr


def _passing_events(allowed: str, events: set[str]) -> list[str]:
    """Where code other than ``allowed`` (and the lifecycle itself) passes one of ``events`` to a call."""
    return [
        f"{rel(path)}:{call.lineno} passes Event.{event}"
        for path in others_than(allowed)
        if "lifecycle" not in path.parts
        for call in calls(path)
        for event in _event_arguments(call)
        if event in events
    ]


def test_only_the_erase_round_service_opens_or_closes_an_erase_round() -> None:
    offenders = _passing_events("factory/sanitisation/service.py", {"START_SANITISE", "SANITISED"})
    assert not offenders, offenders


def test_only_the_bulk_import_records_a_device_already_in_the_field() -> None:
    """``enrol_in_field`` (none -> issued) skips the factory's hand-over: only intake's
    ``record_in_field`` passes it, only custody's in-field import calls that, only the bulk import that."""
    offenders = _passing_events("factory/intake/service.py", {"ENROL_IN_FIELD"})
    callers = {"record_in_field": "factory/custody/in_field.py", "enrol_in_field": "factory/custody/bulk_import.py"}
    offenders += [
        f"{rel(path)}:{call.lineno} calls {call_name(call)}"
        for path in source_files()
        for call in calls(path)
        if call_name(call) in callers and rel(path) != callers[call_name(call)]
    ]
    assert not offenders, offenders


def _custody_status_writers() -> dict[str, list[str]]:
    writers: dict[str, list[str]] = {}
    for path in source_files("factory", "api"):
        for node in ast.walk(tree_of(path)):
            if isinstance(node, ast.FunctionDef):
                for line, attr in _assigned_attributes(node):
                    if attr == "status":
                        writers.setdefault(f"{rel(path)}::{node.name}", []).append(str(line))
    return writers


def test_each_custody_status_has_one_writer() -> None:
    """Allocation, consignment and disposal-batch statuses change in one function of their status table."""
    custody_writers = sorted(w for w in _custody_status_writers() if w.startswith("factory/custody/"))
    assert custody_writers, "no custody status writer found"
    assert all(w.startswith("factory/custody/statuses.py::") for w in custody_writers), custody_writers
    assert len(custody_writers) <= 3, custody_writers


def test_no_class_level_session_listeners() -> None:
    offenders = []
    for path in source_files():
        for call in calls(path):
            if call_name(call) in {"listens_for", "listen"} and call.args:
                target = call.args[0]
                if isinstance(target, ast.Name) and target.id in {"Session", "SQLModelSession"}:
                    offenders.append(f"{rel(path)}:{call.lineno}")
    assert not offenders, offenders


def _reads_the_wall_clock(call: ast.Call) -> bool:
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in {"now", "utcnow"}
        and isinstance(func.value, ast.Name)
        and func.value.id == "datetime"
    )


def test_time_comes_from_the_kernel_clock() -> None:
    offenders = [
        f"{rel(path)}:{call.lineno}"
        for path in others_than("factory/kernel/clock.py")
        for call in filter(_reads_the_wall_clock, calls(path))
    ]
    assert not offenders, offenders


# ---------------------------------------------------------------- api/ is transport only

QUERY_NAMES = {"select", "exec", "query", "execute", "scalars", "scalar", "text"}


def test_api_runs_no_queries() -> None:
    offenders = []
    for path in source_files("api"):
        for line, module in imported_modules(path):
            if module.split(".")[0] in {"sqlmodel", "sqlalchemy"}:
                offenders.append(f"{rel(path)}:{line} imports {module}")
            if module.endswith(".models") or ".models." in module:
                continue
        for call in calls(path):
            if call_name(call) in QUERY_NAMES and isinstance(call.func, ast.Attribute | ast.Name):
                # ``select``/``exec`` on an ORM session, or a bare ``select(...)`` statement
                offenders.append(f"{rel(path)}:{call.lineno} calls {call_name(call)}()")
    assert not offenders, "\n".join(offenders)


def _state_words() -> set[str]:
    from factory.kernel.lifecycle.states import State

    return {s.value for s in State}


def _string_constants(path: Path) -> Iterator[tuple[int, str]]:
    tree = tree_of(path)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_api_holds_no_state_names() -> None:
    words = _state_words()
    offenders = [
        f"{rel(path)}:{line} '{value}'"
        for path in source_files("api")
        for line, value in _string_constants(path)
        if value in words
    ]
    templates = sorted((ROOT / "api" / "web" / "templates").glob("*.html"))
    for template in templates:
        for number, text in enumerate(template.read_text().splitlines(), 1):
            for word in words:
                if f"== '{word}'" in text or f'== "{word}"' in text:
                    offenders.append(f"{rel(template)}:{number} compares with '{word}'")
    assert not offenders, "\n".join(offenders)


# ---------------------------------------------------------------- size


def test_no_source_file_is_over_the_limit() -> None:
    offenders = [
        f"{rel(path)}: {n} lines"
        for path in source_files(*SOURCE_PACKAGES, "benchmarks", "tests")
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    ]
    assert not offenders, offenders


def _long_functions(path: Path) -> Iterator[str]:
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{rel(path)}::{node.name} {length} lines"


@pytest.mark.parametrize("package", [*SOURCE_PACKAGES, "benchmarks", "tests"])
def test_no_function_is_over_the_limit(package: str) -> None:
    offenders = [f for path in source_files(package) for f in _long_functions(path)]
    assert not offenders, offenders


def test_areas_have_the_same_file_set() -> None:
    missing = [
        f"factory/{area}/{face}.py"
        for area in AREAS
        for face in ("service", "views", "errors")
        if not (ROOT / "factory" / area / f"{face}.py").exists()
    ]
    assert not missing, missing


# ---------------------------------------------------------------- the detectors see what they look for


def _snippet(code: str) -> ast.Module:
    return ast.parse(code)


def test_the_detectors_find_planted_violations() -> None:
    assert "state" in {a for _, a in _assigned_attributes(_snippet("device.state = 'issued'"))}
    assert "state" in {a for _, a in _assigned_attributes(_snippet("setattr(device, 'state', 'x')"))}
    assert "state" not in {a for _, a in _assigned_attributes(_snippet("app.state.context = ctx"))}
    planted = next(n for n in ast.walk(_snippet("change_state(s, event=Event.SANITISED)")) if isinstance(n, ast.Call))
    assert list(_event_arguments(planted)) == ["SANITISED"]
    clock = next(n for n in ast.walk(_snippet("datetime.now(UTC)")) if isinstance(n, ast.Call))
    assert _reads_the_wall_clock(clock)
    assert area_of("factory.custody.consignments") == "custody" and area_of("factory.kernel.clock") is None
    assert len(source_files("factory/kernel")) > 10 and len(source_files("api")) > 10
