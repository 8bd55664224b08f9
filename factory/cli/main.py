"""Entry point of the ``factory`` console script."""

from __future__ import annotations

import typer

from factory.cli import (
    audit_cmd,
    cert_cmd,
    db_cmd,
    device_cmd,
    image_cmd,
    keys_cmd,
    ledger_cmd,
    line_cmd,
    serve_cmd,
    users_cmd,
    wipe_cmd,
)
from factory.cli.oneline import OneLineGroup

app = typer.Typer(
    name="factory",
    help="Device Factory: sanitise, provision and track police devices with a verifiable chain of custody.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=OneLineGroup,  # every failure ends in one line and a non-zero exit
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(users_cmd.app, name="users")
app.add_typer(device_cmd.app, name="device")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(line_cmd.app, name="line")
app.add_typer(cert_cmd.app, name="cert")
app.add_typer(image_cmd.app, name="image")
app.add_typer(audit_cmd.app, name="audit")
wipe_cmd.register(app)
serve_cmd.register(app)

if __name__ == "__main__":
    app()
