"""Technician issue and swap pages, error handling and page security headers (in-process client)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from harness.custody_data import PNG, allocated, officer, officer_with_device, pooled, ready
from harness.domain import state_of
from harness.web import (  # noqa: F401 (cheap_password_hashing: autouse fixture)
    cheap_password_hashing,
    login,
    make_users,
)

from api.app import create_app
from factory.custody.models import AcceptanceRecord
from factory.kernel.db.engine import session_scope
from factory.kernel.ledger.verify import verify_ledger


@pytest.fixture
def tech(ctx):
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c, login(c, "technician1")


def swap_form(ctx, csrf: str, staff_number: str, faulty: str, spare: str, fault: str) -> dict[str, str]:
    """The walk-in swap form for an officer's issued device and a spare from the contingency pool."""
    officer_with_device(ctx, staff_number, faulty)
    pooled(ctx, spare)
    return {"csrf_token": csrf, "staff_number": staff_number, "faulty_serial": faulty, "spare_serial": spare,
            "fault": fault, "accepted_name": "Jane Smith"}  # fmt: skip


def test_issue_exchanges_the_old_device_in_one_step(ctx, tech) -> None:
    client, csrf = tech
    officer_with_device(ctx, "PC3001", "OLD-1")
    allocated(ctx, "NEW-1", "PC3001")
    entries_before = verify_ledger(ctx.engine).entries
    form = {"csrf_token": csrf, "device_serial": "NEW-1", "old_serial": "OLD-1", "accepted_name": "Jane Smith"}

    r = client.post("/tech/issue", data={**form, "pin": "0000"})
    assert r.status_code == 409 and "PIN does not match" in r.text
    assert 'value="NEW-1"' in r.text  # the form keeps what was scanned
    assert verify_ledger(ctx.engine).entries == entries_before and state_of(ctx, "NEW-1") == "allocated"

    r = client.post("/tech/issue", data={**form, "pin": "4321"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/tech/issue?issued=NEW-1"
    assert state_of(ctx, "NEW-1") == "issued" and state_of(ctx, "OLD-1") == "returned"
    assert verify_ledger(ctx.engine).entries == entries_before + 2
    page = client.get(r.headers["location"])
    assert "Issued NEW-1 to officer:PC3001" in page.text


def test_issue_without_an_allocation_or_exchange_is_refused(ctx, tech) -> None:
    client, csrf = tech
    officer(ctx, "PC3002", pin="4321")
    ready(ctx, "LOOSE-1")
    r = client.post("/tech/issue", data={"csrf_token": csrf, "device_serial": "LOOSE-1", "pin": "4321",
                                         "accepted_name": "Jane Smith"})  # fmt: skip
    assert r.status_code == 404 and "no open in-person allocation" in r.text
    allocated(ctx, "NEW-2", "PC3002")
    r = client.post("/tech/issue", data={"csrf_token": csrf, "device_serial": "NEW-2", "pin": "4321",
                                         "accepted_name": "Jane Smith"})  # fmt: skip
    assert r.status_code == 409 and "only in exchange" in r.text
    r = client.post("/tech/issue", data={"csrf_token": csrf, "device_serial": "NEW-2", "approval": "12x"})
    assert r.status_code == 422 and "whole number" in r.text


def test_walk_in_swap_with_a_signature_image(ctx, tech) -> None:
    client, csrf = tech
    form = swap_form(ctx, csrf, "PC3003", "FAULTY-1", "SPARE-1", "cracked screen")
    r = client.post("/tech/swap", data=form)
    assert r.status_code == 422 and "either a signature or a PIN" in r.text
    r = client.post("/tech/swap", data=form, files={"signature": ("sig.png", PNG, "image/png")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert state_of(ctx, "SPARE-1") == "issued" and state_of(ctx, "FAULTY-1") == "returned"
    with session_scope(ctx.engine) as s:
        assert s.get(AcceptanceRecord, 2).method == "signature"  # 1: the first issue (PIN), 2: this swap
    assert "Swap recorded: SPARE-1 is now issued" in client.get(r.headers["location"]).text


def test_a_signature_that_is_not_an_image_is_refused(ctx, tech) -> None:
    client, csrf = tech
    form = swap_form(ctx, csrf, "PC3004", "FAULTY-2", "SPARE-2", "no power")
    r = client.post("/tech/swap", data=form, files={"signature": ("sig.png", b"MZ\x90\x00 not a png", "image/png")})
    assert r.status_code == 422 and "not a valid image/png" in r.text
    assert state_of(ctx, "SPARE-2") == "ready"


def test_pages_send_strict_security_headers_and_load_nothing_remote(ctx, tech) -> None:
    client, _csrf = tech
    page = client.get("/tech/receive")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/scan.js").status_code == 200 and client.get("/static/app.css").status_code == 200


def test_receive_errors_keep_the_form_and_say_why(ctx, tech) -> None:
    client, csrf = tech
    r = client.post("/tech/receive", data={"csrf_token": csrf, "serial": "  ", "kind": "toaster", "make": "HP"})
    assert r.status_code == 422 and "serial must not be empty" in r.text and 'value="HP"' in r.text
    r = client.post("/tech/receive", data={"csrf_token": csrf, "serial": "K-1", "kind": "toaster"})
    assert r.status_code == 422 and "kind &#39;toaster&#39; is not one of" in r.text
