"""WCAG 2.2 AA criteria about what happens, not how a page looks, tried in Debian Chromium:

- 3.3.8 Accessible Authentication (Minimum): the sign-in asks for nothing but a user name and a
  password, both marked for the browser's and a password manager's autofill, and both take a paste;
- 2.4.3 Focus Order after a refused form: focus lands on the field in error, which carries the
  reason (aria-describedby the alert), or on the alert itself; never somewhere unrelated;
- 4.1.3 Status Messages on the live board: the live regions speak when something new happens (the
  connection comes up, a notice arrives), not on every pushed snapshot;
- 2.5.8 Target Size for what only appears after scanning: each scanned code's Remove button.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from harness.browser import PASSWORD, log_in, new_page, press, scan
from harness.domain import receive
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from sqlmodel import select

from factory.kernel.clock import utc_now
from factory.kernel.db.engine import session_scope
from factory.line.models import LineAgent

pytestmark = pytest.mark.slow  # a real browser against a served site

PROBES = Path(__file__).with_name("wcag_probes.js").read_text(encoding="utf-8")

# Where focus is after a refusal, and whether it is on the error or on a field the error describes.
FOCUS_ON_ERROR = """() => {
  const el = document.activeElement;
  const alert = document.getElementById('page-error');
  const described = (el.getAttribute('aria-describedby') || '').split(/\\s+/).includes('page-error');
  return {id: el.id || el.tagName, onError: el === alert || described,
          invalid: el.getAttribute('aria-invalid'), alertRole: alert && alert.getAttribute('role')};
}"""

# Every change a screen reader would hear from the page's live regions, kept in window.__spoken.
LISTEN = """() => {
  window.__spoken = [];
  const regions = document.querySelectorAll('[aria-live], [role=status], [role=log], [role=alert]');
  const observer = new MutationObserver((records) => records.forEach((r) => {
    const region = r.target.closest ? r.target.closest('[id]') : r.target.parentElement.closest('[id]');
    const added = [...r.addedNodes].map((n) => n.textContent).join(' ');
    window.__spoken.push(`${region ? region.id : '?'}: ${added || r.target.textContent}`);
  }));
  regions.forEach((node) => observer.observe(node, {childList: true, characterData: true, subtree: true}));
  return regions.length;
}"""


def test_sign_in_takes_autofill_and_paste_and_nothing_else(tech_browser, tech_site: Site) -> None:
    with new_page(tech_browser, tech_site.base) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto("/login")
        fields = page.evaluate(
            "[...document.querySelectorAll('form input:not([type=hidden]), form select, form textarea, form img, "
            "form canvas, iframe')].map(el => [el.tagName, el.type || '', el.getAttribute('autocomplete')])"
        )
        assert fields == [["INPUT", "text", "username"], ["INPUT", "password", "current-password"]], fields
        for field, text in (("#f-username", "technician1"), ("#f-password", PASSWORD)):
            page.evaluate("text => navigator.clipboard.writeText(text)", text)
            page.locator(field).focus()
            page.keyboard.press("Control+V")
            assert page.locator(field).input_value() == text, f"{field} refused a paste"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login" not in page.url, page.url  # signed in with the pasted credentials


def _refused_sign_in(page: Any) -> None:
    """Sign in as technician1 with a wrong password, from the keyboard."""
    page.goto("/login")
    page.locator("#f-username").fill("technician1")
    page.locator("#f-password").fill("not the password")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_a_refused_sign_in_puts_focus_on_the_field_with_the_reason(tech_browser, tech_site: Site) -> None:
    with new_page(tech_browser, tech_site.base) as page:
        _refused_sign_in(page)
        focus = page.evaluate(FOCUS_ON_ERROR)
        assert focus == {"id": "f-username", "onError": True, "invalid": "true", "alertRole": "alert"}, focus


def test_a_refused_sign_in_keeps_the_user_name(tech_browser, tech_site: Site) -> None:
    """3.3.7 Redundant Entry: the user name typed is offered again (the password, for security, not)."""
    with new_page(tech_browser, tech_site.base) as page:
        _refused_sign_in(page)
        assert page.locator("#f-username").input_value() == "technician1"


@pytest.mark.parametrize(
    ("path", "typed", "button", "field"),
    [
        ("/tech/issue", {"device_serial": "NOT-ISSUED-1", "accepted_name": "Jane Smith"}, "Issue", "f-device_serial"),
        ("/tech/allocate", {"serial": "NO-SUCH-DEVICE", "holder": "PC0"}, "Allocate", "f-serial"),
        ("/tech/held", {"serial": "NOT-HELD-1", "finding": "nothing"}, "Release to intake", "f-serial"),
    ],
)  # fmt: skip
def test_a_refused_form_puts_focus_on_the_field_in_error(
    tech_page, tech_site: Site, path: str, typed: dict[str, str], button: str, field: str
) -> None:
    log_in(tech_page, "technician1", path)
    for name, text in typed.items():
        tech_page.locator(f"#f-{name}").fill(text)
    press(tech_page, button)
    assert tech_page.locator("#page-error").is_visible()
    focus = tech_page.evaluate(FOCUS_ON_ERROR)
    assert focus["onError"] and focus["alertRole"] == "alert", f"{path}: focus on {focus['id']} after a refusal"
    assert focus["id"] == field, focus


def _notices(ctx, *notices: dict[str, str]) -> None:
    """The bench agent's notices, as the controller stores them."""
    with session_scope(ctx.engine) as s:
        agent = s.exec(select(LineAgent).where(LineAgent.name == "bench-host-7")).first()
        if agent is None:
            agent = LineAgent(name="bench-host-7", run_id="r1", started_at=utc_now(), lease_expires_at=0.0)
        agent.notices = orjson.dumps(notices).decode()
        s.add(agent)


