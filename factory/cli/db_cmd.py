"""``factory db``: schema migrations."""

from __future__ import annotations

import typer

from factory.cli.common import console, context, one_line_errors
from factory.kernel.db.migrate import current_revision, upgrade

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
@one_line_errors
def upgrade_cmd() -> None:
    """Create or upgrade the database schema to the latest revision."""
    ctx = context(require_schema=False)
    upgrade(ctx.settings.database_url)
    console.print(f"database at revision {current_revision(ctx.engine)}")
