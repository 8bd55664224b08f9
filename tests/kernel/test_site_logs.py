"""Per-site custody logs in one database: each site appends to its own log under its own lock, the
logs verify one by one, and the sites cosign each other's heads (issue 15)."""

from __future__ import annotations

import base64
import threading
from dataclasses import asdict, replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.domain import receive
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from factory.kernel.canonical import canonical_bytes
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.cosign import Cosignature, cosign_logs, stored_cosignatures
from factory.kernel.ledger.heads import sign_tree_head
from factory.kernel.ledger.logs import genesis_hash
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.ledger_tree import LedgerCosignature
from factory.kernel.site_keys import load_private_key
from imaging import signing

KEY_B = Ed25519PrivateKey.generate()


def _append(session: Any, device_id: int, log: str, note: str) -> int:
    entry = append_entry(
        session, device_id=device_id, device_serial="S-1", event="note", from_state=None, to_state="received",
        actor="tester", from_custodian="", to_custodian="", location="", evidence={"note": note}, log=log,
    )  # fmt: skip
    return entry.seq


def _two_logs(ctx) -> int:
    """Entries of site-a and site-b interleaved, each log with a head signed by its own site's key."""
    device = receive(ctx, "S-1")
    for i in range(5):
        with session_scope(ctx.engine) as s:
            _append(s, device, "site-a", f"a{i}")
            _append(s, device, "site-b", f"b{i}")
    with session_scope(ctx.engine) as s:
        sign_tree_head(s, load_private_key(ctx.settings), "site-a", log="site-a")
        sign_tree_head(s, KEY_B, "site-b", log="site-b")
    return device


def _unlock(ctx, table: str) -> None:
    with ctx.engine.begin() as conn:
        for stmt in drop_statements(ctx.engine.dialect.name, table):
            conn.execute(text(stmt))


def test_each_log_chains_from_its_own_genesis_and_verifies(ctx) -> None:
    _two_logs(ctx)
    with ctx.engine.connect() as conn:
        firsts = dict(conn.execute(text("SELECT log, prev_hash FROM custody_entry WHERE log_seq = 1")).all())
        positions = conn.execute(text("SELECT log_seq FROM custody_entry WHERE log = 'site-b' ORDER BY seq")).all()
    assert firsts["site-a"] == genesis_hash("site-a") != firsts["site-b"] == genesis_hash("site-b")
    assert [p[0] for p in positions] == [1, 2, 3, 4, 5]  # its own positions, whatever the other log did
    report = verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring())
    assert report.ok, report.reason
    by_log = {r.log: r for r in report.logs}
    assert by_log["site-a"].entries == by_log["site-b"].entries == 5
    assert by_log["site-a"].signed_size == 5 and by_log["site-b"].heads_checked == 1
    assert verify_ledger(ctx.engine, log="site-b").entries == 5


def test_an_entry_moved_to_another_log_fails(ctx) -> None:
    _two_logs(ctx)
    _unlock(ctx, "custody_entry")
    with ctx.engine.begin() as conn:  # the last entry of site-a claimed for site-b, at its next position
        conn.execute(text("UPDATE custody_entry SET log = 'site-b', log_seq = 6 WHERE log = 'site-a' AND log_seq = 5"))
    assert not verify_ledger(ctx.engine).ok
    into = verify_ledger(ctx.engine, log="site-b")
    assert not into.ok and into.broken_seq == 6 and "prev_hash differs" in (into.reason or "")
    out_of = verify_ledger(ctx.engine, log="site-a")  # site-a's signed head covers an entry it lost
    assert not out_of.ok and "ledger truncated" in (out_of.reason or ""), out_of.reason


