"""The contingency pool as a technician in Chromium: open a pool, stock spares by scanning (a wrong
scan refused by name with the list kept), swap from the pool at the counter, the board's
low-stock warning, and withdrawing a spare (wrong serial, no reason); axe-core on every page,
screenshots under test-artifacts/."""

from __future__ import annotations

import pytest
from harness.browser import check_page, focused_id, log_in, page_error, press, scan
from harness.custody_data import officer_with_device, ready
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import create_pool, stock_spare
from factory.custody.views import pool_levels
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site


def _listed(page) -> list[str]:
    return page.locator("#stock-list li").evaluate_all(
        "items => items.map(i => i.getAttribute('data-value') || i.textContent.trim())"
    )


def test_pool_stock_swap_and_low_stock_warning(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    for serial in ("POOL-A", "POOL-B"):
        ready(site.ctx, serial)
    officer_with_device(site.ctx, "PC5001", "POOL-OLD", pin="4321")
    log_in(page, "technician1", "/tech/pool")
    assert page.locator("#pools-empty").is_visible()

    page.get_by_label("Warn at or below").fill("a few")
    press(page, "Open pool")
    assert "whole number" in page.locator("#page-error").inner_text()
    assert page.locator("#f-low_stock_level").get_attribute("aria-invalid") == "true"
    page.get_by_label("Warn at or below").fill("1")
    press(page, "Open pool")
    assert "pool of laptop devices opened" in page.locator("#page-notice").inner_text()

    # Scanning: a repeat is kept once; an unknown serial refuses the lot by name and the list stays.
    assert focused_id(page) == "f-stock-list"
    for code in ("POOL-A", "POOL-A", "NOPE-9", "POOL-B"):
        scan(page, code)
    assert _listed(page) == ["POOL-A", "NOPE-9", "POOL-B"]
    press(page, "Stock the scanned spares")
    assert "NOPE-9" in page.locator("#page-error").inner_text()
    assert _listed(page) == ["POOL-A", "NOPE-9", "POOL-B"]  # nothing lost
    check_page(page, "tech-pool-1-wrong-scan")
    page.goto("/tech/pool")
    for code in ("POOL-A", "POOL-B"):
        scan(page, code)
    press(page, "Stock the scanned spares")
    assert "Stocked 2 spares" in page.locator("#page-notice").inner_text()
    assert "OK" in page.locator("#pools tbody tr").inner_text()
    check_page(page, "tech-pool-2-stocked")

    # A swap at the counter takes the oldest spare from the pool ...
    page.goto("/tech/swap")
    for code in ("PC5001", "POOL-OLD", "POOL-A"):
        scan(page, code)
    page.keyboard.type("keyboard dead")
    page.get_by_label("Officer's name as given").fill("Jane Smith")
    page.get_by_label("Officer's PIN").fill("4321")
    press(page, "Record swap")
    assert site.state("POOL-A") == "issued"
    check_page(page, "tech-swap-from-pool")

    # ... which leaves one: at the level, so the pool page and the board warn.
    page.goto("/tech/pool")
    assert "Low stock" in page.locator("#pools tbody tr").inner_text()
    page.goto("/board")
    warning = page.locator("#pool-warning")
    assert "1 laptop spare left" in warning.inner_text()
    page.get_by_text("Live · updated").wait_for()
    # No line agent has registered a bench on this site: the section says so rather than stand empty.
    assert page.locator("#benches-empty").is_visible() and page.locator("#benches .bench").count() == 0
    check_page(page, "tech-board-low-stock")


def test_withdraw_a_spare_from_the_pool(tech_page, tech_site) -> None:
    """Withdrawing a spare (found faulty, or wanted elsewhere): an unknown serial and a missing
    reason are refused on their fields with what was typed kept; then the spare leaves the pool."""
    page, site = tech_page, tech_site
    for serial in ("POOL-T1", "POOL-T2"):
        ready(site.ctx, serial, kind="tablet")
    with session_scope(site.ctx.engine) as s:
        create_pool(s, site=site.ctx.settings.site_name, kind="tablet", low_stock_level=0, actor="technician1")
        for serial in ("POOL-T1", "POOL-T2"):
            stock_spare(s, site=site.ctx.settings.site_name, serial=serial, actor="technician1")
    log_in(page, "technician1", "/tech/pool")
    page.get_by_label("Spare serial").focus()
    scan(page, "NOPE-W1")  # Enter moves on to the reason
    assert focused_id(page) == "f-reason"
    page.keyboard.type("screen cracked")
    press(page, "Withdraw")
    assert "NOPE-W1" in page_error(page)
    assert page.locator("#f-withdraw_serial").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Reason").input_value() == "screen cracked"  # nothing lost
    check_page(page, "tech-pool-3-withdraw-unknown")

    page.get_by_label("Spare serial").fill("POOL-T1")
    page.get_by_label("Reason").fill("")
    press(page, "Withdraw")
    assert "needs a reason" in page_error(page)
    assert page.locator("#f-reason").get_attribute("aria-invalid") == "true" and focused_id(page) == "f-reason"
    assert page.get_by_label("Spare serial").input_value() == "POOL-T1"
    page.keyboard.type("screen cracked")
    press(page, "Withdraw")
    assert "POOL-T1 withdrawn from the pool" in page.locator("#page-notice").inner_text()
    tablets = page.locator("#pools tbody tr", has_text="tablet")
    assert tablets.locator("td").all_inner_texts()[1] == "1" and "POOL-T1" not in tablets.inner_text()
    check_page(page, "tech-pool-4-withdrawn")
    with session_scope(site.ctx.engine) as s:
        assert [p.spares for p in pool_levels(s, site.ctx.settings.site_name) if p.kind == "tablet"] == [["POOL-T2"]]