def test_the_live_board_speaks_only_when_something_new_happens(tech_page, tech_site: Site) -> None:
    ctx, page = tech_site.ctx, tech_page
    first = {"at": utc_now(), "message": "port 3 on sw-bench-7 is not mapped to a slot"}
    _notices(ctx, first)
    log_in(page, "technician1", "/board")
    page.locator("#notices li").first.wait_for()
    page.get_by_text("Live · updated").wait_for()
    assert page.evaluate(LISTEN) >= 2  # at least the connection status and the notices log are listened to
    counts = page.evaluate("document.getElementById('counts').textContent")

    receive(ctx, "LIVE-1")  # a new snapshot that changes nothing a live region shows
    page.wait_for_function("text => document.getElementById('counts').textContent !== text", arg=counts)
    assert page.evaluate("window.__spoken") == [], "a push with no news was announced"

    _notices(ctx, first, {"at": utc_now(), "message": "switch sw-bench-7 not answering"})
    page.locator("#notices li").nth(1).wait_for()
    newest = page.locator("#notices li").first.inner_text()  # the board lists notices newest first
    assert newest.endswith("switch sw-bench-7 not answering")
    assert page.evaluate("window.__spoken") == [f"notices: {newest}"], "only the new notice is announced"


def test_scanned_codes_each_have_a_remove_button_big_enough_to_hit(tech_page, tech_site: Site) -> None:
    log_in(tech_page, "technician1", "/tech/pool")
    tech_page.locator("#f-stock-list").focus()
    for code in ("SPARE-A", "SPARE-B", "SPARE-C"):
        scan(tech_page, code)
    removes = tech_page.locator("#stock-list .remove")
    assert removes.count() == 3
    tech_page.evaluate(PROBES)
    assert tech_page.evaluate("window.__wcag.targetSize()") == []
    for box in (removes.nth(i).bounding_box() for i in range(3)):
        assert box is not None and box["width"] >= 24 and box["height"] >= 24, box
