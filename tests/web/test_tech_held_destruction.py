"""Held and failed devices, quarantine triage and witnessed destruction, as technicians in
Chromium: scanner input, wrong inputs shown on the page with the field marked and nothing lost,
the witness on their own login, axe-core on every page, screenshots under test-artifacts/."""

from __future__ import annotations

import pytest
from harness.audit_data import failed_device
from harness.browser import attach, check_page, focused_id, log_in, new_page, page_error, press, scan
from harness.custody_data import PNG
from harness.domain import move, receive
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.kernel.lifecycle.states import Event

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_held_devices_and_quarantine_triage(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    move(site.ctx, receive(site.ctx, "HELD-Q1"), Event.QUARANTINE)
    failed_device(site.ctx, "HELD-F1", "verification read back non-zero blocks")
    log_in(page, "technician1", "/tech/held")
    rows = page.locator("#held tbody tr")
    assert "HELD-Q1" in rows.nth(0).inner_text() and "release it to intake" in rows.nth(0).inner_text()
    assert "new erase round" in rows.nth(1).inner_text()
    check_page(page, "tech-held-1-list")

    # An unknown serial: the reason is shown, tied to the serial field, and the finding is kept.
    assert focused_id(page) == "f-serial"
    scan(page, "NO-SUCH-1")
    page.keyboard.type("label was missing")
    press(page, "Release to intake")
    assert "NO-SUCH-1" in page_error(page)
    serial = page.locator("#f-serial")
    assert serial.get_attribute("aria-invalid") == "true" and "page-error" in serial.get_attribute("aria-describedby")
    assert page.locator("#f-finding").input_value() == "label was missing"
    check_page(page, "tech-held-2-unknown-serial")

    # Out of order: a failed erase cannot be released by triage.
    page.locator("#f-serial").fill("HELD-F1")
    press(page, "Release to intake")
    assert "triage" in page_error(page) and site.state("HELD-F1") == "sanitise_failed"

    page.locator("#f-serial").fill("HELD-Q1")
    press(page, "Release to intake")
    assert "HELD-Q1 released to intake" in page.locator("#page-notice").inner_text()
    assert site.state("HELD-Q1") == "received"


def test_destruction_is_requested_by_one_technician_and_witnessed_by_another(
    tech_page, tech_site, tech_browser
) -> None:
    page, site = tech_page, tech_site
    failed_device(site.ctx, "HELD-F2", "erase outcome unknown")
    log_in(page, "technician1", "/tech/held")
    # Destruction of the failed device: requested by technician1 ...
    with page.expect_navigation():
        page.get_by_role("link", name="Request destruction of HELD-F2").click()
    assert page.locator("#f-serial").input_value() == "HELD-F2"
    page.get_by_label("Reason").fill("erase failed: drive firmware refuses sanitize")
    page.get_by_role("button", name="Request destruction").click()  # no evidence: the browser holds the form
    assert page.locator("#f-evidence").evaluate("el => !el.validity.valid")
    assert page.locator("#f-reason").input_value().startswith("erase failed")  # nothing lost
    attach(page, "Evidence (photo or PDF)", "drive.png", PNG)
    press(page, "Request destruction")
    assert "another technician witnesses it" in page.locator("#page-notice").inner_text()
    assert page.get_by_role("button", name="Witness destruction of HELD-F2").count() == 0  # not by the requester
    check_page(page, "tech-destruction-1-requested")

    # ... a second request for the same device is refused (duplicate) ...
    page.locator("#f-serial").fill("HELD-F2")
    page.get_by_label("Reason").fill("again")
    attach(page, "Evidence (photo or PDF)", "drive.png", PNG)
    press(page, "Request destruction")
    assert "awaiting a witness" in page_error(page)

    # ... and witnessed by technician2 on their own login.
    with new_page(tech_browser, site.base) as second:
        log_in(second, "technician2", "/tech/destruction")
        second.get_by_role("button", name="Witness destruction of HELD-F2").focus()
        with second.expect_navigation():
            second.keyboard.press("Enter")
        assert "witnessed and recorded" in second.locator("#page-notice").inner_text()
        check_page(second, "tech-destruction-2-witnessed")
    assert site.state("HELD-F2") == "destroyed"


def test_a_courier_has_no_technician_pages(tech_page) -> None:
    log_in(tech_page, "courier1", "/courier/consignments")
    for path in ("/tech/held", "/tech/destruction"):
        response = tech_page.goto(path)
        assert response is not None and response.status == 403, path
