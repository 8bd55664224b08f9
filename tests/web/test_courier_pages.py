"""The courier pages in-process (the fast loop; the browser journeys are slow): a refused form
comes back with its reason and everything typed and scanned, and a good one moves on."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from harness.courier_data import courier_allocations, packed, shielded_officer, wave_with_room
from harness.domain import state_of
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)

from api.app import create_app


@pytest.fixture
def courier(ctx):
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c, login(c, "courier1")


def _scanned(html: str, list_id: str) -> list[str]:
    block = html.split(f'id="{list_id}"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<li data-value="([^"]+)">', block)


def test_packing_refused_keeps_the_form_then_saves(ctx, courier) -> None:
    client, csrf = courier
    wave_with_room(ctx, "WC", in_person=0)
    [allocation] = courier_allocations(ctx, ["PK-1"], shielded_officer(ctx, "PC6001"), "WC")
    page = client.get("/courier/consignments/new").text
    assert 'id="cap-WC"' in page and "PK-1" in page
    form = {"csrf_token": csrf, "allocation": [str(allocation)], "courier": "SecureParcel Ltd",
            "recipient_name": "PC Jane Smith", "recipient_address": "3 Mill Lane", "action": "save"}  # fmt: skip
    r = client.post("/courier/consignments/new", data=form)
    assert r.status_code == 422 and "scan the seal number of every bag" in r.text
    assert 'value="3 Mill Lane"' in r.text and f'value="{allocation}" id="a-{allocation}" checked' in r.text
    r = client.post("/courier/consignments/new", data={**form, "seal": ["S-1", "S-1"]})
    assert r.status_code == 422 and "seal S-1 is scanned twice" in r.text
    r = client.post("/courier/consignments/new", data={**form, "seal": ["S-1"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=packed")


def test_hand_over_refused_keeps_the_scans_and_names_what_is_missing(ctx, courier) -> None:
    client, csrf = courier
    wave_with_room(ctx, "WH", in_person=0)
    ref = packed(ctx, courier_allocations(ctx, ["HO-1", "HO-2"], shielded_officer(ctx, "PC6002"), "WH"), ["S-2"])
    url = f"/courier/consignments/{ref}/handover"
    r = client.post(url, data={"csrf_token": csrf, "serial": ["HO-1"], "seal": ["S-2"]})
    assert r.status_code == 409 and "1 of 2 devices not scanned: HO-2" in r.text
    assert _scanned(r.text, "handover-list") == ["HO-1"] and _scanned(r.text, "handover-seal-list") == ["S-2"]
    r = client.post(url, data={"csrf_token": csrf, "serial": ["HO-1", "HO-2"], "seal": ["S-2"]}, follow_redirects=False)
    assert r.status_code == 303 and state_of(ctx, "HO-2") == "in_transit"
    r = client.post(f"/courier/consignments/{ref}/return", data={"csrf_token": csrf})
    assert r.status_code == 409 and "record the failed delivery first" in r.text
