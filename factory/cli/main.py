"""Entry point of the ``factory`` console script.

Commands are imported only when they run: a command group's module (and what it imports: the API
server, PDF rendering, Ansible, SNMP, the erase engine) loads when that group is invoked, so
``factory --help`` and ``factory device show`` do not pay for ``factory serve`` or ``factory wipe``.
The table below is the whole command list; its help lines are shown by ``factory --help`` without
importing anything.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand

from factory.cli.oneline import OneLineGroup


class _Lazy(NamedTuple):
    module: str  # factory.cli.<module>: an ``app`` (a group) or a ``register(app)`` (top-level commands)
    help: str
    group: bool = True


COMMANDS: dict[str, _Lazy] = {
    "db": _Lazy("db_cmd", "Database schema management."),
    "keys": _Lazy("keys_cmd", "The site's certificate signing key."),
    "users": _Lazy("users_cmd", "Users, API tokens, browser sessions and sign-in lockouts."),
    "device": _Lazy("device_cmd", "Devices in custody."),
    "ledger": _Lazy("ledger_cmd", "The custody ledger."),
    "line": _Lazy("line_cmd", "The bench line: agents, slots and jobs."),
    "cert": _Lazy("cert_cmd", "Sanitisation certificates."),
    "image": _Lazy("image_cmd", "Golden images."),
    "officers": _Lazy("officers_cmd", "Officers: assistive-technology needs."),
    "import": _Lazy("import_cmd", "Import officers, vehicles or in-field devices from CSV (all rows or none).", False),
    "vehicle": _Lazy("vehicle_cmd", "In-vehicle tablets: which vehicle a new tablet is built for."),
    "audit": _Lazy("audit_cmd", "Audit: certificates, device histories, exception reports, evidence bundles."),
    "wipe": _Lazy("wipe_cmd", "Erase TARGET by the strongest method it supports, verify, and certify it.", False),
    "serve": _Lazy("serve_cmd", "Run the HTTP API (OpenAPI at /docs) and web pages on the configured database.", False),
    "backup": _Lazy("backup_cmd", "Back up the database, the site's public key and a signed ledger head.", False),
    "restore": _Lazy("backup_cmd", "Restore a backup after checking its digests, ledger and certificates.", False),
}


class LazyGroup(OneLineGroup):
    """A Typer group whose subcommands are imported on first use."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the help page needs only the name and the line above
            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        return load_command(cmd_name, entry)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load_command(name: str, entry: _Lazy) -> Any:
    """Import the command's module and build its click command (named as the table names it)."""
    module = importlib.import_module(f"factory.cli.{entry.module}")
    if entry.group:
        command = typer.main.get_group(module.app)
        command.name = name
        return command
    holder = typer.Typer()
    module.register(holder)
    return typer.main.get_group(holder).commands[name]


app = typer.Typer(
    name="factory",
    cls=LazyGroup,
    help="Device Factory: sanitise, provision and track police devices with a verifiable chain of custody.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Device Factory: sanitise, provision and track police devices with a verifiable chain of custody."""


if __name__ == "__main__":
    app()
