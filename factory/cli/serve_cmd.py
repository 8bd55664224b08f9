"""``factory serve``: the API and web pages."""

from __future__ import annotations

import typer

from factory.cli.common import context, one_line_errors
from factory.db.migrate import upgrade


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @one_line_errors
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8000, "--port"),
    ) -> None:
        """Run the HTTP API (OpenAPI at /docs) on the configured database."""
        import uvicorn

        ctx = context(require_schema=False)
        if ctx.settings.is_sqlite:
            upgrade(ctx.settings.database_url)  # embedded default: always ready to run
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="info")
