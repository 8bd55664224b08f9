"""``factory ledger``: verify the custody chain."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from factory.cli.common import console, context, fail, one_line_errors, print_json
from factory.ledger.verify import verify_ledger

app = typer.Typer(help="The custody ledger.", no_args_is_help=True)


@app.command("verify")
@one_line_errors
def verify_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Recompute the whole hash chain; exit 1 naming the first broken entry."""
    ctx = context()
    with ctx.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM custody_entry")).scalar_one()
    if as_json:
        report = verify_ledger(ctx.engine)
    else:
        with Progress(
            TextColumn("verifying ledger"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("verify", total=total)
            report = verify_ledger(ctx.engine, progress=lambda n: bar.update(task, completed=n))
    if as_json:
        print_json(report.as_dict())
        if not report.ok:
            raise typer.Exit(1)
        return
    if not report.ok:
        fail(f"ledger broken: {report.reason}")
    console.print(f"ledger ok: {report.entries} entries, head {report.head_hash}", markup=False)
