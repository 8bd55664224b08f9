"""Exceptions to the exchange rule on a page, four eyes, in Chromium: a technician asks for one
for a new starter's device (in person) and for a courier delivery (an unknown serial refused on
its field with the reason kept); the technician cannot approve; an administrator approves the
technician's and cannot approve their own; the counter issue then uses the approved exception
once and the page no longer lists it. axe-core on every page, screenshots."""

from __future__ import annotations

from typing import Any

import pytest
from harness.browser import check_page, focused_id, log_in, new_page, page_error, press, scan
from harness.courier_data import courier_allocations, shielded_officer, wave_with_room
from harness.custody_data import allocated, officer
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow  # a real browser against a served site


def _ask(page: Any, serial: str, reason: str) -> None:
    page.get_by_label("Device allocated to the officer").fill("")
    page.get_by_label("Device allocated to the officer").focus()
    scan(page, serial)  # Enter moves on to the reason
    assert focused_id(page) == "f-reason"
    page.get_by_label("Why the officer has no old device to give back").fill(reason)
    press(page, "Ask for the exception")


def _row(page: Any, serial: str) -> str:
    return str(page.locator("#exceptions tbody tr", has_text=serial).inner_text())


def test_exceptions_asked_approved_by_another_user_and_used_once(
    tech_page: Any, tech_browser: Any, tech_site: Site
) -> None:
    ctx, page = tech_site.ctx, tech_page
    officer(ctx, "PC7001", pin="2468")  # a new starter: nothing to give back
    allocated(ctx, "EXC-1", "PC7001")
    allocated(ctx, "EXC-2", "PC7001")
    wave_with_room(ctx, "WEX", in_person=0)
    courier_allocations(ctx, ["EXC-C"], shielded_officer(ctx, "PC7002"), "WEX")
    log_in(page, "technician1", "/tech/exceptions")
    assert page.locator("#exceptions-empty").is_visible()
    check_page(page, "tech-exceptions-1-empty")

    _ask(page, "NOPE-X1", "new starter")
    assert "NOPE-X1" in page_error(page) and focused_id(page) == "f-serial"
    assert page.locator("#f-serial").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Why the officer has no old device to give back").input_value() == "new starter"
    check_page(page, "tech-exceptions-2-unknown-serial")
    _ask(page, "EXC-1", "new starter, first device")
    notice = page.locator("#page-notice").inner_text()
    assert "asked for EXC-1" in notice
    number = notice.split()[1]
    _ask(page, "EXC-C", "new starter, shielding")
    assert "by courier" in _row(page, "EXC-C") and "in person" in _row(page, "EXC-1")
    assert "Waiting for an administrator" in _row(page, "EXC-1")
    assert page.get_by_role("button", name="Approve").count() == 0  # a technician cannot approve
    check_page(page, "tech-exceptions-3-asked")

    with new_page(tech_browser, tech_site.base) as admin:
        log_in(admin, "admin1", "/tech/exceptions")
        with admin.expect_navigation():
            admin.get_by_role("button", name=f"Approve exception {number} for EXC-1").click()
        assert f"Exception {number} approved" in admin.locator("#page-notice").inner_text()
        assert "Approved by admin1" in _row(admin, "EXC-1")
        _ask(admin, "EXC-2", "new starter, second device")
        with admin.expect_navigation():
            admin.get_by_role("button", name="for EXC-2").click()
        assert "needs a second user: admin1 asked for it" in page_error(admin)
        assert "Approve" in _row(admin, "EXC-2")  # still waiting
        check_page(admin, "tech-exceptions-4-own-approval-refused")

    page.goto("/tech/issue")  # the technician issues EXC-1 under the approved exception
    page.get_by_label("Device to issue").fill("EXC-1")
    page.get_by_label("Approved exception number").fill(number)
    page.get_by_label("Officer's name as given").fill("Jane Smith")
    page.get_by_label("Officer's PIN").fill("2468")
    press(page, "Issue")
    assert "Issued EXC-1" in page.locator("#page-notice").inner_text()
    assert tech_site.state("EXC-1") == "issued"
    page.goto("/tech/exceptions")
    assert page.locator("#exceptions tbody tr", has_text="EXC-1").count() == 0  # used, once
    check_page(page, "tech-exceptions-5-used")
