"""The KPI page as a technician in Chromium: the default window, a refresh wave listed, a backwards
window and a malformed date refused on the page with the field marked; axe-core, screenshots."""

from __future__ import annotations

import pytest
from harness.browser import check_page, log_in, press
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import create_wave
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_kpis_over_a_window(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    with session_scope(site.ctx.engine) as s:
        create_wave(s, name="WAVE-KPI", cohort="Northtown station", target_devices=40)
    log_in(page, "technician1", "/tech/kpis")
    assert "WAVE-KPI" in page.locator("#waves").inner_text()
    check_page(page, "tech-kpis-1-default-window")
    page.get_by_label("From").fill("2026-03-10")
    page.get_by_label("To (inclusive)").fill("2026-03-01")
    press(page, "Show")
    assert "end after it starts" in page.locator("#page-error").inner_text()
    assert page.locator("#f-end").get_attribute("aria-invalid") == "true"
    check_page(page, "tech-kpis-2-backwards-window")
    page.goto("/tech/kpis?start=last-week")
    assert "not a date" in page.locator("#page-error").inner_text()
    assert page.locator("#f-start").get_attribute("aria-invalid") == "true"
