"""The KPI page as a technician in Chromium: the default window, a refresh wave listed, dates typed
day first (dd/mm/yyyy), a backwards window, an impossible date (31/02/2026) and a malformed one
refused on the page with the field marked; axe-core, screenshots."""

from __future__ import annotations

from datetime import UTC

import pytest
from harness.browser import check_page, log_in, press
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import create_wave
from factory.kernel import clock
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_kpis_over_a_window(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    with session_scope(site.ctx.engine) as s:
        create_wave(s, name="WAVE-KPI", cohort="Northtown station", target_devices=40)
    log_in(page, "technician1", "/tech/kpis")
    assert "WAVE-KPI" in page.locator("#waves").inner_text()
    check_page(page, "tech-kpis-1-default-window")
    today = clock.now().astimezone(UTC).date()
    assert page.get_by_label("To (inclusive)").input_value() == today.strftime("%d/%m/%Y")  # shown day first
    assert "h-start" in (page.get_by_label("From").get_attribute("aria-describedby") or "")
    assert "dd/mm/yyyy" in page.locator("#h-start").inner_text()
    _type(page, "From", "10/03/2026")
    _type(page, "To (inclusive)", "1/3/2026")
    press(page, "Show")
    assert "end after it starts" in page.locator("#page-error").inner_text()
    assert page.locator("#f-end").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("From").input_value() == "10/03/2026"  # 10 March, not 3 October
    assert page.get_by_label("To (inclusive)").input_value() == "01/03/2026"
    check_page(page, "tech-kpis-2-backwards-window")
    _type(page, "From", "31/02/2026")
    press(page, "Show")
    assert "31/02/2026 is not a real date" in page.locator("#page-error").inner_text()
    assert page.locator("#f-start").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("From").input_value() == "31/02/2026"  # what was typed is kept
    check_page(page, "tech-kpis-3-impossible-date")
    _type(page, "From", "01/03/2026")
    _type(page, "To (inclusive)", "10/03/2026")
    press(page, "Show")
    assert page.locator("#page-error").count() == 0
    assert (page.get_by_label("From").input_value(), page.get_by_label("To (inclusive)").input_value()) == (
        "01/03/2026", "10/03/2026")  # fmt: skip
    page.goto("/tech/kpis?start=last-week")
    assert "not a date" in page.locator("#page-error").inner_text()
    assert page.locator("#f-start").get_attribute("aria-invalid") == "true"


def _type(page, label: str, text: str) -> None:
    """Clear the field and type into it, key by key, as a person at the bench does."""
    page.get_by_label(label).fill("")
    page.get_by_label(label).press_sequentially(text)
