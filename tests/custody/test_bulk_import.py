"""Bulk CSV import of officers (with AT needs) and vehicles: a dry run writes nothing and reports
every row; a refused row keeps the whole import out; a clean import registers every row."""

from __future__ import annotations

import pytest
from sqlmodel import select

from factory.custody.models import Officer, Vehicle
from factory.custody.service import import_csv
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput

OFFICERS = (
    "staff_number,name,team,at_needs\n"
    "PC4001,Alice Jones,Response A,screen reader; magnifier x2\n"
    "PC4002,,Response A,\n"  # no name
    "PC4003,Bob Smith,Response B,telepathy\n"  # an unknown need
    "PC4004,Carol White,Response B,\n"
)


def _count(ctx, model) -> int:
    with session_scope(ctx.engine) as s:
        return len(s.exec(select(model)).all())


def _run(ctx, kind: str, text: str, dry_run: bool):
    with session_scope(ctx.engine) as s:
        return import_csv(s, kind=kind, text=text, dry_run=dry_run, actor="tech.one")


def test_dry_run_reports_every_row_and_writes_nothing(ctx) -> None:
    report = _run(ctx, "officers", OFFICERS, dry_run=True)
    assert [(r.line, r.key, r.accepted) for r in report.rows] == [
        (2, "PC4001", True), (3, "PC4002", False), (4, "PC4003", False), (5, "PC4004", True)
    ]  # fmt: skip
    assert "name must not be empty" in report.rows[1].reason and "telepathy" in report.rows[2].reason
    assert not report.kept and _count(ctx, Officer) == 0
    report = _run(ctx, "officers", OFFICERS, dry_run=False)  # a refused row keeps the lot out
    assert not report.kept and report.refused == 2 and _count(ctx, Officer) == 0


def test_a_clean_import_registers_every_row_once(ctx) -> None:
    good = "\n".join(line for line in OFFICERS.splitlines() if "PC4002" not in line and "PC4003" not in line)
    report = _run(ctx, "officers", good + "\n", dry_run=False)
    assert report.kept and report.refused == 0 and _count(ctx, Officer) == 2
    with session_scope(ctx.engine) as s:
        alice = s.exec(select(Officer).where(Officer.staff_number == "PC4001")).one()
        assert "magnifier" in alice.at_profile and alice.at_needs
    again = _run(ctx, "officers", good + "\n", dry_run=False)
    assert not again.kept and all("already registered" in r.reason for r in again.rows)
    vehicles = "fleet_number,registration,description\nFL-9,AB12 CDE,Response car\nFL-10,,\n"
    assert _run(ctx, "vehicles", vehicles, dry_run=False).kept and _count(ctx, Vehicle) == 2


def test_malformed_files_are_refused_whole(ctx) -> None:
    with pytest.raises(InvalidInput, match="needs a header"), session_scope(ctx.engine) as s:
        import_csv(s, kind="officers", text="number,who\n1,2\n", dry_run=True, actor="tech.one")
    with pytest.raises(InvalidInput, match="not one of"), session_scope(ctx.engine) as s:
        import_csv(s, kind="radios", text="x\n", dry_run=True, actor="tech.one")
