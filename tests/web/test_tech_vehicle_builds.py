"""Building a new tablet for a vehicle as a technician in Chromium, scanner first: scan the fleet
number, scan the tablet's serial, Enter; the vehicle lists the tablet earmarked for it, the earmark
can be removed; a laptop, an unknown serial and a decommissioned vehicle are refused on the page
with the field marked and the entries kept; axe-core on every page, screenshots under test-artifacts/."""

from __future__ import annotations

import pytest
from harness.browser import check_page, log_in, page_error, press, scan
from harness.domain import receive
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import decommission_vehicle, register_vehicle
from factory.custody.views import vehicle_fleet_number
from factory.intake.views import get_device
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


def _seed(ctx) -> None:
    receive(ctx, "VT-NEW", new_stock=True, kind="vehicle-tablet")
    receive(ctx, "LAP-9", new_stock=True)
    with session_scope(ctx.engine) as s:
        register_vehicle(s, fleet_number="FL-204", registration="AB12 CDE", description="Response car")
        register_vehicle(s, fleet_number="FL-OLD", registration="XY99 ZZZ")
        decommission_vehicle(s, fleet_number="FL-OLD", removed_by="Sam Fitter", actor="tech.one")


def _fleet(ctx, serial: str) -> str | None:
    with session_scope(ctx.engine) as s:
        return vehicle_fleet_number(s, get_device(s, serial).id or 0)


def _row(page, fleet: str):
    return page.locator("#vehicles tbody tr", has_text=fleet)


def test_build_a_new_tablet_for_a_vehicle_by_scanning(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    _seed(site.ctx)
    log_in(page, "technician1", "/tech/vehicles")
    check_page(page, "tech-vehicle-builds-1-form")

    page.locator("#f-build_fleet_number").focus()
    refused = (("LAP-9", "LAP-9 is a laptop, not a vehicle tablet"), ("NOPE-T", "no device with serial NOPE-T"))
    for code, reason in refused:
        page.locator("#f-build_fleet_number").fill("")
        page.locator("#f-build_fleet_number").focus()
        scan(page, "FL-204")  # Enter moves on to the tablet's serial
        with page.expect_navigation():
            scan(page, code)  # Enter submits
        assert reason in page_error(page)
        assert page.locator("#f-build_serial").get_attribute("aria-invalid") == "true"
        assert page.locator("#f-build_fleet_number").input_value() == "FL-204"  # kept
    check_page(page, "tech-vehicle-builds-2-not-a-vehicle-tablet")

    page.locator("#f-build_serial").fill("")
    page.locator("#f-build_serial").focus()
    with page.expect_navigation():
        scan(page, "VT-NEW")
    assert "VT-NEW will be built for vehicle FL-204" in page.locator("#page-notice").inner_text()
    assert _fleet(site.ctx, "VT-NEW") == "FL-204" and site.state("VT-NEW") == "received"
    assert "VT-NEW" in _row(page, "FL-204").inner_text()
    # The next scan goes to the next tablet for the same vehicle.
    assert page.evaluate("document.activeElement.id") == "f-build_serial"
    assert page.locator("#f-build_fleet_number").input_value() == "FL-204"
    check_page(page, "tech-vehicle-builds-3-earmarked")

    page.locator("#f-build_fleet_number").fill("FL-OLD")
    page.locator("#f-build_serial").fill("VT-NEW")
    press(page, "Build for this vehicle")
    assert "vehicle FL-OLD was decommissioned" in page_error(page)
    assert page.locator("#f-build_fleet_number").get_attribute("aria-invalid") == "true"
    assert _fleet(site.ctx, "VT-NEW") == "FL-204"  # the refusal changed nothing

    press(page, "Remove the earmark of VT-NEW")
    assert "VT-NEW is no longer earmarked for vehicle FL-204" in page.locator("#page-notice").inner_text()
    assert _fleet(site.ctx, "VT-NEW") is None and "VT-NEW" not in _row(page, "FL-204").inner_text()
    check_page(page, "tech-vehicle-builds-4-removed")
