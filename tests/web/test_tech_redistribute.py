"""Redistribution to a school as a technician in Chromium: unknown school, a device certified for
internal reuse only (refused by name, scans kept), then the transfer and its note; axe-core on
every page, screenshots under test-artifacts/."""

from __future__ import annotations

import io

import pytest
from harness.browser import check_page, log_in, press, scan
from harness.domain import receive, sanitise
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from pypdf import PdfReader

from factory.custody.service import register_party
from factory.kernel.db.engine import session_scope
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination

pytestmark = pytest.mark.slow  # a real browser against a served site


def _transfer(page, organisation: str, serials: tuple[str, ...]) -> None:
    page.get_by_label("School or organisation reference").fill(organisation)
    page.locator("#f-transfer-list").focus()
    for serial in serials:
        scan(page, serial)
    press(page, "Record the transfer")


def test_redistribution_to_a_school(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    sanitise(site.ctx, receive(site.ctx, "RD-1", ("RD-1-M",)), destination=Destination.EXTERNAL_REUSE)
    sanitise(site.ctx, receive(site.ctx, "RD-INT", ("RD-INT-M",)), destination=Destination.INTERNAL_REUSE)
    with session_scope(site.ctx.engine) as s:
        register_party(s, kind=CustodianKind.SCHOOL, reference="URN-100234", name="Northtown Academy",
                       address="School Lane")  # fmt: skip
    log_in(page, "technician1", "/tech/redistribute")
    check_page(page, "tech-redistribute-1-form")
    _transfer(page, "URN-999", ("RD-1",))
    assert "URN-999" in page.locator("#page-error").inner_text()
    assert page.locator("#f-organisation").get_attribute("aria-invalid") == "true"
    _transfer(page, "URN-100234", ("RD-INT",))
    assert "made for 'internal_reuse'" in page.locator("#page-error").inner_text()
    assert page.locator("#transfer-list li").count() == 2  # RD-1 and RD-INT, both kept
    check_page(page, "tech-redistribute-2-refused")
    page.goto("/tech/redistribute")
    _transfer(page, "URN-100234", ("RD-1",))
    assert "Transfer" in page.locator("#page-notice").inner_text() and site.state("RD-1") == "redistributed"
    with page.expect_download() as download:
        page.locator("#note-link").click()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(download.value.path().read_bytes())).pages)
    assert "RD-1" in text and "Northtown Academy" in text
    check_page(page, "tech-redistribute-3-done")
