"""``factory backup`` and ``factory restore``: a copy of the site that is checked before it is trusted."""

from __future__ import annotations

from pathlib import Path

import typer

from factory.cli.common import console, context, one_line_errors
from factory.kernel.backup import make_backup, new_backup_dir, restore_backup


def register(app: typer.Typer) -> None:
    @app.command("backup")
    @one_line_errors
    def backup_cmd(
        out: Path | None = typer.Option(
            None, "--out", help="A new or empty folder (default: a new FACTORY_HOME/backups/SITE-TIMESTAMP)."
        ),
    ) -> None:
        """Back up the database, the site's public key and a signed ledger head.

        Safe while the service runs: the copy is one consistent snapshot.
        """
        ctx = context()
        report = make_backup(ctx.settings, out or new_backup_dir(ctx.settings))
        head = f"head entry {report.entries} {report.head_hash}" if report.head_hash else "empty ledger"
        _say(
            f"backup of the {report.database} database at {report.path}: {head}, signed by key {report.key_fingerprint}"
        )

    @app.command("restore")
    @one_line_errors
    def restore_cmd(
        backup: Path = typer.Argument(..., help="A folder written by 'factory backup'."),
        force: bool = typer.Option(False, "--force", help="Replace a database that already holds records."),
    ) -> None:
        """Restore a backup after checking its digests, ledger and certificates.

        A backup that fails a check is refused with the reason, and nothing is changed.
        """
        ctx = context(require_schema=False)
        report = restore_backup(ctx.settings, backup, force=force)
        head = f"{report.entries} entries, head {report.head_hash}" if report.head_hash else "an empty ledger"
        _say(f"restored into the {report.database} database: ledger verifies ({head}), "
             f"{report.certificates} certificate(s) verify against key {report.key_fingerprint}")  # fmt: skip


def _say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)  # one line at any width: digests are copied from it
