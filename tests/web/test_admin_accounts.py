"""The admins' accounts page in Chromium: add a user (a too-short password refused on its field, a
taken name refused), the token shown once, the new user signs in; reset a password; a technician
is refused the page; axe-core on every page, screenshots."""

from __future__ import annotations

import pytest
from harness.browser import check_page, log_in, new_page, press
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow  # a real browser against a served site

GOOD = "a long enough pass phrase"


def _add(page, name: str, password: str) -> None:
    page.locator("#f-name").fill(name)
    page.get_by_label("Role").select_option("technician")
    page.locator("#f-password").fill(password)
    press(page, "Add user")


def test_admin_adds_a_user_and_resets_a_password(tech_page, tech_site, tech_browser) -> None:
    page = tech_page
    log_in(page, "admin1", "/admin/accounts")
    check_page(page, "admin-accounts-1-form")
    _add(page, "new.tech", "short")
    assert "password" in page.locator("#page-error").inner_text()
    assert page.locator("#f-password").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-name").input_value() == "new.tech"  # kept; the password never is
    _add(page, "new.tech", GOOD)
    assert "User new.tech (technician) added" in page.locator("#page-notice").inner_text()
    assert page.locator("#token-value").inner_text().strip()
    check_page(page, "admin-accounts-2-added")
    _add(page, "new.tech", GOOD)
    assert "already exists" in page.locator("#page-error").inner_text()

    page.locator("#f-reset_name").fill("new.tech")
    page.locator("#f-new_password").fill(GOOD + " two")
    press(page, "Reset password")
    assert "Password of new.tech reset" in page.locator("#page-notice").inner_text()
    with new_page(tech_browser, tech_site.base) as second:
        log_in(second, "new.tech", "/tech/receive", password=GOOD + " two")
        response = second.goto("/admin/accounts")
        assert response is not None and response.status == 403
