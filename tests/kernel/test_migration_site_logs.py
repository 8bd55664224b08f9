"""Migration 0019 (per-site logs) on a populated database, on both databases: the single-site chain
and its format 1 signed head become the configured site's log and keep verifying, new entries
extend that log (version 3), and the schema matches the models."""

from __future__ import annotations

import base64
import hashlib

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, text
from sqlmodel import SQLModel

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.db.migrate import alembic_config, current_revision
from factory.kernel.ledger import merkle
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.hashing import entry_bytes, evidence_text
from factory.kernel.ledger.logs import configured_log
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.models.device import Device
from factory.kernel.site_keys import load_private_key
from imaging import signing

# What 0019 adds (the tables' other differences, such as earlier migrations' extra indexes, are not its own).
_ADDED = ("'log'", "log_seq", "'format'", "ledger_cosignature", "log_position", "log_size", "pk_ledger_node")


def _single_site_chain(ctx: AppContext, count: int) -> None:
    """Version 2 entries from the zero genesis and a format 1 signed head over them, as 0018 left them."""
    now = utc_now()
    with ctx.engine.begin() as conn:
        conn.execute(insert(Device), [{"serial": "OLD-1", "kind": "laptop", "created_at": now, "updated_at": now}])
        device_id = conn.execute(text("SELECT id FROM device WHERE serial = 'OLD-1'")).scalar_one()
        prev, leaves = "0" * 64, []
        for seq in range(1, count + 1):
            row = {"seq": seq, "device_id": device_id, "device_serial": "OLD-1", "event": "note",
                   "from_state": None, "to_state": "received", "actor": "old", "from_custodian": "",
                   "to_custodian": "", "location": "", "occurred_at": now, "evidence": evidence_text({"n": seq}),
                   "prev_hash": prev, "hash_version": 2}  # fmt: skip
            data = entry_bytes(row)
            row["entry_hash"] = prev = hashlib.sha256(data).hexdigest()
            leaves.append(merkle.leaf_hash(data))
            conn.execute(
                text(f"INSERT INTO custody_entry ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row
            )
        key = load_private_key(ctx.settings)
        body = {"format": "device-factory/tree-head/1", "site": ctx.settings.site_name, "tree_size": count,
                "root_hash": merkle.fold(_edge(leaves)).hex(), "signed_at": now,
                "key_fingerprint": signing.key_fingerprint(key.public_key())}  # fmt: skip
        signature = base64.b64encode(signing.sign(key, canonical_bytes(body))).decode("ascii")
        head = {k: v for k, v in body.items() if k != "format"} | {"signature": signature, "kind": "scheduled"}
        conn.execute(
            text(f"INSERT INTO ledger_head ({', '.join(head)}) VALUES ({', '.join(':' + k for k in head)})"), head
        )


def _edge(leaves: list[bytes]) -> list[bytes]:
    edge = merkle.Frontier()
    for leaf in leaves:
        edge.push(leaf)
    return list(edge.nodes)


def _drift(ctx: AppContext) -> list[object]:
    with ctx.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    return [d for d in diffs if any(name in repr(d) for name in _ADDED)]


def test_a_populated_single_site_ledger_becomes_the_configured_sites_log(ctx: AppContext) -> None:
    assert current_revision(ctx.engine) == "0019"
    assert _drift(ctx) == [], _drift(ctx)
    ctx.engine.dispose()
    config = alembic_config(ctx.settings.database_url)
    command.downgrade(config, "0018")
    assert "ledger_cosignature" not in sa.inspect(ctx.engine).get_table_names()
    _single_site_chain(ctx, 7)
    ctx.engine.dispose()
    command.upgrade(config, "head")
    assert _drift(ctx) == []
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, log, log_seq FROM custody_entry ORDER BY seq")).all()
        head = conn.execute(text("SELECT log, format FROM ledger_head")).one()
    assert rows == [(s, configured_log(), s) for s in range(1, 8)]
    assert tuple(head) == (configured_log(), "device-factory/tree-head/1")
    report = verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring())
    assert report.ok and report.entries == 7 and report.signed_size == 7, report.reason
    with session_scope(ctx.engine) as s:  # the next entry extends the same log, hashed with its log
        entry = append_entry(s, device_id=1, device_serial="OLD-1", event="note", from_state=None,
                             to_state="received", actor="new", from_custodian="", to_custodian="", location="",
                             evidence={"n": 8})  # fmt: skip
    assert (entry.seq, entry.log_seq, entry.hash_version) == (8, 8, 3)  # the sequence continues after the largest
    assert verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring()).ok
