"""Bulk CSV import of officers (with their assistive-technology needs), vehicles, and devices already
in the field with their officers (``in_field.py``), with a dry run and a per-row report.

All or nothing: every row is checked by the real registration (in a savepoint of its own, so one
refusal does not hide the next), and the import is kept only when every row was accepted and it is
not a dry run; otherwise nothing is written and the report names each refused row with its line
and reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from factory.custody.at_needs import parse
from factory.custody.in_field import ImportSource, enrol_in_field
from factory.custody.people import register_officer, register_vehicle
from factory.custody.personalisation import set_at_needs
from factory.kernel.errors import FactoryError, InvalidInput

MAX_ROWS = 5000
MAX_BYTES = 2 * 2**20


class ImportKind(StrEnum):
    OFFICERS = "officers"
    VEHICLES = "vehicles"
    DEVICES = "devices"  # already with their officers (the first wave exchanges them one for one)


COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.OFFICERS: ("staff_number", "name", "team", "at_needs"),
    ImportKind.VEHICLES: ("fleet_number", "registration", "description"),
    ImportKind.DEVICES: ("serial", "asset_tag", "kind", "make", "model", "staff_number", "media"),
}
REQUIRED: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.OFFICERS: ("staff_number", "name"),
    ImportKind.VEHICLES: ("fleet_number",),
    ImportKind.DEVICES: ("serial", "kind", "staff_number"),
}


@dataclass(frozen=True)
class RowResult:
    line: int
    key: str  # the staff number, fleet number or device serial
    accepted: bool
    reason: str  # why it was refused ("" when accepted)


@dataclass(frozen=True)
class ImportReport:
    kind: str
    dry_run: bool
    rows: list[RowResult]
    kept: bool  # the import was written

    @property
    def refused(self) -> int:
        return sum(1 for r in self.rows if not r.accepted)


def _officer(session: Session, row: dict[str, str], _source: ImportSource) -> None:
    needs = parse(row.get("at_needs"))
    officer = register_officer(
        session, staff_number=row.get("staff_number", ""), name=row.get("name", ""), team=row.get("team", "")
    )
    set_at_needs(session, officer, needs)
    session.flush()


def _vehicle(session: Session, row: dict[str, str], _source: ImportSource) -> None:
    register_vehicle(session, fleet_number=row.get("fleet_number", ""), registration=row.get("registration", ""),
                     description=row.get("description", ""))  # fmt: skip


def _device(session: Session, row: dict[str, str], source: ImportSource) -> None:
    enrol_in_field(session, row, source)


_REGISTER: dict[ImportKind, Callable[[Session, dict[str, str], ImportSource], None]] = {
    ImportKind.OFFICERS: _officer,
    ImportKind.VEHICLES: _vehicle,
    ImportKind.DEVICES: _device,
}


def _rows(kind: ImportKind, text: str) -> list[tuple[int, dict[str, str]]]:
    if len(text.encode()) > MAX_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_BYTES // 2**20} MiB")
    reader = csv.DictReader(io.StringIO(text))
    header = {(f or "").strip() for f in reader.fieldnames or ()}
    missing = [c for c in REQUIRED[kind] if c not in header]
    if missing:
        raise InvalidInput(
            f"the {kind} file needs a header with: {', '.join(COLUMNS[kind])} (missing {', '.join(missing)})"
        )
    rows = []
    for row in reader:
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if row.get(None) or len(rows) >= MAX_ROWS:  # type: ignore[call-overload]
            raise InvalidInput(f"line {reader.line_num}: more fields than the header, or over {MAX_ROWS} rows")
        if any(clean.values()):
            rows.append((reader.line_num, clean))
    if not rows:
        raise InvalidInput(f"the file has no {kind} in it")
    return rows


def import_csv(session: Session, *, kind: str, text: str, dry_run: bool, actor: str) -> ImportReport:
    """Check (and, unless a dry run or a row is refused, register) every row of the CSV, as
    ``actor``. A device's custody entry names the file (SHA-256 of its text as UTF-8) and its line.

    :raises InvalidInput: an unknown kind, a file too large, a header without the needed columns,
        a line with more fields than the header, or no rows.
    """
    try:
        what = ImportKind(kind)
    except ValueError:
        raise InvalidInput(f"'{kind[:20]}' is not one of: {', '.join(k.value for k in ImportKind)}") from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    outer = session.begin_nested()
    results = []
    for line, row in _rows(what, text):
        key = row.get(REQUIRED[what][0], "")
        inner = session.begin_nested()
        try:
            _REGISTER[what](session, row, ImportSource(digest, line, actor))
        except FactoryError as exc:
            inner.rollback()
            results.append(RowResult(line, key, False, exc.reason))
            continue
        inner.commit()
        results.append(RowResult(line, key, True, ""))
    keep = not dry_run and all(r.accepted for r in results)
    if keep:
        outer.commit()
    else:
        outer.rollback()
    return ImportReport(kind=what.value, dry_run=dry_run, rows=results, kept=keep)
