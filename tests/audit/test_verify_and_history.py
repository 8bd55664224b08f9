"""Server-side certificate checks and device histories with chain proofs; tampering is named."""

from __future__ import annotations

from harness.audit_data import drop_append_only_triggers, sanitised_device
from harness.domain import move
from sqlalchemy import text

from factory.kernel.lifecycle.states import Event
from imaging.certificate import Destination


def test_verify_endpoint_passes_then_names_a_tampered_row(ctx, client, headers) -> None:
    _, (cid,) = sanitised_device(ctx, "DEV-V", ("V-M1",))
    h = headers["auditor"]
    body = client.get(f"/api/certificates/{cid}/verify", headers=h).json()
    assert body["ok"] and body["signature_ok"] and body["problems"] == []
    detail = client.get(f"/api/certificates/{cid}", headers=h).json()
    assert detail["envelope"]["certificate"]["certificate_id"] == cid and detail["method"] == "overwrite-zeros"
    pdf = client.get(f"/api/certificates/{cid}/pdf", headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    drop_append_only_triggers(ctx)
    with ctx.engine.begin() as conn:  # an indexed column no longer says what was signed
        conn.execute(text("UPDATE certificate SET method = 'nvme-sanitize-crypto' WHERE id = :i"), {"i": cid})
    body = client.get(f"/api/certificates/{cid}/verify", headers=h).json()
    assert not body["ok"] and body["signature_ok"]
    assert any("column method" in p for p in body["problems"]), body
    with ctx.engine.begin() as conn:  # the signed content itself is changed
        conn.execute(
            text("UPDATE certificate SET envelope = REPLACE(envelope, '\"clear\"', '\"purge\"') WHERE id = :i"),
            {"i": cid},
        )
    body = client.get(f"/api/certificates/{cid}/verify", headers=h).json()
    assert not body["ok"] and not body["signature_ok"] and "digest mismatch" in body["problems"][0]
    assert client.get(f"/api/certificates/{cid}/pdf", headers=h).status_code == 409
    assert client.get("/api/certificates/nope/verify", headers=h).status_code == 404


def test_history_proves_each_entry_and_names_an_edited_one(ctx, client, headers) -> None:
    device_id, (cid,) = sanitised_device(ctx, "DEV-H", ("H-M1",), destination=Destination.EXTERNAL_REUSE)
    sanitised_device(ctx, "DEV-OTHER", ("O-M1",))  # interleaves other devices' entries in the chain
    move(ctx, device_id, Event.REDISTRIBUTE, to_custodian="school:42")
    h = headers["auditor"]
    body = client.get("/api/devices/DEV-H/history", params={"full_verify": True}, headers=h).json()
    assert body["ok"] and body["ledger"]["verified"]["ok"]
    events = [e["event"] for e in body["entries"]]
    assert events == ["receive", "start_sanitise", "sanitised", "redistribute"]
    for e in body["entries"]:
        proof = e["proof"]
        assert proof["hash_ok"] and proof["links_to_previous"] and proof["recomputed_hash"] == e["entry_hash"]
        assert proof["previous_entry_hash"] == e["prev_hash"]
    last = body["entries"][-1]
    assert last["proof"]["next_seq"] is None and body["ledger"]["head_seq"] == last["seq"]
    assert body["entries"][0]["proof"]["linked_by_next"] is True
    assert body["certificates"][0]["id"] == cid and body["certificates"][0]["check"]["ok"]

    drop_append_only_triggers(ctx)
    edited = body["entries"][1]["seq"]
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE custody_entry SET actor = 'someone.else' WHERE seq = :s"), {"s": edited})
    body = client.get("/api/devices/DEV-H/history", params={"full_verify": True}, headers=h).json()
    assert not body["ok"]
    bad = [e["seq"] for e in body["entries"] if not e["proof"]["hash_ok"]]
    assert bad == [edited]
    assert body["ledger"]["verified"]["broken_seq"] == edited
