"""``factory officers``: officers' assistive-technology needs, imported from the force's records."""

from __future__ import annotations

from pathlib import Path

import typer

from factory.cli.common import console, one_line_errors, read_csv, unit_of_work
from factory.custody.service import import_at_needs

app = typer.Typer(help="Officers: assistive-technology needs.", no_args_is_help=True)

MAX_IMPORT_BYTES = 5 * 2**20  # a force's whole list is far smaller


@app.command("import-at-needs")
@one_line_errors
def import_at_needs_cmd(
    file: Path = typer.Argument(..., help="CSV with the columns staff_number and at_profile."),
) -> None:
    """Set officers' assistive-technology needs from a CSV (all rows or none).

    at_profile is words ("screen-reader; jaws; magnifier x3; dictation") or a JSON object; a word
    that names no known feature refuses the whole file.
    """
    text = read_csv(file, MAX_IMPORT_BYTES)
    with unit_of_work() as (_ctx, session):
        done = import_at_needs(session, text)
    for staff_number, profile in done:
        console.print(f"{staff_number}: {profile or 'no assistive technology'}", markup=False)
    console.print(f"{len(done)} officer(s) updated", markup=False)
