"""Signed heads: a tail cut off the chain (invisible to the rows alone) is caught by an anchor kept outside."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from harness.domain import move, receive
from sqlalchemy import text
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.config import load_settings
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event

runner = CliRunner()


def _anchor(tmp_path: Path, name: str = "head.json") -> Path:
    out = tmp_path / name
    result = runner.invoke(app, ["ledger", "anchor", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _cut_tail(ctx, keep: int) -> None:
    """An attacker with the database cuts the entries and the Merkle tree's nodes over them."""
    with session_scope(ctx.engine) as s:
        for table in ("custody_entry", "ledger_node"):
            for stmt in drop_statements(ctx.engine.dialect.name, table):
                s.execute(text(stmt))
        s.execute(text("DELETE FROM custody_entry WHERE seq > :keep"), {"keep": keep})
        s.execute(text("DELETE FROM ledger_node WHERE (idx + 1) * (1 << level) > :keep"), {"keep": keep})


def _verify(*anchors: Path, as_json: bool = False):
    args = ["ledger", "verify", *(["--json"] if as_json else [])]
    for path in anchors:
        args += ["--anchor", str(path)]
    return runner.invoke(app, args)


def test_anchor_is_signed_head_and_later_growth_still_verifies(ctx, tmp_path: Path) -> None:
    device = receive(ctx, "A-1")
    first = _anchor(tmp_path, "first.json")
    doc = orjson.loads(first.read_bytes())
    with ctx.engine.connect() as conn:
        head = conn.execute(text("SELECT seq, entry_hash FROM custody_entry ORDER BY seq DESC LIMIT 1")).one()
    assert (doc["seq"], doc["entry_hash"]) == (head[0], head[1])
    assert doc["site"] == load_settings().site_name and len(doc["signature"]) == 88
    move(ctx, device, Event.QUARANTINE)
    second = _anchor(tmp_path, "second.json")
    result = _verify(first, second)
    assert result.exit_code == 0, result.output
    assert "2 signed head(s) still in the chain" in result.stdout
    report = json.loads(_verify(first, second, as_json=True).stdout)
    assert report["ok"] is True and report["anchors_checked"] == 2


def test_cut_off_tail_passes_the_rows_alone_but_not_the_anchor(ctx, tmp_path: Path) -> None:
    device = receive(ctx, "A-1")
    move(ctx, device, Event.QUARANTINE)
    move(ctx, device, Event.TRIAGE)
    anchor = _anchor(tmp_path)
    _cut_tail(ctx, keep=1)
    assert _verify().exit_code == 0  # the limitation anchors exist for
    result = _verify(anchor)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: ledger broken: {anchor}: ledger truncated: anchor signed "
        f"{orjson.loads(anchor.read_bytes())['signed_at']} says entry 3 has hash "
        f"{orjson.loads(anchor.read_bytes())['entry_hash']}, but the chain now ends at entry 1"
    )
    assert json.loads(_verify(anchor, as_json=True).stdout)["broken_seq"] == 3


def test_rewritten_tail_is_caught(ctx, tmp_path: Path) -> None:
    device = receive(ctx, "A-1")
    move(ctx, device, Event.QUARANTINE)
    anchor = _anchor(tmp_path)
    _cut_tail(ctx, keep=1)
    # A consistent new tail through the real path: the chain verifies, but entry 2 is a different one.
    with session_scope(ctx.engine) as s:
        s.execute(text("UPDATE device SET state = 'received'"))
    move(ctx, device, Event.QUARANTINE, evidence={"reason": "rewritten"})
    assert _verify().exit_code == 0
    result = _verify(anchor)
    assert result.exit_code == 1 and "ledger rewritten: anchor signed" in result.stderr
    assert "says entry 2 has hash" in result.stderr


def test_forged_or_malformed_anchor_is_refused(ctx, tmp_path: Path) -> None:
    receive(ctx, "A-1")
    anchor = _anchor(tmp_path)
    doc = orjson.loads(anchor.read_bytes())
    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps({**doc, "seq": doc["seq"] + 5}))
    result = _verify(forged)
    assert result.exit_code == 1 and "is not signed by this site's key" in result.stderr
    for name, content in (("junk.json", b"not json"), ("other.json", b'{"format": "x"}')):
        bad = tmp_path / name
        bad.write_bytes(content)
        result = _verify(bad)
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    # an anchor file is never overwritten
    result = runner.invoke(app, ["ledger", "anchor", "--out", str(anchor)])
    assert result.exit_code == 1 and "exists" in result.stderr


def test_empty_ledger_has_no_head_to_anchor(ctx) -> None:
    result = runner.invoke(app, ["ledger", "anchor"])
    assert result.exit_code == 1 and "the ledger is empty" in result.stderr
