"""The custody workflow API: roles, typed refusals as 4xx with a reason, evidence end to end."""

from __future__ import annotations

import base64
import hashlib

import pytest
from harness.custody_data import PNG, accept, issue_first, ready

from factory.identity.service import add_user
from factory.kernel.db.engine import session_scope


@pytest.fixture
def h(ctx) -> dict[str, dict[str, str]]:
    out = {}
    with session_scope(ctx.engine) as s:
        for name, role in (("tech1", "technician"), ("tech2", "technician"), ("courier1", "courier"),
                           ("auditor1", "auditor"), ("admin1", "admin")):  # fmt: skip
            out[name] = {"Authorization": f"Bearer {add_user(s, name, role)[1]}"}
    return out


def _png(label: str) -> dict[str, str]:
    return {"media_type": "image/png", "content_base64": base64.b64encode(PNG + label.encode()).decode()}


def test_issue_flow_roles_and_refusals(ctx, client, h) -> None:
    ready(ctx, "API-N1")
    r = client.post("/api/custody/officers", json={"staff_number": "PC9", "name": "Ann Lee"}, headers=h["tech1"])
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert client.post("/api/custody/officers", json={"staff_number": "PC9", "name": "Ann Lee"},
                       headers=h["admin1"]).status_code == 201  # fmt: skip
    alloc = {"serial": "API-N1", "staff_number": "PC9"}
    for who in ("courier1", "auditor1"):
        assert client.post("/api/custody/allocations", json=alloc, headers=h[who]).status_code == 403
    r = client.post("/api/custody/allocations", json=alloc, headers=h["tech1"])
    assert r.status_code == 201, r.text
    allocation_id = r.json()["id"]
    issue = {"acceptance": {"name": "Ann Lee", "signature": _png("ann")}}
    r = client.post(f"/api/custody/allocations/{allocation_id}/issue", json=issue, headers=h["tech1"])
    assert r.status_code == 409 and "only in exchange" in r.json()["reason"]
    approval_id = client.post("/api/custody/exceptions", json={"allocation_id": allocation_id, "reason": "new starter"},
                              headers=h["tech1"]).json()["id"]  # fmt: skip
    r = client.post(f"/api/custody/exceptions/{approval_id}/approve", headers=h["tech1"])
    assert r.status_code == 403
    r = client.post(f"/api/custody/exceptions/{approval_id}/approve", headers=h["admin1"])
    assert r.status_code == 200 and r.json()["details"]["approved_by"] == "admin1"
    r = client.post(f"/api/custody/allocations/{allocation_id}/issue", json={**issue, "approval_id": approval_id},
                    headers=h["tech1"])  # fmt: skip
    assert r.status_code == 200, r.text
    [entry] = r.json()["entries"]
    assert entry["to_state"] == "issued" and entry["evidence"]["acceptance"]["sha256"] == r.json()["details"][
        "acceptance_sha256"]  # fmt: skip
    bad = {"acceptance": {"name": "Ann", "signature": {"media_type": "image/png", "content_base64": "!!notb64"}}}
    r = client.post(f"/api/custody/allocations/{allocation_id}/issue", json=bad, headers=h["tech1"])
    assert r.status_code == 422 and "base64" in r.json()["reason"]
    assert client.get("/api/ledger/verify", headers=h["auditor1"]).json()["ok"] is True


