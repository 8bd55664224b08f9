"""The custody ledger: append-only in the database, and tamper-evident even without the triggers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness.domain import move, receive, sanitise
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.hashing import HASHED_FIELDS
from factory.kernel.ledger.logs import configured_log, genesis_hash
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event

# A changed value per column that keeps the row loadable (types and constraints intact).
TAMPER = {
    "seq": "seq + 1000",
    "device_serial": "'EVIL'",
    "event": "'issue'",
    "from_state": "'ready'",
    "to_state": "'issued'",
    "actor": "'mallory'",
    "from_custodian": "'officer:1'",
    "to_custodian": "'officer:2'",
    "location": "'elsewhere'",
    "occurred_at": "'2020-01-01T00:00:00.000000Z'",
    "evidence": '\'{"note":"x"}\'',
    "prev_hash": "'" + "1" * 64 + "'",
    "entry_hash": "'" + "2" * 64 + "'",
}


def _populate(ctx) -> None:
    a = receive(ctx, "L-1", media=("A1", "A2"))
    sanitise(ctx, a)
    b = receive(ctx, "L-2")
    move(ctx, b, Event.QUARANTINE)
    move(ctx, b, Event.TRIAGE)


def test_every_column_is_hashed_or_is_the_hash() -> None:
    assert set(TAMPER) == {*HASHED_FIELDS, "entry_hash"}


def test_database_refuses_update_and_delete(ctx) -> None:
    _populate(ctx)
    for stmt in ("UPDATE custody_entry SET actor = 'x' WHERE seq = 2", "DELETE FROM custody_entry WHERE seq = 3"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(ctx.engine) as s:
            s.execute(text(stmt))
    with pytest.raises(DBAPIError, match="append-only"), session_scope(ctx.engine) as s:
        s.execute(text("UPDATE certificate SET level = 'purge'"))
    assert verify_ledger(ctx.engine).ok


@pytest.mark.parametrize("column", sorted(TAMPER))
def test_tampering_any_field_is_caught_and_named(ctx, column: str) -> None:
    _populate(ctx)
    report = verify_ledger(ctx.engine)
    assert report.ok and report.entries == 6
    with session_scope(ctx.engine) as s:
        for stmt in drop_statements(ctx.engine.dialect.name, "custody_entry"):
            s.execute(text(stmt))
        s.execute(text(f"UPDATE custody_entry SET {column} = {TAMPER[column]} WHERE seq = 4"))
    report = verify_ledger(ctx.engine)
    assert not report.ok
    assert report.broken_seq == 4
    assert report.reason and report.reason.startswith(f"custody entry {report.broken_seq}:")
    # the CLI says the same in one line and exits non-zero
    result = CliRunner().invoke(app, ["ledger", "verify", "--json"])
    assert result.exit_code == 1 and result.stdout, result.output
    assert json.loads(result.stdout)["broken_seq"] == report.broken_seq
    result = CliRunner().invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error: ledger broken: custody entry {report.broken_seq}:")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_deleted_middle_entry_is_caught(ctx) -> None:
    _populate(ctx)
    with session_scope(ctx.engine) as s:
        for stmt in drop_statements(ctx.engine.dialect.name, "custody_entry"):
            s.execute(text(stmt))
        s.execute(text("DELETE FROM custody_entry WHERE seq = 3"))
    report = verify_ledger(ctx.engine)
    assert not report.ok and report.broken_seq == 3 and "missing or renumbered" in (report.reason or "")


def test_chain_links_and_verifies(ctx) -> None:
    _populate(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, entry_hash FROM custody_entry ORDER BY seq")).all()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0][1] == genesis_hash(configured_log())  # the site's log starts from its own genesis
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    # through the real console script, as an auditor would run it
    proc = subprocess.run(
        [sys.executable, "-m", "factory.cli.main", "ledger", "verify"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "ledger ok: 6 entries" in proc.stdout


@pytest.mark.parametrize(
    ("new_evidence", "ok"),
    [
        ("' ' || evidence || ' '", True),  # the same JSON value in a non-canonical form: the entry is unchanged
        ("'{\"job\":'", False),  # not JSON at all
        ("evidence || ',\"event\"'", False),  # trailing text that would shift field boundaries if spliced blindly
    ],
)
def test_evidence_text_form_does_not_fool_the_fast_path(ctx, new_evidence: str, ok: bool) -> None:
    _populate(ctx)
    with session_scope(ctx.engine) as s:
        for stmt in drop_statements(ctx.engine.dialect.name, "custody_entry"):
            s.execute(text(stmt))
        s.execute(text(f"UPDATE custody_entry SET evidence = {new_evidence} WHERE seq = 4"))
    report = verify_ledger(ctx.engine)
    assert report.ok is ok
    assert report.broken_seq == (None if ok else 4)


@pytest.mark.parametrize("value", [2e16, float("nan"), 2**60])
def test_evidence_no_verifier_could_read_back_is_refused_with_the_reason(ctx, value: object) -> None:
    """A double of 2**53 or more is written as an integer beyond 2**53 - 1, which the entry's hash
    (taken over the evidence parsed again, as every verifier does) cannot take back: refused as bad
    input when the entry is written, nothing appended, the ledger still verifying."""
    from factory.kernel.ledger.hashing import EvidenceError

    device_id = receive(ctx, "EVID-BIG")
    with pytest.raises(EvidenceError, match="cannot be stored exactly"):
        move(ctx, device_id, Event.QUARANTINE, evidence={"reading": value})
    report = verify_ledger(ctx.engine)
    assert report.ok and report.entries == 1  # the receipt alone
