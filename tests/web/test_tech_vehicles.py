"""In-vehicle tablets as a technician in Chromium: install an allocated tablet, replace a faulty one
(out and in, in one step), decommission the vehicle; unknown and unallocated tablets, a tablet not
in that vehicle and a second decommission are refused on the page with the entries kept; axe-core
on every page, screenshots under test-artifacts/."""

from __future__ import annotations

import orjson
import pytest
from harness.browser import check_page, log_in, page_error, press, scan
from harness.custody_data import ready
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from sqlmodel import select

from api.web.forms import day_first
from factory.custody.service import allocate, register_vehicle
from factory.kernel import clock
from factory.kernel.db.engine import session_scope
from factory.kernel.models.custody_entry import CustodyEntry

pytestmark = pytest.mark.slow  # a real browser against a served site


def _seed(ctx) -> None:
    for serial in ("VT-A", "VT-B", "VT-C"):
        ready(ctx, serial, kind="vehicle-tablet")
    with session_scope(ctx.engine) as s:
        register_vehicle(s, fleet_number="FL-1", registration="AB12 CDE", description="Response car")
        for serial in ("VT-A", "VT-B"):
            allocate(s, serial=serial, fleet_number="FL-1", actor="tech.one")


def _installed_on(ctx, serial: str) -> str:  # type: ignore[no-untyped-def]
    with session_scope(ctx.engine) as s:
        entry = s.exec(
            select(CustodyEntry).where(CustodyEntry.device_serial == serial, CustodyEntry.event == "install")
        ).one()
        return str(orjson.loads(entry.evidence)["installed_on"])


def test_install_replace_and_decommission(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    _seed(site.ctx)
    log_in(page, "technician1", "/tech/vehicles")
    check_page(page, "tech-vehicles-1-form")
    for wrong, reason in (("NOPE-T", "NOPE-T"), ("VT-C", "not allocated to a vehicle")):
        page.locator("#f-tablet_serial").fill(wrong)
        page.get_by_label("Installer", exact=True).fill("Sam Fitter")
        page.get_by_label("Installing contractor").fill("Fleet Fit Ltd")
        press(page, "Record installation")
        assert reason in page_error(page)
        assert page.locator("#f-tablet_serial").get_attribute("aria-invalid") == "true"
        assert page.get_by_label("Installing contractor").input_value() == "Fleet Fit Ltd"  # kept
    page.locator("#f-tablet_serial").fill("VT-A")
    assert page.locator("#f-installed_on").input_value() == day_first(clock.now().date())  # today, day first
    page.locator("#f-installed_on").fill("31/02/2026")
    press(page, "Record installation")
    assert "Installed on: 31/02/2026 is not a real date (February 2026 has no day 31)" in page_error(page)
    assert page.locator("#f-installed_on").get_attribute("aria-invalid") == "true"
    page.locator("#f-installed_on").fill("01/12/2026")  # 1 December, not 12 January
    press(page, "Record installation")
    assert "VT-A installed" in page.locator("#page-notice").inner_text() and site.state("VT-A") == "installed"
    assert _installed_on(site.ctx, "VT-A") == "2026-12-01"

    page.locator("#f-fleet_number").focus()
    for code in ("FL-1", "VT-C", "VT-B"):
        scan(page, code)
    page.keyboard.type("screen flickers")
    page.get_by_label("Fitter", exact=True).fill("Sam Fitter")
    page.get_by_label("Fitter's contractor").fill("Fleet Fit Ltd")
    press(page, "Record replacement")
    assert "VT-C is not installed in vehicle FL-1" in page_error(page)
    check_page(page, "tech-vehicles-2-wrong-tablet")
    page.locator("#f-faulty_serial").fill("VT-A")
    press(page, "Record replacement")
    assert "VT-A replaced by VT-B" in page.locator("#page-notice").inner_text()
    assert (site.state("VT-A"), site.state("VT-B")) == ("returned", "installed")
    assert "VT-B" in page.locator("#vehicles tbody tr").first.inner_text()

    for _ in range(2):  # the second time is out of order: already decommissioned
        page.locator("#f-retire_fleet_number").fill("FL-1")
        page.get_by_label("Tablets removed by").fill("Sam Fitter")
        press(page, "Decommission")
    assert "already decommissioned" in page_error(page) and site.state("VT-B") == "returned"
    check_page(page, "tech-vehicles-3-decommissioned")
