"""The courier dispatch desk's journeys in Debian Chromium, as the courier role: packing a
consignment (shielding recorded, the cap's headroom checked before saving, seals scanned), the
hand-over scan, delivery with the officer's old device collected, failed delivery and return;
with the wrong inputs (wrong role, unknown serial, a device or seal not scanned, a repeated
scan, a step out of order) shown on the page and nothing scanned or typed lost. Every page
passes axe-core (WCAG 2.2 AA) and is kept as a screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness.browser import attach, check_page, focused_id, log_in, new_page, page_error, press, scan, shot
from harness.courier_data import courier_allocations, packed, shielded_officer, wave_with_room
from harness.custody_data import PNG, issue_first, last_evidence, officer
from harness.domain import verifier
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import approve_exception, hand_over, request_exception
from factory.kernel import clock
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


@pytest.fixture(scope="module")
def refs(tech_site: Site) -> dict[str, str]:
    """Wave WJ with room for one laptop by courier; officers with their old devices; consignments
    for the hand-over/delivery journey and the failed-delivery journey."""
    ctx = tech_site.ctx
    wave_with_room(ctx, "WJ", in_person=3)
    shielded_officer(ctx, "PC3001", old_serial="OLD-J1")
    officer(ctx, "PC3002")  # not yet recorded as shielding: the packing page records it
    courier_allocations(ctx, ["J-LAPTOP"], "PC3001", "WJ", kind="laptop")
    courier_allocations(ctx, ["J-2"], "PC3002", "WJ")
    with_two = packed(ctx, courier_allocations(ctx, ["J-3", "J-4"], "PC3001", "WJ"), seals=["SEAL-J3"])
    shielded_officer(ctx, "PC3003", old_serial="OLD-J5")
    failing = packed(ctx, courier_allocations(ctx, ["J-5"], "PC3003", "WJ"), seals=["SEAL-J5"])
    keys = verifier(ctx)  # outside the unit of work: it may read the key registry
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=failing, scanned_serials=["J-5"], scanned_seals=["SEAL-J5"], actor="courier1",
                  verifier=keys)  # fmt: skip
    issue_first(ctx, "OLD-J3", "PC3001")
    shielded_officer(ctx, "PC3004")  # a new starter: no old device to collect
    [starter] = courier_allocations(ctx, ["J-7"], "PC3004", "WJ")
    new_starter = packed(ctx, [starter], seals=["SEAL-J7"])
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=new_starter, scanned_serials=["J-7"], scanned_seals=["SEAL-J7"], actor="courier1",
                  verifier=keys)  # fmt: skip
    return {"two": with_two, "failing": failing, "new_starter": new_starter, "starter_allocation": str(starter)}


def _listed(page: Any, list_id: str) -> list[str]:
    return page.locator(f"#{list_id} li span").all_inner_texts()


def test_a_technician_cannot_reach_the_dispatch_desk(tech_page: Any, refs: dict[str, str]) -> None:
    log_in(tech_page, "technician1", "/board")
    tech_page.goto("/courier/consignments/new")
    assert tech_page.locator("h1").inner_text() == "Not allowed"
    check_page(tech_page, "courier-0-wrong-role")


def test_courier_packs_a_consignment(tech_page: Any, refs: dict[str, str]) -> None:
    page = tech_page
    log_in(page, "courier1", "/courier/consignments")
    check_page(page, "courier-1-consignments")
    with page.expect_navigation():
        page.locator("#pack-link").click()
    cap = page.locator("#cap-WJ td")
    assert cap.all_inner_texts()[:4] == ["25%", "3", "0", "1"]  # one laptop may still go by courier
    check_page(page, "courier-2-pack-form")

    page.get_by_label("J-LAPTOP").check()
    page.get_by_label("J-2").check()
    page.get_by_label("Courier company").fill("SecureParcel Ltd")
    page.get_by_label("Recipient").first.fill("PC Jo Bloggs")
    page.get_by_label("Delivery address").fill("2 Low Road, Northtown")
    page.locator("#f-seal").focus()
    scan(page, "SEAL-P1")
    scan(page, "SEAL-P1")  # the same bag scanned twice: announced, listed once
    assert _listed(page, "seal-list") == ["SEAL-P1"]
    assert "already in the list" in page.locator("#seal-list-status").inner_text()
    assert focused_id(page) == "f-seal"
    press(page, "Check the cap")
    assert page.locator("#cap-WJ td").all_inner_texts()[4:] == ["1", "0"]  # this consignment takes it, none left
    assert _listed(page, "seal-list") == ["SEAL-P1"] and page.get_by_label("J-2").is_checked()
    check_page(page, "courier-3-cap-checked")

    press(page, "Save consignment")
    assert "PC3002 is not recorded as formally shielding" in page_error(page)
    # nothing lost: ticks, typed fields and scanned seals come back
    assert page.get_by_label("J-LAPTOP").is_checked() and page.get_by_label("J-2").is_checked()
    assert page.get_by_label("Delivery address").input_value() == "2 Low Road, Northtown"
    assert _listed(page, "seal-list") == ["SEAL-P1"]
    check_page(page, "courier-4-pack-refused")

    page.get_by_label("Shielding reference for officer PC3002").fill("OH-2026-0099")
    press(page, "Save consignment")
    assert "Consignment packed" in page.locator("#page-notice").inner_text()
    assert page.locator("#consignment-status").inner_text() == "open"
    assert page.locator("#seals").inner_text() == "SEAL-P1"
    check_page(page, "courier-5-packed")


def test_courier_hands_over_and_delivers_with_the_old_devices(tech_page: Any, tech_site: Site, refs) -> None:
    page, ref = tech_page, refs["two"]
    log_in(page, "courier1", f"/courier/consignments/{ref}")
    assert focused_id(page) == "f-handover"  # ready for the first scan
    with page.expect_download() as download:
        page.locator("#manifest-link").click()
    assert download.value.path().read_bytes().startswith(b"%PDF-")
    page.locator("#f-handover").focus()
    scan(page, "NOPE-1")
    scan(page, "J-3")
    page.locator("#f-handover-seal").focus()
    scan(page, "SEAL-J3")
    press(page, "Record hand-over")
    assert "does not contain NOPE-1" in page_error(page)
    assert _listed(page, "handover-list") == ["NOPE-1", "J-3"] and _listed(page, "handover-seal-list") == ["SEAL-J3"]
    check_page(page, "courier-6-unknown-serial")

    page.get_by_role("button", name="Remove NOPE-1").click()
    assert _listed(page, "handover-list") == ["J-3"] and focused_id(page) == "f-handover"
    press(page, "Record hand-over")
    assert "1 of 2 devices not scanned: J-4" in page_error(page)  # named, and nothing in transit
    assert tech_site.state("J-3") == "allocated"
    page.locator("#f-handover").focus()
    scan(page, "J-4")
    press(page, "Record hand-over")
    assert page.locator("#consignment-status").inner_text() == "in_transit"
    assert tech_site.state("J-3") == tech_site.state("J-4") == "in_transit"
    check_page(page, "courier-7-handed-over")

    assert focused_id(page) == "f-deliver-seal"
    scan(page, "SEAL-J3")
    page.locator("#f-old").focus()
    scan(page, "OLD-J1")
    page.get_by_label("Recipient's name").fill("PC Jane Smith")
    attach(page, "Recipient's signature (PNG, JPEG or PDF)", "signature.png", PNG)
    press(page, "Record delivery")
    assert "PC3001 receives 2 and hands back 1" in page_error(page)
    assert _listed(page, "old-list") == ["OLD-J1"] and _listed(page, "deliver-seal-list") == ["SEAL-J3"]
    assert page.get_by_label("Recipient's name").input_value() == "PC Jane Smith"
    check_page(page, "courier-8-one-for-one-refused")

    page.locator("#f-old").focus()
    scan(page, "OLD-J3")
    attach(page, "Recipient's signature (PNG, JPEG or PDF)", "signature.png", PNG)
    press(page, "Record delivery")
    assert page.locator("#consignment-status").inner_text() == "delivered"
    assert tech_site.state("J-3") == tech_site.state("J-4") == "issued"
    assert tech_site.state("OLD-J1") == tech_site.state("OLD-J3") == "returned"
    old = page.locator("#devices tbody tr td.old-device").all_inner_texts()
    assert sorted(old) == ["OLD-J1", "OLD-J3"]  # which old device came back for which new one
    check_page(page, "courier-9-delivered")


def test_a_new_starter_is_delivered_to_only_under_an_approved_exception(
    tech_page: Any, tech_site: Site, refs: dict[str, str]
) -> None:
    """No old device to collect: refused until a second user approves the exception, which the
    page then shows for the device; the delivery records it."""
    page, ref = tech_page, refs["new_starter"]
    log_in(page, "courier1", f"/courier/consignments/{ref}")
    scan(page, "SEAL-J7")
    page.get_by_label("Recipient's name").fill("PC New Starter")
    attach(page, "Recipient's signature (PNG, JPEG or PDF)", "signature.png", PNG)
    press(page, "Record delivery")
    assert "PC3004 receives 1 and hands back 0" in page_error(page)
    assert page.locator("#devices td.exception").inner_text() == "—"
    with session_scope(tech_site.ctx.engine) as s:
        asked = request_exception(s, allocation_id=int(refs["starter_allocation"]), reason="new starter",
                                  requested_by="technician1").record  # fmt: skip
        approve_exception(s, approval_id=asked.id or 0, approver="admin1")
    page.goto(f"/courier/consignments/{ref}")
    shown = f"exception {asked.id} (new starter), approved by admin1"
    assert page.locator("#devices td.exception").inner_text() == shown
    assert "none needed for J-7, under an approved exception" in page.locator("#h-old").inner_text()
    check_page(page, "courier-9a-exception-approved")
    scan(page, "SEAL-J7")
    page.get_by_label("Recipient's name").fill("PC New Starter")
    # Recorded after the visit: the time of delivery typed day first, 24-hour clock, UK time.
    visit = clock.now().astimezone(ZoneInfo("Europe/London")).replace(second=0, microsecond=0)
    page.get_by_label("Date", exact=True).press_sequentially(visit.strftime("%d/%m/%Y"))
    page.get_by_label("Time", exact=True).press_sequentially(visit.strftime("%H:%M"))
    attach(page, "Recipient's signature (PNG, JPEG or PDF)", "signature.png", PNG)
    press(page, "Record delivery")
    assert page.locator("#consignment-status").inner_text() == "delivered"
    assert last_evidence(tech_site.ctx, "J-7")["delivered_at"] == clock.format_utc(visit)
    assert tech_site.state("J-7") == "issued"
    assert page.locator("#devices td.old-device").inner_text() == "—"
    assert page.locator("#devices td.exception").inner_text() == shown  # the one it went under
    check_page(page, "courier-9b-delivered-under-exception")


def test_a_step_out_of_order_is_refused_on_the_page(tech_browser: Any, tech_site: Site, refs) -> None:
    """Two desks have the same consignment open; one records the hand-over first."""
    ctx = tech_site.ctx
    officer_ref = packed(ctx, courier_allocations(ctx, ["J-6"], "PC3001", "WJ"), seals=["SEAL-J6"])
    with new_page(tech_browser, tech_site.base) as page:
        log_in(page, "courier1", f"/courier/consignments/{officer_ref}")
        keys = verifier(ctx)
        with session_scope(ctx.engine) as s:
            hand_over(s, reference=officer_ref, scanned_serials=["J-6"], scanned_seals=["SEAL-J6"],
                      actor="courier2", verifier=keys)  # fmt: skip
        scan(page, "J-6")
        press(page, "Record hand-over")
        assert "already handed over" in page_error(page)
        assert page.locator("#consignment-status").inner_text() == "in_transit"
        check_page(page, "courier-10-out-of-order")


def test_failed_delivery_and_return_to_the_factory(tech_page: Any, tech_site: Site, refs) -> None:
    page, ref = tech_page, refs["failing"]
    log_in(page, "courier1", f"/courier/consignments/{ref}")
    check_page(page, "courier-11-in-transit")
    page.get_by_label("Why the delivery failed").fill("nobody at home, card left")
    press(page, "Record failed delivery")
    assert "Failed delivery recorded" in page.locator("#page-notice").inner_text()
    assert page.locator("#consignment-status").inner_text() == "failed"
    check_page(page, "courier-12-failed")
    page.get_by_label("Where the devices are put").fill("returns cage 2")
    press(page, "Record return to the factory")
    assert page.locator("#consignment-status").inner_text() == "returned"
    assert tech_site.state("J-5") == "returned"
    shot(page, "courier-13-returned")
