"""The custody log's HTTP proofs when several sites share the database: a device that moved to
another site has entries in two logs, and the API proves each against its own log's signed head,
as `factory ledger prove` does (issue 15)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.audit_data import sanitised_device

from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.append import append_entry
from factory.kernel.ledger.heads import sign_tree_head
from factory.kernel.ledger.logs import configured_log

KEY_B = Ed25519PrivateKey.generate()


def _moved_to_site_b(ctx, serial: str) -> None:
    device_id, _ = sanitised_device(ctx, serial, ("B-M1",))
    with session_scope(ctx.engine) as s:
        append_entry(
            s, device_id=device_id, device_serial=serial, event="note", from_state=None, to_state="sanitised",
            actor="site-b-tech", from_custodian="", to_custodian="", location="site b",
            evidence={"note": "arrived at site b"}, log="site-b",
        )  # fmt: skip
        sign_tree_head(s, KEY_B, "site-b", log="site-b")


def test_a_device_in_two_logs_gets_a_proof_per_log(ctx, client, headers) -> None:
    _moved_to_site_b(ctx, "DEV-B")
    assert client.post("/api/ledger/heads", headers=headers["admin"]).status_code == 201  # this site's head
    proof = client.get("/api/ledger/proofs/DEV-B", headers=headers["auditor"])
    assert proof.status_code == 200, proof.text
    docs = proof.json()["proofs"]
    assert sorted(d["head"]["log"] for d in docs) == sorted([configured_log(), "site-b"])
    site_b = next(d for d in docs if d["head"]["log"] == "site-b")
    assert len(site_b["entries"]) == 1 and site_b["head"]["tree_size"] == 1


def test_heads_and_consistency_by_log(ctx, client, headers) -> None:
    _moved_to_site_b(ctx, "DEV-C")
    assert client.post("/api/ledger/heads", headers=headers["admin"]).status_code == 201
    only_b = client.get("/api/ledger/heads", params={"log": "site-b"}, headers=headers["auditor"]).json()
    assert [(h["log"], h["tree_size"]) for h in only_b] == [("site-b", 1)]
    every = client.get("/api/ledger/heads", headers=headers["auditor"]).json()
    assert {h["log"] for h in every} == {configured_log(), "site-b"}
    same = client.get("/api/ledger/consistency", params={"old": 1, "log": "site-b"}, headers=headers["auditor"])
    assert same.status_code == 200 and same.json()["new"]["tree_size"] == 1
    unknown = client.get("/api/ledger/consistency", params={"old": 1, "log": "nowhere"}, headers=headers["auditor"])
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["detail"]
