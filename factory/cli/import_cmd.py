"""``factory import``: officers, vehicles or devices already in the field, from a CSV, all or nothing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from factory.cli.common import ActorOpt, JsonFlag, console, fail, one_line_errors, print_json, read_csv, unit_of_work
from factory.custody.service import MAX_IMPORT_BYTES, ImportKind, ImportReport, import_csv

KINDS = ", ".join(k.value for k in ImportKind)


def register(app: typer.Typer) -> None:
    @app.command("import")
    @one_line_errors
    def import_cmd(
        kind: str = typer.Argument(..., help=f"What the file holds: {KINDS}."),
        file: Path = typer.Argument(..., help="The CSV file (UTF-8, a header row naming the columns)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, import nothing."),
        actor: ActorOpt = "cli",
        as_json: JsonFlag = False,
    ) -> None:
        """Import officers, vehicles or in-field devices from CSV (all rows or none).

        Columns: officers staff_number, name, team, at_needs; vehicles fleet_number, registration,
        description; devices serial, asset_tag, kind, make, model, staff_number, media (each device
        is recorded as already with that officer, so the first wave exchanges it one for one;
        media are TYPE:SERIAL[:CAPACITY[:MODEL]] separated by ';'). Every row is checked and
        reported; nothing is imported unless all pass.
        """
        text = read_csv(file, MAX_IMPORT_BYTES)
        with unit_of_work() as (_ctx, session):
            report = import_csv(session, kind=kind, text=text, dry_run=dry_run, actor=actor)
        _show(report, as_json)


def _show(report: ImportReport, as_json: bool) -> None:
    if as_json:
        print_json({"kind": report.kind, "dry_run": report.dry_run, "kept": report.kept,
                    "rows": [asdict(r) for r in report.rows]})  # fmt: skip
    else:
        for r in report.rows:
            result = "ok" if r.accepted else f"refused: {r.reason}"
            console.print(f"line {r.line} {r.key or '-'}: {result}", markup=False)
    if report.refused:
        fail(f"{report.refused} of {len(report.rows)} row(s) refused: nothing was imported")
    if not as_json:
        done = "all rows can be imported (dry run: nothing written)" if report.dry_run else "imported"
        console.print(f"{len(report.rows)} {report.kind}: {done}", markup=False)
