"""A quick CLI: a command imports only what it uses (what that costs in time is benchmarks/cli.py's business).

Each check runs in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from harness.domain import receive

from factory.cli.main import COMMANDS, load_command
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import alembic_config, head_revision

CLI_DIR = Path(__file__).resolve().parents[2] / "factory" / "cli"
# What the server, PDFs, Ansible, switches, SSH and the erase engine load; no quick command needs any of it.
HEAVY = ("fastapi", "starlette", "uvicorn", "reportlab", "ansible_runner", "pysnmp", "paramiko", "numpy",
         "imaging.engine", "imaging.deploy", "alembic")  # fmt: skip

_PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["factory", *args]
from factory.cli.main import app
code = None
try:
    app()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {h.split(".")[0] for h in heavy})
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _modules_after(*args: str, packages: tuple[str, ...] = HEAVY) -> tuple[int, set[str]]:
    """Run ``factory ARGS`` in a new interpreter; its exit code and which modules of ``packages`` it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args)), json.dumps(packages)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["loaded"])


def _heavy(loaded: set[str]) -> set[str]:
    return {m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def test_importing_the_cli_loads_no_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, factory.cli.main; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    loaded = set(done.stdout.split())
    assert "factory.cli.main" in loaded
    assert not {f"factory.cli.{entry.module}" for entry in COMMANDS.values()} & loaded
    assert not _heavy(loaded) and "sqlalchemy" not in loaded and "imaging" not in loaded


def test_help_lists_every_command_without_importing_them() -> None:
    code, loaded = _modules_after("--help")
    assert code == 0 and not _heavy(loaded)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_on_demand_with_the_help_line_the_list_shows(name: str) -> None:
    command = load_command(name, COMMANDS[name])
    assert command.name == name
    assert (command.help or "").strip().split("\n\n")[0].replace("\n", " ") == COMMANDS[name].help


def test_every_command_module_is_in_the_list() -> None:
    modules = {p.stem for p in CLI_DIR.glob("*_cmd.py")}
    assert modules == {entry.module for entry in COMMANDS.values()}


@pytest.mark.parametrize(
    "args",
    [("device", "show", "QUICK-1", "--json"), ("device", "receive", "QUICK-2", "--kind", "laptop", "--media", "sd:Q2")],
    ids=["show", "receive"],
)
def test_the_intake_desk_commands_load_none_of_the_heavy_modules(ctx: AppContext, args: tuple[str, ...]) -> None:
    receive(ctx, "QUICK-1", ("Q-M1",))
    code, loaded = _modules_after(*args)
    assert code in (0, None) and not _heavy(loaded), _heavy(loaded)


def test_the_schema_check_finds_the_head_alembic_finds() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


# What 'device show' leaves out: the ORM (it reads through the driver, factory/kernel/db/readonly.py)
# and, for --json, Rich. (pydantic is Typer's own: typer._adapters imports it for every command.)
ORM = ("sqlalchemy", "sqlmodel")


def test_device_show_reads_without_the_orm(ctx: AppContext) -> None:
    receive(ctx, "QUICK-3", ("Q-M3",))
    code, loaded = _modules_after("device", "show", "QUICK-3", "--json", packages=(*ORM, "rich"))
    assert code in (0, None) and not loaded, loaded
    code, loaded = _modules_after("device", "show", "QUICK-3", packages=ORM)
    assert code in (0, None) and not loaded, loaded
    code, loaded = _modules_after("device", "show", "QUICK-404", packages=ORM)  # a refusal too
    assert code == 1 and not loaded, loaded


def test_a_json_ledger_verify_starts_without_rich(ctx: AppContext) -> None:
    # Rich (~50 ms of a start) is imported when something prints through the console, not before.
    receive(ctx, "QUICK-4", ("Q-M4",))
    code, loaded = _modules_after("ledger", "verify", "--json", packages=("rich",))
    assert code in (0, None) and not loaded, loaded