def test_an_entry_moved_with_its_hash_recomputed_still_fails(ctx) -> None:
    """Rehashed to fit site-b's chain: site-a's signed head no longer verifies, and in site-b the
    entry is an unsigned tail (its signed head does not cover it: 'ledger verify --strict' fails)."""
    import hashlib

    from factory.kernel.ledger.hashing import entry_bytes

    _two_logs(ctx)
    _unlock(ctx, "custody_entry")
    cols = "seq, device_id, device_serial, event, from_state, to_state, actor, from_custodian, to_custodian, " \
        "location, occurred_at, evidence, prev_hash, hash_version, log, log_seq"  # fmt: skip
    with ctx.engine.begin() as conn:
        row = dict(
            conn.execute(text(f"SELECT {cols} FROM custody_entry WHERE log = 'site-a' AND log_seq = 5")).one()._mapping
        )
        tip = conn.execute(text("SELECT entry_hash FROM custody_entry WHERE log = 'site-b' AND log_seq = 5")).scalar()
        moved = {**row, "log": "site-b", "log_seq": 6, "prev_hash": tip}
        moved["entry_hash"] = hashlib.sha256(entry_bytes(moved)).hexdigest()
        conn.execute(text("DELETE FROM custody_entry WHERE seq = :s"), {"s": row["seq"]})
        names = ", ".join(f":{c}" for c in moved)
        conn.execute(text(f"INSERT INTO custody_entry ({', '.join(moved)}) VALUES ({names})"), moved)
    into = verify_ledger(ctx.engine, log="site-b")
    assert into.ok and into.signed_size == 5 and into.unsigned_tail == 1
    out_of = verify_ledger(ctx.engine, log="site-a")
    assert not out_of.ok and "ledger truncated" in (out_of.reason or ""), out_of.reason


def test_sites_cosign_each_other_and_a_foreign_key_fails(ctx) -> None:
    _two_logs(ctx)
    with session_scope(ctx.engine) as s:
        made_b, refused = cosign_logs(s, KEY_B, "site-b", ctx.site_keys.keyring(), own_log="site-b")
        made_a, _ = cosign_logs(s, load_private_key(ctx.settings), "site-a", ctx.site_keys.keyring(), own_log="site-a")
        again, _ = cosign_logs(s, KEY_B, "site-b", ctx.site_keys.keyring(), own_log="site-b")
    assert refused == [] and again == []  # each head is cosigned once by each witness
    assert ("site-a", "site-b") in {(c.log, c.witness) for c in made_b}
    assert ("site-b", "site-a") in {(c.log, c.witness) for c in made_a}
    report = verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring())
    assert report.ok and report.cosignatures_checked >= 2, report.reason
    outsider = Ed25519PrivateKey.generate()
    with session_scope(ctx.engine) as s:
        cosig = next(c for c in stored_cosignatures(s, "site-a") if c.witness == "site-b")
        s.add(LedgerCosignature(**asdict(_signed(replace(cosig, signed_at=cosig.signed_at), outsider))))
    report = verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring())
    assert not report.ok and "not in the site key list" in (report.reason or ""), report.reason


def test_a_cosignature_with_another_sites_key_or_a_wrong_root_fails(ctx) -> None:
    _two_logs(ctx)
    with session_scope(ctx.engine) as s:
        cosign_logs(s, KEY_B, "site-b", ctx.site_keys.keyring(), own_log="site-b")
        cosig = next(c for c in stored_cosignatures(s, "site-a"))
        # site-a's own key, passed off as the witness site-b's: the key list says whose key it is
        s.add(LedgerCosignature(**asdict(_signed(cosig, load_private_key(ctx.settings)))))
    report = verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring())
    assert not report.ok and "not of the witness 'site-b'" in (report.reason or ""), report.reason
    _unlock(ctx, "ledger_cosignature")
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_cosignature"))
    with session_scope(ctx.engine) as s:  # a witness's signature over a root the entries do not give
        s.add(LedgerCosignature(**asdict(_signed(replace(cosig, root_hash="ab" * 32), KEY_B))))
    report = verify_ledger(ctx.engine)
    assert not report.ok and "ledger rewritten: cosignature by site-b" in (report.reason or "")


def test_a_head_that_does_not_check_is_not_cosigned(ctx) -> None:
    _two_logs(ctx)
    outsider = Ed25519PrivateKey.generate()
    with session_scope(ctx.engine) as s:
        sign_tree_head(s, outsider, "site-c", log="site-c")  # an empty log, signed by a key registered now
    keyring = ctx.site_keys.keyring()
    with session_scope(ctx.engine) as s:  # a keyring without site-c's key: its head is refused
        keyring_without = replace(keyring, records={k: v for k, v in keyring.records.items() if v.site != "site-c"})
        made, refused = cosign_logs(s, KEY_B, "site-b", keyring_without, own_log="site-b")
    assert {c.log for c in made} == {"site-a"}
    assert len(refused) == 1 and "site-c" in refused[0] and "not in the site key list" in refused[0]


def _signed(cosig: Cosignature, key: Ed25519PrivateKey) -> Cosignature:
    unsigned = replace(cosig, key_fingerprint=signing.key_fingerprint(key.public_key()), signature="")
    value = base64.b64encode(key.sign(canonical_bytes(unsigned.body()))).decode("ascii")
    return replace(unsigned, signature=value)


