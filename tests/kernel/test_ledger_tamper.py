"""What the Merkle tree, signed tree heads and hashed device references catch that the chain alone did not."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from harness.domain import certify_all, move, receive
from sqlalchemy import text
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.db.append_only import drop_statements
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.hashing import EvidenceError, entry_bytes, evidence_text
from factory.kernel.ledger.heads import HeadPolicy, sign_if_due, sign_tree_head
from factory.kernel.ledger.logs import configured_log, genesis_hash
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event
from factory.kernel.site_keys import load_private_key

runner = CliRunner()
_COLUMNS = (
    "seq, device_id, device_serial, event, from_state, to_state, actor, from_custodian, to_custodian, location,"
    " occurred_at, evidence, prev_hash, hash_version, log, log_seq"
)


def _unlock(ctx, *tables: str) -> None:
    with ctx.engine.begin() as conn:
        for table in tables:
            for stmt in drop_statements(ctx.engine.dialect.name, table):
                conn.execute(text(stmt))


def _sanitise_listing(ctx, device_id: int) -> list[str]:
    """A round closed as the erase-round service closes it: the sanitised entry lists its certificates."""
    move(ctx, device_id, Event.START_SANITISE)
    ids = certify_all(ctx, device_id)
    move(ctx, device_id, Event.SANITISED, evidence={"certificates": ids})
    return ids


def _populate(ctx) -> tuple[int, int, list[str]]:
    a = receive(ctx, "T-1", media=("TA1", "TA2"))
    ids = _sanitise_listing(ctx, a)
    b = receive(ctx, "T-2")
    move(ctx, b, Event.QUARANTINE, evidence={"reason": "cracked screen"})
    return a, b, ids


def _head(ctx) -> None:
    with session_scope(ctx.engine) as s:
        sign_tree_head(s, load_private_key(ctx.settings), ctx.settings.site_name)


def _rehash(ctx, seq: int, **changes: object) -> None:
    """Rewrite an entry and recompute its hash, every later link and the stored tree, as an attacker would."""
    from factory.kernel.ledger.tree import catch_up

    _unlock(ctx, "custody_entry", "ledger_node")
    with session_scope(ctx.engine) as s:
        rows = [dict(r._mapping) for r in s.execute(text(f"SELECT {_COLUMNS} FROM custody_entry ORDER BY seq"))]
        size = len(rows)
        s.execute(text("DELETE FROM ledger_node"))
        s.execute(text("DELETE FROM custody_entry WHERE seq >= :seq"), {"seq": seq})
        prev = s.execute(
            text("SELECT entry_hash FROM custody_entry WHERE seq = :s"), {"s": seq - 1}
        ).scalar() or genesis_hash(configured_log())
        names = ", ".join(":" + c.strip() for c in _COLUMNS.split(","))
        insert = text(f"INSERT INTO custody_entry ({_COLUMNS}, entry_hash) VALUES ({names}, :entry_hash)")
        for row in rows[seq - 1 :]:
            row = {**row, **(changes if row["seq"] == seq else {}), "prev_hash": prev}
            row["entry_hash"] = prev = hashlib.sha256(entry_bytes(row)).hexdigest()
            s.execute(insert, row)
        catch_up(s, size)


def test_new_entries_hash_their_device_and_moving_one_is_caught(ctx) -> None:
    _, b, _ = _populate(ctx)
    assert verify_ledger(ctx.engine).ok
    _unlock(ctx, "custody_entry")
    with session_scope(ctx.engine) as s:
        s.execute(text("UPDATE custody_entry SET device_id = :b WHERE seq = 2"), {"b": b})
    report = verify_ledger(ctx.engine)
    assert not report.ok and report.broken_seq == 2 and "entry_hash does not match" in (report.reason or "")


def test_duplicate_member_evidence_fails_verification(ctx) -> None:
    _populate(ctx)
    seq = 5  # the quarantine entry with {"reason": "cracked screen"}
    _unlock(ctx, "custody_entry")
    with session_scope(ctx.engine) as s:
        original = s.execute(text("SELECT evidence FROM custody_entry WHERE seq = :s"), {"s": seq}).scalar_one()
        assert original == '{"reason":"cracked screen"}'
        # SQLite's json_extract reads the first member, a last-wins parser the second (the original).
        forged = '{"reason":"nothing wrong","reason":"cracked screen"}'
        s.execute(text("UPDATE custody_entry SET evidence = :e WHERE seq = :s"), {"e": forged, "s": seq})
    report = verify_ledger(ctx.engine)
    assert not report.ok and report.broken_seq == seq and "twice" in (report.reason or "")
    with pytest.raises(EvidenceError):
        evidence_text({1: "not a member name"})  # type: ignore[dict-item]


@pytest.mark.parametrize("how", ["deleted", "swapped"])
def test_a_certificate_row_deleted_or_swapped_fails_verify(ctx, how: str) -> None:
    _, _, ids = _populate(ctx)
    other = receive(ctx, "T-3", media=("TC1",))
    (spare,) = _sanitise_listing(ctx, other)
    assert verify_ledger(ctx.engine).ok
    _unlock(ctx, "certificate")
    with session_scope(ctx.engine) as s:
        if how == "deleted":
            s.execute(text("DELETE FROM certificate WHERE id = :i"), {"i": ids[0]})
        else:  # the row keeps its id but holds another certificate's envelope and digest
            s.execute(
                text("UPDATE certificate SET envelope = (SELECT envelope FROM certificate WHERE id = :o), "
                     "digest_sha256 = 'x' || substr(digest_sha256, 2) WHERE id = :i"),
                {"o": spare, "i": ids[0]},
            )  # fmt: skip
    report = verify_ledger(ctx.engine)
    assert not report.ok and report.reason and report.reason.startswith(f"certificate {ids[0]}")
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1 and f"certificate {ids[0]}" in result.stderr
    exceptions = runner.invoke(app, ["audit", "exceptions", "--days", "0", "--json"])
    assert exceptions.exit_code == 1, exceptions.output
    assert [c["certificate_id"] for c in json.loads(exceptions.stdout)["certificate_rows"]] == [ids[0]]


def test_an_entry_rewritten_with_every_hash_recomputed_fails_against_the_signed_head(ctx) -> None:
    _populate(ctx)
    _head(ctx)
    _rehash(ctx, 3, actor="mallory")
    report = verify_ledger(ctx.engine)
    assert not report.ok and "ledger rewritten: signed tree head of size 5" in (report.reason or "")
    assert report.broken_seq is None  # every hash and link holds: only the signed root tells


def test_a_tail_after_the_last_head_is_reported_and_fails_strict(ctx) -> None:
    _, b, _ = _populate(ctx)
    _head(ctx)
    move(ctx, b, Event.TRIAGE)  # appended after the head (as a forger's entry would be)
    result = runner.invoke(app, ["ledger", "verify", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["signed_size"], doc["unsigned_tail"], doc["heads_checked"]) == (5, 1, 1)
    strict = runner.invoke(app, ["ledger", "verify", "--strict"])
    assert strict.exit_code == 1 and "unsigned tail: 1 entries after the latest signed head" in strict.stderr
    assert runner.invoke(app, ["ledger", "head"]).exit_code == 0
    assert runner.invoke(app, ["ledger", "verify", "--strict"]).exit_code == 0


def test_heads_are_signed_on_the_schedule(ctx) -> None:
    device = receive(ctx, "S-1")
    policy = HeadPolicy(every_entries=3, every_seconds=3600)
    key = load_private_key(ctx.settings)
    with session_scope(ctx.engine) as s:
        assert sign_if_due(s, key, "test-site", policy) is None  # one unsigned entry, just made
    move(ctx, device, Event.QUARANTINE)
    move(ctx, device, Event.TRIAGE)
    with session_scope(ctx.engine) as s:
        head = sign_if_due(s, key, "test-site", policy)
    assert head is not None and head.tree_size == 3
    with session_scope(ctx.engine) as s:
        assert sign_if_due(s, key, "test-site", HeadPolicy(every_entries=1, every_seconds=0.001)) is None


def test_a_deleted_head_is_caught_by_the_copy_a_witness_kept(ctx, tmp_path: Path) -> None:
    _populate(ctx)
    kept = tmp_path / "witness-head.json"
    assert runner.invoke(app, ["ledger", "head", "--out", str(kept)]).exit_code == 0
    _rehash(ctx, 2, location="elsewhere")
    _unlock(ctx, "ledger_head")
    with session_scope(ctx.engine) as s:
        s.execute(text("DELETE FROM ledger_head"))
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0  # the database alone cannot tell
    result = runner.invoke(app, ["ledger", "verify", "--anchor", str(kept)])
    assert result.exit_code == 1 and "ledger rewritten" in result.stderr, result.output


def test_entries_of_the_first_hash_version_keep_verifying_and_cannot_follow_version_two(ctx) -> None:
    device = receive(ctx, "V-1")
    _unlock(ctx, "custody_entry", "ledger_node")
    with session_scope(ctx.engine) as s:  # make the entry what a version-1 writer made, tree not yet built
        row = dict(s.execute(text(f"SELECT {_COLUMNS} FROM custody_entry WHERE seq = 1")).one()._mapping)
        row.update(hash_version=1, prev_hash="0" * 64)  # a version 1 log started from the zero genesis
        s.execute(
            text("UPDATE custody_entry SET hash_version = 1, prev_hash = :p, entry_hash = :h WHERE seq = 1"),
            {"p": row["prev_hash"], "h": hashlib.sha256(entry_bytes(row)).hexdigest()},
        )
        s.execute(text("DELETE FROM ledger_node"))
    move(ctx, device, Event.QUARANTINE)  # the tree is built over the old entry, then grows
    report = verify_ledger(ctx.engine)
    assert report.ok and report.entries == 2
    with session_scope(ctx.engine) as s:
        versions = s.execute(text("SELECT hash_version FROM custody_entry ORDER BY seq")).scalars().all()
    assert versions == [1, 3]
    move(ctx, device, Event.TRIAGE)
    _rehash(ctx, 3, hash_version=1)  # a downgrade would take the device reference out of the hash
    report = verify_ledger(ctx.engine)
    assert (
        not report.ok
        and report.broken_seq == 3
        and "hash_version 1 after entries of version 3" in (report.reason or "")
    )
