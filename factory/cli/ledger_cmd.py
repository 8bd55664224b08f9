"""``factory ledger``: verify the custody chain and sign its head."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from factory.cli.common import JsonFlag, console, context, fail, one_line_errors, print_json_result
from factory.kernel.ledger.anchor import check_anchor, parse_anchor, sign_head
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key

app = typer.Typer(help="The custody ledger.", no_args_is_help=True)


@app.command("verify")
@one_line_errors
def verify_cmd(
    as_json: JsonFlag = False,
    anchors: list[Path] = typer.Option(
        [], "--anchor", help="A signed head from 'factory ledger anchor' that must still be in the chain (repeatable)."
    ),
) -> None:
    """Recompute the whole hash chain; exit 1 naming the first broken entry or a head that was cut off."""
    ctx = context()
    # Read and check the anchor files first: a bad file is the caller's error, not a broken ledger.
    parsed = [(path, parse_anchor(path.read_bytes())) for path in anchors]
    public_key = ctx.site_keys.public_key() if parsed else None
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
    if report.ok and public_key is not None:
        for path, anchor in parsed:
            problem = check_anchor(ctx.engine, anchor, public_key)
            if problem is not None:
                report = report.failed_anchor(f"{path}: {problem}", anchor.seq)
                break
    if as_json:
        print_json_result({**report.as_dict(), "anchors_checked": len(parsed) if report.ok else None}, report.ok)
        return
    if not report.ok:
        fail(f"ledger broken: {report.reason}")
    anchored = f"; {len(parsed)} signed head(s) still in the chain" if parsed else ""
    console.print(
        f"ledger ok: {report.entries} entries, head {report.head_hash}{anchored}", markup=False, soft_wrap=True
    )


@app.command("anchor")
@one_line_errors
def anchor_cmd(
    out: Path | None = typer.Option(None, "--out", help="Write the signed head to this file (refuses to overwrite)."),
) -> None:
    """Sign the current head with the site key, to keep outside the database (detects a cut-off tail)."""
    ctx = context()
    anchor = sign_head(ctx.engine, load_private_key(ctx.settings), ctx.settings.site_name)
    if out is None:
        console.out(anchor.dumps().decode(), end="")
        return
    with out.open("xb") as f:
        f.write(anchor.dumps())
    console.print(f"signed head: entry {anchor.seq} {anchor.entry_hash} -> {out}", markup=False, soft_wrap=True)
