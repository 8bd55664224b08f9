"""The JSON API: bearer auth everywhere but /healthz, role checks, JSON 4xx with a reason."""

from __future__ import annotations

import pytest
from harness.web import bearer

RECEIVE = {"serial": "API-1", "kind": "laptop", "make": "HP", "media": [{"media_type": "nvme", "serial": "NV-1"}]}


def test_healthz_is_open_everything_else_needs_a_token(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    for method, url in (("get", "/api/devices/X"), ("post", "/api/devices"), ("get", "/api/ledger/verify")):
        r = getattr(client, method)(url)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    r = client.get("/api/devices/X", headers=bearer("dft_not-a-token"))
    assert r.status_code == 401 and "invalid or revoked" in r.json()["reason"]


def test_receive_and_show(client, tokens) -> None:
    r = client.post("/api/devices", json=RECEIVE, headers=bearer(tokens["technician"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "received" and body["history"][0]["actor"] == "technician1"
    r = client.get("/api/devices/API-1", headers=bearer(tokens["courier"]))
    assert r.status_code == 200 and r.json()["media"][0]["serial"] == "NV-1"


def test_roles(client, tokens) -> None:
    for role in ("courier", "auditor"):
        r = client.post("/api/devices", json=RECEIVE, headers=bearer(tokens[role]))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    for role, status in (("technician", 403), ("courier", 403), ("auditor", 200), ("admin", 200)):
        assert client.get("/api/ledger/verify", headers=bearer(tokens[role])).status_code == status


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({**RECEIVE, "serial": ""}, 422, "serial"),
        ({**RECEIVE, "serial": "   "}, 422, "serial must not be empty"),
        ({**RECEIVE, "kind": "toaster"}, 422, "kind"),
        ({**RECEIVE, "media": [{"media_type": "floppy", "serial": "x"}]}, 422, "media_type"),
        ({**RECEIVE, "media": [{"media_type": "nvme", "serial": "A"}, {"media_type": "sd", "serial": "A"}]}, 422,
         "listed twice"),
        ({"kind": "laptop"}, 422, "serial"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_with_reason_and_writes_nothing(client, tokens, payload, status, needle) -> None:
    r = client.post("/api/devices", json=payload, headers=bearer(tokens["technician"]))
    assert r.status_code == status and needle in r.json()["reason"], r.text
    assert client.get("/api/ledger/verify", headers=bearer(tokens["auditor"])).json()["entries"] == 0


def test_duplicate_and_missing(client, tokens) -> None:
    h = bearer(tokens["technician"])
    assert client.post("/api/devices", json=RECEIVE, headers=h).status_code == 201
    r = client.post("/api/devices", json=RECEIVE, headers=h)
    assert r.status_code == 409 and "already known" in r.json()["reason"]
    r = client.get("/api/devices/NOPE", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/api/devices", content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_ledger_verify_reports_ok(client, tokens) -> None:
    client.post("/api/devices", json=RECEIVE, headers=bearer(tokens["technician"]))
    body = client.get("/api/ledger/verify", headers=bearer(tokens["auditor"])).json()
    assert body["ok"] is True and body["entries"] == 1 and len(body["head_hash"]) == 64


def test_openapi_is_published(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/devices" in spec["paths"] and "/api/ledger/verify" in spec["paths"]
    assert client.get("/docs").status_code == 200
