"""Allocation and asset labels as a technician in Chromium: scan the device and the holder, the
refusals on the page tied to their field with what was scanned kept (unknown officer, courier
without a wave, the same device twice, unknown serial), then the asset label PDF from the device
card, its Code 128 and QR codes read back with zbarimg; axe-core on every page, screenshots."""

from __future__ import annotations

import subprocess

import pytest
from harness.browser import SHOTS, check_page, focused_id, log_in, press, scan
from harness.custody_data import officer, ready
from harness.requirements import require_tool
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow  # a real browser against a served site


def _allocate(page, serial: str, holder: str, channel: str = "in_person") -> None:
    page.locator("#f-serial").fill(serial)
    page.locator("#f-holder").fill(holder)
    page.get_by_label("How it reaches its holder").select_option(channel)
    press(page, "Allocate")


def _invalid(page, field: str) -> bool:
    element = page.locator(f"#f-{field}")
    return element.get_attribute("aria-invalid") == "true" and "page-error" in element.get_attribute("aria-describedby")


def test_allocate_by_scanning_with_refusals_on_the_page(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    ready(site.ctx, "ALC-1")
    officer(site.ctx, "PC7001")
    log_in(page, "technician1", "/tech/allocate")
    check_page(page, "tech-allocate-1-form")
    assert focused_id(page) == "f-serial"
    scan(page, "ALC-1")
    assert focused_id(page) == "f-holder"
    scan(page, "PC9999")  # Enter moves on to the wave; the officer is unknown
    press(page, "Allocate")
    assert "PC9999" in page.locator("#page-error").inner_text() and _invalid(page, "holder")
    assert focused_id(page) == "f-holder"  # the field to correct has focus
    assert page.locator("#f-serial").input_value() == "ALC-1"  # what was scanned is kept
    check_page(page, "tech-allocate-2-unknown-officer")

    _allocate(page, "ALC-1", "PC7001", channel="courier")
    assert "wave" in page.locator("#page-error").inner_text() and _invalid(page, "wave")
    _allocate(page, "NOPE-7", "PC7001")
    assert "NOPE-7" in page.locator("#page-error").inner_text() and _invalid(page, "serial")

    _allocate(page, "ALC-1", "PC7001")
    assert "ALC-1 allocated" in page.locator("#page-notice").inner_text()
    assert site.state("ALC-1") == "allocated"
    check_page(page, "tech-allocate-3-done")
    _allocate(page, "ALC-1", "PC7001")  # the same device again
    assert "already has open allocation" in page.locator("#page-error").inner_text()


def test_asset_label_from_the_receive_page(tech_page, tech_site) -> None:
    page = tech_page
    log_in(page, "technician1", "/tech/receive")
    scan(page, "LBL-0042")
    scan(page, "AT-4242")
    page.keyboard.type("LBL-0042-M1")  # the medium's Enter receives the device
    with page.expect_navigation():
        page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Print the asset label for LBL-0042 (PDF)")
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    pdf = SHOTS.parent / "labels" / "LBL-0042.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(response.body())
    missing = page.request.get("/tech/labels/NOPE-404")
    assert missing.status == 404 and "NOPE-404" in missing.text()
    require_tool("pdftoppm")  # poppler-utils and zbar-tools read the codes back; CI fails without them
    require_tool("zbarimg")
    subprocess.run(["pdftoppm", "-r", "300", "-png", "-singlefile", str(pdf), str(pdf.with_suffix(""))], check=True)
    codes = subprocess.run(["zbarimg", "-q", str(pdf.with_suffix(".png"))], capture_output=True, text=True).stdout
    assert set(codes.split()) == {"CODE-128:LBL-0042", "QR-Code:SN:LBL-0042;AT:AT-4242"}