def test_courier_flow_and_documents(ctx, client, h) -> None:
    ready(ctx, "API-C1", kind="tablet")  # tablets are outside the laptop courier cap
    client.post("/api/custody/officers", json={"staff_number": "PC7", "name": "Bo Ray"}, headers=h["admin1"])
    issue_first(ctx, "API-OLD", "PC7", acceptance=accept("Bo Ray"))  # the officer's old device
    client.post("/api/custody/waves", json={"name": "WA", "cohort": "Northtown"}, headers=h["admin1"])
    allocation = {"serial": "API-C1", "staff_number": "PC7", "channel": "courier"}
    r = client.post("/api/custody/allocations", json=allocation, headers=h["tech1"])
    assert r.status_code == 422 and "belongs to a refresh wave" in r.json()["reason"]
    allocation_id = client.post("/api/custody/allocations", json={**allocation, "wave": "WA"},
                                headers=h["tech1"]).json()["id"]  # fmt: skip
    body = {"allocation_ids": [allocation_id], "courier": "SecureParcel", "recipient_name": "Desk",
            "recipient_address": "1 High St", "seal_numbers": ["S1"]}  # fmt: skip
    # The dispatch team packs consignments, as on its page; a technician may not.
    assert client.post("/api/custody/consignments", json=body, headers=h["tech1"]).status_code == 403
    r = client.post("/api/custody/consignments", json=body, headers=h["courier1"])
    assert r.status_code == 409 and "not recorded as formally shielding" in r.json()["reason"]
    r = client.post("/api/custody/consignments", json={**body, "shielding": {"PC7": "OH-7"}}, headers=h["courier1"])
    assert r.status_code == 201, r.text
    ref, manifest_id = r.json()["id"], r.json()["details"]["manifest_document_id"]
    scan = {"scanned_serials": ["API-C1"], "scanned_seals": ["S1"]}
    assert client.post(f"/api/custody/consignments/{ref}/handover", json=scan, headers=h["tech1"]).status_code == 403
    r = client.post(f"/api/custody/consignments/{ref}/handover", json={**scan, "scanned_serials": ["NOPE"]},
                    headers=h["courier1"])  # fmt: skip
    assert r.status_code == 409 and "does not contain NOPE" in r.json()["reason"]
    r = client.post(f"/api/custody/consignments/{ref}/handover", json=scan, headers=h["courier1"])
    assert r.status_code == 200 and r.json()["entries"][0]["to_custodian"] == "courier:SecureParcel"
    pdf = client.get(f"/api/custody/documents/{manifest_id}", headers=h["auditor1"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["x-content-sha256"] == hashlib.sha256(pdf.content).hexdigest()
    assert r.json()["entries"][0]["evidence"]["manifest"]["sha256"] == pdf.headers["x-content-sha256"]
    assert client.get(f"/api/custody/documents/{manifest_id}", headers=h["courier1"]).status_code == 200
    r = client.post(f"/api/custody/consignments/{ref}/delivery",
                    json={"recipient_name": "Sgt Brown", "signature": _png("pod"), "scanned_seals": ["S1"],
                          "old_serials": ["API-OLD"]}, headers=h["courier1"])  # fmt: skip
    assert r.status_code == 200 and r.json()["entries"][0]["to_custodian"] == "officer:PC7"
    from factory.custody.service import DocumentKind, Upload, store_document
    from factory.kernel.db.engine import session_scope

    with session_scope(ctx.engine) as s:  # an officer's signature: not a courier's business
        signature_id = store_document(s, DocumentKind.SIGNATURE, Upload(PNG + b"officer", "image/png"), actor="t").id
    r_sig = client.get(f"/api/custody/documents/{signature_id}", headers=h["courier1"])
    assert r_sig.status_code == 403 and "signature" in r_sig.json()["reason"]
    assert client.get(f"/api/custody/documents/{signature_id}", headers=h["auditor1"]).status_code == 200
    r = client.get("/api/custody/consignment-exceptions", headers=h["auditor1"])
    assert r.status_code == 200 and r.json() == []


def test_the_dispatch_team_returns_a_failed_delivery_as_on_its_page(ctx, client, h) -> None:
    """Couriers (the dispatch team) bring an undelivered consignment back over JSON as on the
    courier page; a technician may not (tests/web/test_rbac_matrix.py keeps the two the same)."""
    from harness.courier_data import handed_over, wave_with_room

    ref = handed_over(ctx, wave_with_room(ctx, "WR", in_person=0), "PC8", "API-R-OLD", "API-R1")
    r = client.post(f"/api/custody/consignments/{ref}/failed-delivery", json={"reason": "no answer"},
                    headers=h["courier1"])  # fmt: skip
    assert r.status_code == 200, r.text
    assert client.post(f"/api/custody/consignments/{ref}/return", headers=h["tech1"]).status_code == 403
    r = client.post(f"/api/custody/consignments/{ref}/return", headers=h["courier1"])
    assert r.status_code == 200, r.text
    [entry] = r.json()["entries"]
    assert (entry["event"], entry["to_state"], entry["to_custodian"]) == ("undeliverable", "returned", "factory")


def test_courier_delivery_without_an_old_device_under_an_approved_exception(ctx, client, h) -> None:
    from harness.courier_data import courier_allocations, packed, shielded_officer, wave_with_room
    from harness.domain import verifier

    from factory.custody.service import hand_over

    staff = shielded_officer(ctx, "PC6")  # a new starter: no old device
    [allocation_id] = courier_allocations(ctx, ["API-NS1"], staff, wave_with_room(ctx, "WN", in_person=0))
    ref = packed(ctx, [allocation_id], ["S6"])
    keys = verifier(ctx)
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=ref, scanned_serials=["API-NS1"], scanned_seals=["S6"], actor="c", verifier=keys)
    pod = {"recipient_name": "PC Six", "signature": _png("pod6"), "scanned_seals": ["S6"], "old_serials": []}
    r = client.post(f"/api/custody/consignments/{ref}/delivery", json=pod, headers=h["courier1"])
    assert r.status_code == 409 and "PC6 receives 1 and hands back 0" in r.json()["reason"]
    r = client.post("/api/custody/exceptions", json={"allocation_id": allocation_id, "reason": "new starter"},
                    headers=h["tech1"])  # fmt: skip
    assert r.status_code == 201, r.text
    r = client.post(f"/api/custody/exceptions/{r.json()['id']}/approve", headers=h["admin1"])
    assert r.status_code == 200, r.text
    r = client.post(f"/api/custody/consignments/{ref}/delivery", json=pod, headers=h["courier1"])
    assert r.status_code == 200, r.text
    [entry] = r.json()["entries"]
    assert entry["to_custodian"] == "officer:PC6"
    assert entry["evidence"]["exception"]["approved_by"] == "admin1" and "exchange_for" not in entry["evidence"]
