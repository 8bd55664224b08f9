"""Every route of the app x every role (and anonymous) against the intended access table.

The table is explicit and complete: a route the app serves that is not in the table fails the
test (so every new route gets a conscious access decision), and so does a table row for a route
that no longer exists. Beyond the table, the rules the issue names are checked on the table
itself: auditors are read-only, technicians cannot dispose, couriers never reach certificates.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from harness.domain import certify_all, move, receive
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    ROLES,
    cheap_password_hashing,
    login,
    make_users,
)
from starlette.routing import Mount

from api.app import create_app
from factory.kernel.lifecycle.states import Event

PUBLIC = frozenset({"anonymous", *ROLES})  # no login needed
ANY = frozenset(ROLES)  # any logged-in user
TECH = frozenset({"technician", "admin"})
COURIER = frozenset({"courier", "admin"})
AUDIT = frozenset({"auditor", "admin"})
ADMIN = frozenset({"admin"})

EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    # framework and health
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/api-docs-assets"): PUBLIC,  # Swagger UI / ReDoc files, served locally (api/docs.py)
    ("GET", "/metrics"): ANY,
    # devices and ledger
    ("POST", "/api/devices"): TECH,
    ("GET", "/api/devices/{serial}"): ANY,
    ("GET", "/api/ledger/verify"): AUDIT,
    ("GET", "/api/ledger/heads"): AUDIT,
    ("POST", "/api/ledger/heads"): ADMIN,  # signing a head on demand
    ("GET", "/api/ledger/proofs/{ref}"): AUDIT,
    ("GET", "/api/ledger/consistency"): AUDIT,
    # network boot: a booting laptop has no login; the one-time boot token bound to its MAC (and
    # the DHCP lease) is the control, checked by the enrolment itself (tests/netboot)
    ("GET", "/netboot/boot.ipxe"): PUBLIC,
    ("GET", "/netboot/ipxe/{mac}"): PUBLIC,
    ("GET", "/netboot/grub/{mac}"): PUBLIC,  # what the bench's dnsmasq hook fetches for GRUB (Secure Boot)
    ("GET", "/netboot/next/{mac}"): PUBLIC,
    ("GET", "/netboot/files/{name}"): PUBLIC,
    ("POST", "/api/netboot/enrol"): PUBLIC,
    # custody: reference data and four-eyes approvals are admin work
    ("POST", "/api/custody/officers"): ADMIN,
    ("POST", "/api/custody/vehicles"): ADMIN,
    ("POST", "/api/custody/parties"): ADMIN,
    ("POST", "/api/custody/waves"): ADMIN,
    ("GET", "/api/custody/waves/{name}/kpis"): ANY,
    ("GET", "/api/custody/benches/kpis"): ANY,
    ("POST", "/api/custody/allocations"): TECH,
    ("POST", "/api/custody/allocations/{allocation_id}/release"): TECH,
    ("POST", "/api/custody/exceptions"): TECH,
    ("POST", "/api/custody/exceptions/{approval_id}/approve"): ADMIN,
    ("POST", "/api/custody/allocations/{allocation_id}/issue"): TECH,
    ("POST", "/api/custody/swaps"): TECH,
    ("POST", "/api/custody/allocations/{allocation_id}/install"): TECH,
    ("POST", "/api/custody/vehicles/{fleet_number}/decommission"): TECH,
    ("POST", "/api/custody/vehicles/{fleet_number}/builds"): TECH,
    ("DELETE", "/api/custody/vehicles/{fleet_number}/builds/{serial}"): TECH,
    # the dispatch team packs consignments (as on its page: SAME_STEP below)
    ("POST", "/api/custody/consignments"): COURIER,
    ("POST", "/api/custody/consignments/{reference}/handover"): COURIER,
    ("POST", "/api/custody/consignments/{reference}/delivery"): COURIER,
    ("POST", "/api/custody/consignments/{reference}/failed-delivery"): COURIER,
    # the dispatch team brings a failed delivery back (as on its page: SAME_STEP below)
    ("POST", "/api/custody/consignments/{reference}/return"): COURIER,
    ("GET", "/api/custody/consignment-exceptions"): ANY,
    ("POST", "/api/custody/transfers"): ADMIN,
    ("POST", "/api/custody/disposal-batches"): ADMIN,
    ("POST", "/api/custody/disposal-batches/{batch_id}/devices/{serial}"): ADMIN,
    ("POST", "/api/custody/disposal-batches/{batch_id}/devices/{serial}/remove"): ADMIN,
    ("POST", "/api/custody/disposal-batches/{batch_id}/collect"): ADMIN,
    ("POST", "/api/custody/disposal-batches/{batch_id}/recycler-certificate"): ADMIN,
    ("POST", "/api/custody/disposal-batches/{batch_id}/close"): ADMIN,
    ("POST", "/api/custody/destructions"): TECH,
    ("POST", "/api/custody/destructions/{record_id}/witness"): TECH,
    ("GET", "/api/custody/documents/{document_id}"): ANY,
    # audit (read-only, auditors and admins)
    ("GET", "/api/certificates"): AUDIT,
    ("GET", "/api/certificates/{certificate_id}"): AUDIT,
    ("GET", "/api/certificates/{certificate_id}/verify"): AUDIT,
    ("GET", "/api/certificates/{certificate_id}/pdf"): AUDIT,
    ("GET", "/api/devices/{serial}/history"): AUDIT,
    ("GET", "/api/audit/exceptions"): AUDIT,
    ("GET", "/api/audit/export"): AUDIT,
    # bench line: everyone may watch the line; only technicians act on jobs
    ("GET", "/api/benches"): ANY,
    ("GET", "/api/board"): ANY,
    ("GET", "/api/board/events"): ANY,
    ("GET", "/api/devices"): ANY,
    ("GET", "/api/jobs"): ANY,
    ("GET", "/api/jobs/{job_id}"): ANY,
    ("POST", "/api/jobs/{job_id}/cancel"): TECH,
    ("POST", "/api/jobs/{job_id}/abort"): TECH,
    ("POST", "/api/jobs/{job_id}/retry"): TECH,
    ("GET", "/board"): TECH,
    # web: login and home
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): ANY,
    ("GET", "/"): ANY,
    # web: technicians
    ("GET", "/tech/receive"): TECH,
    ("POST", "/tech/receive"): TECH,
    ("GET", "/tech/swap"): TECH,
    ("POST", "/tech/swap"): TECH,
    ("GET", "/tech/issue"): TECH,
    ("POST", "/tech/issue"): TECH,
    ("GET", "/tech/held"): TECH,
    ("POST", "/tech/held/triage"): TECH,
    ("GET", "/tech/destruction"): TECH,
    ("POST", "/tech/destruction"): TECH,
    ("POST", "/tech/destruction/{record_id}/witness"): TECH,
    ("GET", "/tech/exceptions"): TECH,
    ("POST", "/tech/exceptions"): TECH,
    ("POST", "/tech/exceptions/{approval_id}/approve"): ADMIN,  # four eyes: as over JSON
    ("GET", "/tech/pool"): TECH,
    ("POST", "/tech/pool/stock"): TECH,
    ("POST", "/tech/pool/new"): TECH,
    ("POST", "/tech/pool/withdraw"): TECH,
    ("GET", "/tech/disposal"): ADMIN,
    ("POST", "/tech/disposal"): ADMIN,
    ("GET", "/tech/disposal/{batch_id}"): ADMIN,
    ("POST", "/tech/disposal/{batch_id}/add"): ADMIN,
    ("POST", "/tech/disposal/{batch_id}/remove"): ADMIN,
    ("POST", "/tech/disposal/{batch_id}/collect"): ADMIN,
    ("POST", "/tech/disposal/{batch_id}/account"): ADMIN,
    ("POST", "/tech/disposal/{batch_id}/close"): ADMIN,
    ("GET", "/tech/disposal/{batch_id}/waste-transfer-note"): ADMIN,
    ("GET", "/tech/allocate"): TECH,
    ("POST", "/tech/allocate"): TECH,
    ("GET", "/tech/labels/{serial}"): TECH,
    ("GET", "/tech/redistribute"): TECH,
    ("POST", "/tech/redistribute"): TECH,
    ("GET", "/tech/redistribute/{transfer_id}/note"): TECH,
    ("GET", "/tech/vehicles"): TECH,
    ("POST", "/tech/vehicles/install"): TECH,
    ("POST", "/tech/vehicles/replace"): TECH,
    ("POST", "/tech/vehicles/decommission"): TECH,
    ("POST", "/tech/vehicles/build"): TECH,
    ("POST", "/tech/vehicles/unbuild"): TECH,
    ("GET", "/tech/kpis"): TECH,
    ("GET", "/tech/import"): TECH,
    ("POST", "/tech/import"): TECH,
    ("POST", "/tech/import/media"): TECH,
    # web: couriers
    ("GET", "/courier/consignments"): COURIER,
    ("GET", "/courier/consignments/new"): COURIER,
    ("POST", "/courier/consignments/new"): COURIER,
    ("GET", "/courier/consignments/{reference}"): COURIER,
    ("GET", "/courier/consignments/{reference}/manifest"): COURIER,
    ("POST", "/courier/consignments/{reference}/handover"): COURIER,
    ("POST", "/courier/consignments/{reference}/deliver"): COURIER,
    ("POST", "/courier/consignments/{reference}/failed"): COURIER,
    ("POST", "/courier/consignments/{reference}/return"): COURIER,
    # web: auditors (GET only)
    ("GET", "/audit/search"): AUDIT,
    ("GET", "/audit/devices/{serial}"): AUDIT,
    ("GET", "/audit/certificates/{certificate_id}"): AUDIT,
    ("GET", "/audit/verify"): AUDIT,
    ("GET", "/audit/export"): AUDIT,
    ("GET", "/audit/export/outcomes.csv"): AUDIT,
    ("GET", "/audit/export/bundle"): AUDIT,
    ("GET", "/audit/certificates/{certificate_id}/signed.json"): AUDIT,
    ("GET", "/audit/exceptions"): AUDIT,
    ("GET", "/audit/waves/{wave}"): AUDIT,
    ("GET", "/audit/summary.pdf"): AUDIT,
    # identity administration: admins only (JSON and the admin page)
    ("GET", "/api/users"): ADMIN,
    ("POST", "/api/users/{name}/disable"): ADMIN,
    ("POST", "/api/users/{name}/enable"): ADMIN,
    ("GET", "/api/users/{name}/tokens"): ADMIN,
    ("POST", "/api/users/{name}/tokens"): ADMIN,
    ("POST", "/api/users/{name}/tokens/revoke"): ADMIN,
    ("POST", "/api/tokens/{token_id}/revoke"): ADMIN,
    ("GET", "/api/sessions"): ADMIN,
    ("POST", "/api/sessions/{session_id}/end"): ADMIN,
    ("GET", "/api/locks"): ADMIN,
    ("POST", "/api/locks/unlock"): ADMIN,
    ("GET", "/api/identity/audit"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("GET", "/admin/accounts"): ADMIN,
    ("POST", "/admin/accounts/new"): ADMIN,
    ("POST", "/admin/accounts/password"): ADMIN,
    ("POST", "/admin/users/{name}/disable"): ADMIN,
    ("POST", "/admin/users/{name}/enable"): ADMIN,
    ("POST", "/admin/tokens/{token_id}/revoke"): ADMIN,
    ("POST", "/admin/sessions/{session_id}/end"): ADMIN,
    ("POST", "/admin/locks/unlock"): ADMIN,
}

# One step over JSON and on its page (both POST): the same people may do it either way.
SAME_STEP = [
    ("/api/custody/consignments", "/courier/consignments/new"),
    ("/api/custody/consignments/{reference}/handover", "/courier/consignments/{reference}/handover"),
    ("/api/custody/consignments/{reference}/delivery", "/courier/consignments/{reference}/deliver"),
    ("/api/custody/consignments/{reference}/failed-delivery", "/courier/consignments/{reference}/failed"),
    ("/api/custody/consignments/{reference}/return", "/courier/consignments/{reference}/return"),
    ("/api/custody/exceptions", "/tech/exceptions"),
    ("/api/custody/exceptions/{approval_id}/approve", "/tech/exceptions/{approval_id}/approve"),
    ("/api/custody/disposal-batches/{batch_id}/devices/{serial}/remove", "/tech/disposal/{batch_id}/remove"),
]

# Served paths that are not API/pages by design, checked with a concrete file.
CONCRETE = {"/static": "/static/app.css", "/api-docs-assets": "/api-docs-assets/swagger-ui.css"}
STREAMS = {"/api/board/events"}  # server-sent events: read the status line, then hang up
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _fill(path: str) -> str:
    """A concrete URL: ids that do not exist, so allowed callers get a 4xx from the service."""
    return CONCRETE.get(path) or _PARAM.sub(lambda m: "999999" if m.group(1).endswith("_id") else "NOPE-1", path)


def _served(app) -> dict[tuple[str, str], bool]:
    """(method, path) -> is it a browser page (session cookie) rather than a bearer-token route."""
    out = {}
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, Mount):
            out[("GET", rc.path)] = False
            continue
        page = rc.path in {"/", "/login", "/logout"} or rc.path.split("/")[1] in {
            "tech",
            "courier",
            "audit",
            "board",
            "admin",
        }
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out[(method, rc.path)] = page
    return out


def test_the_table_states_the_issue_rules() -> None:
    for (method, path), allowed in EXPECTED.items():
        if method != "GET" and path not in {"/login", "/logout", "/api/netboot/enrol"}:  # the laptop's own post
            assert "auditor" not in allowed, f"auditors are read-only: {method} {path}"
        if "disposal" in path:
            assert "technician" not in allowed, f"technicians cannot dispose: {method} {path}"
        if "certificate" in path or path.startswith(("/api/audit", "/audit", "/api/devices/{serial}/history")):
            assert "courier" not in allowed, f"couriers never see certificates: {method} {path}"


def test_a_step_is_open_to_the_same_roles_over_json_and_on_its_page() -> None:
    differ = [f"{api}: {sorted(EXPECTED['POST', api])} but {web}: {sorted(EXPECTED['POST', web])}"
              for api, web in SAME_STEP if EXPECTED["POST", api] != EXPECTED["POST", web]]  # fmt: skip
    assert not differ, differ


def test_every_route_is_in_the_table(ctx) -> None:
    served = _served(create_app(ctx))
    missing = sorted(set(served) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(served))
    assert not missing, f"routes without an access decision in EXPECTED: {missing}"
    assert not stale, f"EXPECTED names routes the app no longer serves: {stale}"


def _outcome(status: int, location: str, page: bool) -> str:
    # Pages send a caller without a session to "/login?next=..."; a plain "/login" is where a
    # successful logout lands.
    if page and status in (302, 303, 307) and location.startswith("/login?"):
        return "login"
    if status == 401:
        return "login"
    if status == 403:
        return "forbidden"
    return "allowed"


@pytest.mark.slow  # every route for every role: about a thousand requests
def test_every_route_x_every_role(ctx) -> None:
    tokens = make_users(ctx)
    device_id = receive(ctx, "CERT-1", media=("CERT-1-M1",))
    certify_all_after_start(ctx, device_id)
    app = create_app(ctx)
    served = _served(app)
    clients: dict[str, TestClient] = {}
    csrf: dict[str, str] = {}
    try:
        for who in ("anonymous", *ROLES):
            clients[who] = TestClient(app, raise_server_exceptions=False).__enter__()
            if who != "anonymous":
                csrf[who] = login(clients[who], f"{who}1")
        wrong = []
        # Logging out ends the session, so it goes last.
        for method, path in sorted(served, key=lambda k: (k == ("POST", "/logout"), k)):
            page = served[(method, path)]
            url = _fill(path)
            for who in ("anonymous", *ROLES):
                client = clients[who]
                if page:
                    data = {"csrf_token": csrf[who]} if method == "POST" and who in csrf else None
                    r = client.request(method, url, data=data, follow_redirects=False)
                elif path in STREAMS:
                    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
                    with client.stream(method, url, headers=headers) as r:
                        pass
                else:
                    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
                    body = {} if method != "GET" else None
                    r = client.request(method, url, headers=headers, json=body, follow_redirects=False)
                assert r.status_code < 500, f"{who} {method} {url}: {r.status_code}"
                got = _outcome(r.status_code, r.headers.get("location", ""), page)
                want = (
                    "allowed" if who in EXPECTED[(method, path)] else ("login" if who == "anonymous" else "forbidden")
                )
                if got != want:
                    wrong.append(f"{who:10} {method:4} {path}: expected {want}, got {got} ({r.status_code})")
        assert not wrong, "access differs from the table:\n" + "\n".join(wrong)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)


def certify_all_after_start(ctx, device_id: int) -> None:
    move(ctx, device_id, Event.START_SANITISE)
    certify_all(ctx, device_id)
    move(ctx, device_id, Event.SANITISED)


def test_couriers_never_see_certificate_personal_fields(ctx) -> None:
    """The validator's name exists only inside the signed certificate: no courier response shows it."""
    tokens = make_users(ctx)
    device_id = receive(ctx, "CERT-2", media=("CERT-2-M1",))
    certify_all_after_start(ctx, device_id)  # validator "tech.two" is named only in the certificate
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        auditor = client.get("/api/devices/CERT-2/history", headers={"Authorization": f"Bearer {tokens['auditor']}"})
        assert auditor.status_code == 200
        cert_id = auditor.json()["certificates"][0]["id"]
        detail = client.get(f"/api/certificates/{cert_id}", headers={"Authorization": f"Bearer {tokens['auditor']}"})
        assert "tech.two" in detail.text  # the auditor does see who validated the erase
        h = {"Authorization": f"Bearer {tokens['courier']}"}
        seen = [client.get("/api/devices/CERT-2", headers=h)]
        for url in (f"/api/certificates/{cert_id}", f"/api/certificates/{cert_id}/pdf", "/api/devices/CERT-2/history"):
            r = client.get(url, headers=h)
            assert r.status_code == 403, url
            seen.append(r)
        login(client, "courier1")
        for url in ("/courier/consignments", f"/audit/certificates/{cert_id}", "/audit/devices/CERT-2"):
            seen.append(client.get(url))
        assert seen[0].status_code == 200
        for r in seen:
            assert "tech.two" not in r.text and "envelope" not in r.text, r.url
