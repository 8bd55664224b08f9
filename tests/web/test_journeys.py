"""Each user group's main journey, end to end in headless Debian Chromium driven by Playwright.

The real app runs under uvicorn on a free 127.0.0.1 port against a temporary FACTORY_HOME with a
SQLite database; the journeys use only the keyboard where a bench user would (scanner input is
typed text followed by Enter). Screenshots are kept in test-artifacts/screenshots/.
"""

from __future__ import annotations

import zipfile

import pytest
from harness.audit_data import sanitised_device
from harness.browser import SHOTS, assert_labelled, focused_id, log_in, shot
from harness.custody_data import officer
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser (Playwright + Chromium) against a served site


@pytest.fixture(scope="module")
def site(tech_site: Site) -> Site:
    """The served site (harness.tech_site) with an officer and a sanitised device to find."""
    officer(tech_site.ctx, "PC2001", pin="4321")
    sanitised_device(tech_site.ctx, "AUD-1", ("AUD-1-M1",))
    return tech_site


@pytest.fixture
def page(tech_page: object, site: Site) -> object:
    return tech_page


def test_technician_receives_a_device_by_scanning(page, site: Site) -> None:
    log_in(page, "technician1", "/tech/receive")
    assert_labelled(page)
    assert page.get_by_role("link", name="Bench board").is_visible()
    assert focused_id(page) == "f-serial"
    # The scanner types each code and presses Enter: serial -> asset tag -> medium -> submit.
    page.keyboard.type("WEB-SN-1")
    page.keyboard.press("Enter")
    assert focused_id(page) == "f-asset_tag"
    page.keyboard.type("AT-9001")
    page.keyboard.press("Enter")
    assert focused_id(page) == "f-medium_serial"
    page.keyboard.type("WEB-M-1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    notice = page.locator("#page-notice")
    assert notice.inner_text() == "Received WEB-SN-1: now received"
    assert page.locator(".state").inner_text() == "received"
    assert focused_id(page) == "f-serial"  # ready for the next scan
    shot(page, "technician-1-received")
    assert site.state("WEB-SN-1") == "received"

    # Scanning the same device again is refused with the reason, and the scan field is ready again.
    # Enter on an empty optional scan field submits: a serial-only scan needs no extra keys.
    page.keyboard.type("WEB-SN-1")
    page.keyboard.press("Enter")
    assert focused_id(page) == "f-asset_tag"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "already known" in page.locator("#page-error").inner_text()
    assert focused_id(page) == "f-serial"
    assert page.evaluate("document.activeElement.selectionEnd - document.activeElement.selectionStart") == len(
        "WEB-SN-1"
    )
    shot(page, "technician-2-duplicate-refused")


def test_auditor_searches_verifies_and_exports(page, site: Site) -> None:
    log_in(page, "auditor1", "/audit/search")
    assert_labelled(page)
    assert focused_id(page) == "f-serial"
    page.keyboard.type("AUD-1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and "AUD-1-M1" in rows.first.inner_text()
    shot(page, "auditor-1-search")

    with page.expect_download() as csv_download:
        page.locator("#export-link").click()
    csv_path = SHOTS.parent / "auditor-erase-outcomes.csv"
    csv_download.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("outcome,at,device_serial") and len(lines) == 2 and "AUD-1" in lines[1]

    with page.expect_navigation():
        rows.first.get_by_role("link", name="AUD-1").click()
    assert "Every entry re-hashes" in page.locator("#history-verdict").inner_text()
    events = page.locator("#history tbody tr td:nth-child(3)").all_inner_texts()
    assert events == ["receive", "start_sanitise", "sanitised"]
    shot(page, "auditor-2-history")

    with page.expect_download() as zip_download:
        page.locator("#bundle-link").click()
    bundle = SHOTS.parent / "auditor-bundle.zip"
    zip_download.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as zf:
        assert zf.testzip() is None and len(zf.namelist()) > 2

    with page.expect_navigation():
        page.get_by_role("link", name="verified").click()
    assert "Signature valid" in page.locator("#certificate-verdict").inner_text()
    shot(page, "auditor-3-certificate")

    page.get_by_role("link", name="Verify").click()
    page.wait_for_url("**/audit/verify")
    # The verify button takes focus by itself (autofocus), which Chromium applies at a rendering
    # step after the load event: wait for it rather than press Enter into an unfocused page.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'verify-button'")
    with page.expect_navigation(timeout=30_000):  # the whole ledger is verified: slower on a loaded machine
        page.keyboard.press("Enter")
    assert page.locator("#ledger-verdict").inner_text().startswith("Intact:")
    assert "None" in page.locator("#departures-verdict").inner_text()
    shot(page, "auditor-4-verified")

    # Read-only: the auditor has no technician or courier pages.
    response = page.goto("/tech/receive")
    assert response is not None and response.status == 403


def test_technician_sees_the_live_board_with_controller_notices(page, site: Site) -> None:
    """The board renders pushed snapshots, including notices a bench agent stored on its row."""
    import orjson

    from factory.kernel.clock import utc_now
    from factory.line.models import LineAgent

    message = "switch sw-bench-9 not answering: SNMP timeout after 2.0 s"
    with session_scope(site.ctx.engine) as s:
        s.add(
            LineAgent(
                name="bench-host-9", run_id="r1", started_at=utc_now(), lease_expires_at=0.0,
                notices=orjson.dumps([{"at": utc_now(), "message": message}]).decode(),
            )
        )  # fmt: skip
    log_in(page, "technician1", "/board")
    page.get_by_text("Live · updated").wait_for()
    notices = page.get_by_role("log")
    notices.get_by_text(message).wait_for()
    assert "bench-host-9" in notices.inner_text()
    assert page.locator("#notices-empty").is_hidden()
    shot(page, "technician-board-notices")


def test_admin_disables_a_user_and_lifts_a_lockout_by_keyboard(page, site: Site) -> None:
    """The admin page: every control labelled and named for its target; Enter on a focused button
    acts, and the notice is announced (role=status)."""
    from factory.identity.service import add_user
    from factory.identity.throttle import ACCOUNT, Kind, fail, key
    from factory.kernel.clock import now

    with session_scope(site.ctx.engine) as s:
        add_user(s, "visitor1", "courier")
        for _ in range(ACCOUNT.lock_at):
            fail(s, [key(Kind.LOGIN_ACCOUNT, "ghost.account")], now())
    log_in(page, "admin1", "/admin/users")
    assert_labelled(page)
    page.get_by_role("button", name="Disable visitor1").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "visitor1 is disabled" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name="Enable visitor1").is_visible()
    page.get_by_role("button", name="Unlock account ghost.account").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "account ghost.account is unlocked" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name="Unlock account ghost.account").count() == 0
    assert "unlock" in page.locator("#trail").inner_text()
    shot(page, "admin-users")
