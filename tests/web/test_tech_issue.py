"""The issue page as a technician in Chromium: one-for-one exchange with the officer's PIN; an
unknown serial, a wrong PIN and a missing old device are refused on the page with the scans kept;
axe-core on every page, screenshots."""

from __future__ import annotations

import pytest
from harness.browser import check_page, focused_id, log_in, press, scan
from harness.custody_data import allocated, officer_with_device
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow  # a real browser against a served site


def _issue(page, new: str, old: str, pin: str) -> None:
    page.locator("#f-device_serial").fill(new)
    page.locator("#f-old_serial").fill(old)
    page.get_by_label("Officer's name as given").fill("Jane Smith")
    page.get_by_label("Officer's PIN").fill(pin)
    press(page, "Issue")


def test_issue_in_exchange(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    officer_with_device(site.ctx, "PC9101", "ISS-OLD", pin="4321")
    allocated(site.ctx, "ISS-NEW", "PC9101")
    log_in(page, "technician1", "/tech/issue")
    check_page(page, "tech-issue-1-form")
    assert focused_id(page) == "f-device_serial"
    scan(page, "ISS-NEW")
    assert focused_id(page) == "f-old_serial"
    _issue(page, "ISS-NOPE", "ISS-OLD", "4321")
    assert "ISS-NOPE" in page.locator("#page-error").inner_text()
    _issue(page, "ISS-NEW", "", "4321")
    assert "exchange" in page.locator("#page-error").inner_text()
    assert page.locator("#f-old_serial").get_attribute("aria-invalid") == "true"
    _issue(page, "ISS-NEW", "ISS-OLD", "0000")
    assert "PIN" in page.locator("#page-error").inner_text()
    assert page.locator("#f-pin").get_attribute("aria-invalid") == "true" and focused_id(page) == "f-pin"
    assert page.locator("#f-device_serial").input_value() == "ISS-NEW"  # the scans are kept
    assert page.locator("#f-old_serial").input_value() == "ISS-OLD"
    check_page(page, "tech-issue-2-wrong-pin")
    assert site.state("ISS-NEW") == "allocated" and site.state("ISS-OLD") == "issued"
    _issue(page, "ISS-NEW", "ISS-OLD", "4321")
    assert "Issued ISS-NEW" in page.locator("#page-notice").inner_text()
    assert site.state("ISS-NEW") == "issued" and site.state("ISS-OLD") == "returned"
    check_page(page, "tech-issue-3-issued")
