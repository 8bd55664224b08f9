"""Receive page journey (technician): a returned laptop with its officer, its role and two media
scanned (a repeated scan kept once), an unknown officer refused on its field with the scans kept;
a medium already recorded on another device warned of, naming it; axe-core and screenshots."""

from __future__ import annotations

import pytest
from harness.browser import check_page, focused_id, log_in, press, scan
from harness.custody_data import officer
from harness.domain import receive
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.intake.views import device_view, get_device
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_receive_with_officer_role_and_media(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    officer(site.ctx, "PC8001")
    log_in(page, "technician1", "/tech/receive")
    check_page(page, "tech-receive-1-form")
    assert focused_id(page) == "f-serial"
    scan(page, "RCV-1")
    scan(page, "AT-RCV-1")
    page.keyboard.type("RCV-1-M1")
    page.locator("#f-media-list").focus()
    for code in ("RCV-1-M2", "RCV-1-M2"):  # the second drive, scanned twice
        scan(page, code)
    page.get_by_label("Returned by officer (staff number)").fill("PC9999")
    page.get_by_label("Received for").select_option("redistribution")
    press(page, "Receive")
    assert "PC9999" in page.locator("#page-error").inner_text()
    assert page.locator("#f-officer").get_attribute("aria-invalid") == "true" and focused_id(page) == "f-officer"
    assert page.locator("#f-serial").input_value() == "RCV-1" and page.locator("#media-list li").count() == 1
    check_page(page, "tech-receive-2-unknown-officer")

    page.get_by_label("Returned by officer (staff number)").fill("PC8001")
    press(page, "Receive")
    assert "Received RCV-1" in page.locator("#page-notice").inner_text()
    assert page.locator("#device-media li").all_inner_texts() == ["RCV-1-M1 (sata-ssd)", "RCV-1-M2 (sata-ssd)"]
    assert page.get_by_label("Received for").input_value() == "redistribution"  # kept for the next scan
    check_page(page, "tech-receive-3-received")
    with session_scope(site.ctx.engine) as s:
        device = get_device(s, "RCV-1")
        receipt = device_view(s, device)["history"][0]
    assert device.role == "redistribution" and receipt["from_custodian"] == "officer:PC8001"


def test_receive_warns_of_a_medium_recorded_on_another_device(tech_page, tech_site) -> None:
    """The disk scanned is already recorded on RCV-OTHER: the device is received (the medium is
    recorded) and the page warns in an alert, naming the other device; no warning otherwise."""
    page, site = tech_page, tech_site
    receive(site.ctx, "RCV-OTHER", media=("SHARED-DISK",))
    log_in(page, "technician1", "/tech/receive")
    scan(page, "RCV-TWIN")
    scan(page, "AT-RCV-TWIN")
    with page.expect_navigation():
        scan(page, "SHARED-DISK")  # Enter in the medium field receives the device
    assert "Received RCV-TWIN" in page.locator("#page-notice").inner_text()
    warning = page.locator("#media-warning")
    assert warning.get_attribute("role") == "alert"
    assert "Medium SHARED-DISK is also recorded on device RCV-OTHER" in warning.inner_text()
    assert page.locator("#device-media li").all_inner_texts() == ["SHARED-DISK (sata-ssd)"]
    assert focused_id(page) == "f-serial"  # ready for the next device
    check_page(page, "tech-receive-4-medium-elsewhere")
    scan(page, "RCV-SINGLE")
    scan(page, "AT-RCV-SINGLE")
    with page.expect_navigation():
        scan(page, "RCV-SINGLE-M1")
    assert "Received RCV-SINGLE" in page.locator("#page-notice").inner_text()
    assert page.locator("#media-warning").count() == 0