def test_two_sites_append_at_once_on_postgresql_without_waiting_for_each_other(ctx) -> None:
    """Site a holds its transaction open after an append; site b's append to its own log completes,
    while a second append to site a's log waits for a's lock (a lock timeout turns waiting into an error)."""
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises every writer by design (one process, one site)")
    device = receive(ctx, "S-1")
    holding, release = threading.Event(), threading.Event()

    def site_a() -> None:
        with session_scope(ctx.engine) as s:
            _append(s, device, "site-a", "held open")
            holding.set()
            release.wait(60)

    worker = threading.Thread(target=site_a)
    worker.start()
    try:
        assert holding.wait(30)
        with session_scope(ctx.engine) as s:
            s.execute(text("SET LOCAL lock_timeout = '5s'"))
            seq_b = _append(s, device, "site-b", "while a holds its log")
        with pytest.raises(OperationalError, match="lock timeout"), session_scope(ctx.engine) as s:
            s.execute(text("SET LOCAL lock_timeout = '1s'"))
            _append(s, device, "site-a", "must wait for a")
    finally:
        release.set()
        worker.join(30)
    report = verify_ledger(ctx.engine)
    assert report.ok, report.reason
    assert {r.log: r.entries for r in report.logs}["site-b"] == 1 and seq_b > 0


def test_cli_cosigns_on_demand_and_verifies_one_log_or_all(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from factory.cli.main import app

    _two_logs(ctx)
    monkeypatch.setenv("FACTORY_SITE", "site-a")  # the CLI runs as site a, whose key signed site-a's heads
    runner = CliRunner()
    first = runner.invoke(app, ["ledger", "cosign"])
    assert first.exit_code == 0 and "cosigned log site-b at size 5" in first.stdout, first.output
    again = runner.invoke(app, ["ledger", "cosign"])
    assert again.exit_code == 0 and "nothing to cosign" in again.stdout
    one = runner.invoke(app, ["ledger", "verify", "--json", "--log", "site-b"])
    doc = json.loads(one.stdout)
    assert one.exit_code == 0 and doc["log"] == "site-b" and doc["cosignatures_checked"] == 1, one.output
    every = runner.invoke(app, ["ledger", "verify"])
    assert every.exit_code == 0 and "log site-a: 5 entries" in every.stdout and "log site-b: 5 entries" in every.stdout


def test_the_scheduled_heads_timer_cosigns_the_other_logs(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    from factory.kernel.ledger.heads import HeadPolicy
    from factory.line.scheduled_heads import ScheduledHeads

    _two_logs(ctx)
    monkeypatch.setenv("FACTORY_SITE", "site-a")  # this process is site a's line
    settings = replace(ctx.settings, site_name="site-a")
    timer = ScheduledHeads(ctx.engine, settings, HeadPolicy(every_entries=1000, every_seconds=3600))
    timer.tick()
    assert timer.cosigned == 1 and timer.signed == 0  # its own log is signed, site-b's head is witnessed
    with session_scope(ctx.engine) as s:
        assert [(c.log, c.witness, c.tree_size) for c in stored_cosignatures(s)] == [("site-b", "site-a", 5)]
    assert verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring()).cosignatures_checked == 1


def test_the_cached_right_edge_serves_only_while_its_entry_is_the_head(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """An append after this process's own reads no tree; after a rolled-back append the edge is read again."""
    from factory.kernel.ledger import tree

    device = receive(ctx, "S-1")
    with session_scope(ctx.engine) as s:
        _append(s, device, "site-a", "first")
    reads: list[int] = []
    from_database = tree._edge_from_database
    monkeypatch.setattr(tree, "_edge_from_database", lambda s, i, log: reads.append(i) or from_database(s, i, log))
    with session_scope(ctx.engine) as s:
        _append(s, device, "site-a", "second")  # the head is the entry this process appended: cached
    assert reads == []
    with pytest.raises(RuntimeError), session_scope(ctx.engine) as s:
        _append(s, device, "site-a", "rolled back")
        raise RuntimeError("the unit of work fails after its append")
    with session_scope(ctx.engine) as s:
        _append(s, device, "site-a", "third")  # the cached edge is of an entry that never landed
    assert reads == [2]
    assert verify_ledger(ctx.engine, log="site-a").entries == 3 and verify_ledger(ctx.engine).ok
