"""WCAG 2.2 AA success criteria axe-core cannot decide, measured in Debian Chromium on every page the
page tests visit, as the W3C's Understanding documents and ACT rules describe them:

- 2.5.8 Target Size (Minimum): every pointer target's box is 24x24 CSS px, or it is spaced (a 24 px
  circle on it meets no other target), or it is a link inside a sentence;
- 2.4.7 Focus Visible, 2.4.11 Focus Not Obscured, 2.1.2 No Keyboard Trap: Tab walks the page from top
  to bottom and out; each element it reaches looks different focused, with an indicator of 3:1
  against its background (1.4.11), and is not hidden behind other content;
- 1.4.11 Non-text Contrast: form fields' borders 3:1 against the page;
- 1.4.10 Reflow: at 320 CSS px wide (1280 px at 400%) nothing but a data table sticks out sideways;
- 1.4.12 Text Spacing: with the W3C bookmarklet's spacing no text is clipped or spills out of its box;
- 1.4.13 Content on Hover or Focus: no hover or focus tooltips to dismiss.

The probes are tests/web/wcag_probes.js; each failure names the page and the element. Screenshots
at 320 px are kept under test-artifacts/screenshots/ (wcag-320-*) beside the desktop ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from harness.audit_data import sanitised_device
from harness.browser import log_in, new_page, shot
from harness.courier_data import courier_allocations, packed, shielded_officer, wave_with_room
from harness.custody_data import officer
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import open_batch, register_party
from factory.kernel.db.engine import session_scope
from factory.kernel.models.parties import CustodianKind

pytestmark = pytest.mark.slow  # a real browser against a served site, every page at two widths

PROBES = (Path(__file__).with_name("wcag_probes.js")).read_text(encoding="utf-8")
DESKTOP = {"width": 1366, "height": 900}
NARROW = {"width": 320, "height": 720}  # a 1280 px window at 400% zoom
HOME = {"technician": "/tech/receive", "courier": "/courier/consignments", "auditor": "/audit/search",
        "admin": "/admin/users"}  # fmt: skip
NOT_ALLOWED = ("technician", "/courier/consignments/new")  # the "Not allowed" page, signed in
RECORD_IDS = re.compile(r"/(CN-\w+|[0-9a-f-]{36}|\d+)$")  # records' ids: screenshots keep one name per page


def seeded(site: Site) -> dict[str, str]:
    """The records the detail pages show: a sanitised device with its certificate, a consignment."""
    ctx = site.ctx
    _, [cert_id] = sanitised_device(ctx, "WCAG-1", ("WCAG-1-M",), asset_tag="AT-WCAG-1")
    wave_with_room(ctx, "WCAG-W", in_person=3)
    shielded_officer(ctx, "PC7001", old_serial="OLD-WCAG")
    officer(ctx, "PC7002", pin="4321")
    reference = packed(ctx, courier_allocations(ctx, ["WCAG-T1"], "PC7001", "WCAG-W"), seals=["SEAL-WCAG"])
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-WCAG", name="Access Recycling Ltd",
                       address="Unit 1, Industrial Estate")  # fmt: skip
        batch = open_batch(s, recycler_reference="WEEE-WCAG", description="Waste laptops", ewc_code="16 02 13*",
                           sic_code="84240", actor="admin1").record.id  # fmt: skip
    return {"cert": cert_id, "ref": reference, "batch": str(batch)}


def page_list(refs: dict[str, str]) -> list[tuple[str | None, str]]:
    """(role, path) of every page the page tests visit; role None: signed out."""
    tech = ["/board", "/tech/receive", "/tech/issue", "/tech/allocate", "/tech/swap", "/tech/exceptions",
            "/tech/held", "/tech/destruction", "/tech/pool", "/tech/redistribute", "/tech/vehicles",
            "/tech/import", "/tech/kpis"]  # fmt: skip
    audit = ["/audit/search?serial=WCAG-1", "/audit/devices/WCAG-1", f"/audit/certificates/{refs['cert']}",
             "/audit/verify", "/audit/exceptions", "/audit/export", "/audit/waves/WCAG-W"]  # fmt: skip
    courier = ["/courier/consignments", "/courier/consignments/new", f"/courier/consignments/{refs['ref']}"]
    admin = ["/admin/users", "/admin/accounts", "/tech/disposal", f"/tech/disposal/{refs['batch']}"]
    return [
        (None, "/login"),
        NOT_ALLOWED,
        *[("technician", p) for p in tech],
        *[("courier", p) for p in courier],
        *[("auditor", p) for p in audit],
        *[("admin", p) for p in admin],
    ]


@pytest.fixture(scope="module")
def signed_in(tech_browser: Any, tech_site: Site) -> Iterator[dict[str | None, Any]]:
    """One signed-in page per role (and one signed out), shared by every page checked."""
    with ExitStack() as stack:
        pages: dict[str | None, Any] = {None: stack.enter_context(new_page(tech_browser, tech_site.base))}
        for role, home in HOME.items():
            page = stack.enter_context(new_page(tech_browser, tech_site.base))
            log_in(page, f"{role}1", home)
            pages[role] = page
        yield pages


def open_page(page: Any, path: str, viewport: dict[str, int] = DESKTOP) -> None:
    page.set_viewport_size(viewport)
    page.goto(path)
    page.wait_for_load_state("load")
    if path == "/board":
        page.get_by_text("Live").first.wait_for()  # the board is drawn by its first pushed snapshot
    page.evaluate(PROBES)


def probe(page: Any, name: str) -> list[str]:
    return list(page.evaluate(f"window.__wcag.{name}()"))


def keyboard_walk(page: Any) -> list[str]:
    """Tab from the top of the page until focus leaves it; what each stop shows wrong, and a trap."""
    page.evaluate("document.activeElement && document.activeElement.blur()")  # scan.js focuses a field on load
    tabbable = int(page.evaluate("window.__wcag.rememberUnfocused()"))
    first = page.evaluate("window.__wcag.focusFirst()")
    page.keyboard.press("Shift+Tab")  # off the page: the first Tab starts from the top
    problems: list[str] = []
    visited: list[str] = []
    for _ in range(tabbable + 3):
        page.keyboard.press("Tab")
        step = page.evaluate("window.__wcag.focusStep()")
        if not visited and step["at"] != first:
            return [*problems, f"the first Tab reaches {step['at']}, not the first control {first}"]
        if step["at"] is None or (visited and step["key"] == visited[0]):
            return problems  # focus left the page or came round again: no trap
        if step["problem"]:
            problems.append(step["problem"])
        visited.append(step["key"])
    return [*problems, f"keyboard trap: {tabbable + 3} Tabs never left the page (last stops {visited[-3:]})"]


def measured(page: Any, path: str, role: str | None) -> dict[str, list[str]]:
    """Every criterion's problems on one page: desktop first, then 320 px, then text spacing."""
    found = {
        "2.5.8 target size": probe(page, "targetSize"),
        "1.4.11 field border contrast": probe(page, "fieldBorders"),
        "1.4.13 content on hover or focus": probe(page, "hoverContent"),
        "2.4.7/2.4.11/2.1.2 keyboard walk": keyboard_walk(page),
    }
    open_page(page, path, NARROW)
    found["1.4.10 reflow at 320 px"] = probe(page, "reflow")
    found["2.5.8 target size at 320 px"] = probe(page, "targetSize")
    shot(page, f"wcag-320-{role or 'signed-out'}" + RECORD_IDS.sub("/one", path.split("?")[0]).replace("/", "-"))
    open_page(page, path)
    assert page.evaluate("window.__wcag.applyTextSpacing()") != "normal", "the text-spacing styles did not apply"
    found["1.4.12 text spacing"] = probe(page, "clipped")
    return {criterion: problems for criterion, problems in found.items() if problems}


# What the layout offers around every page, in order: the header's links and buttons, and any help
# (a help or contact link, a phone number) anywhere (3.2.3 Consistent Navigation, 3.2.6 Consistent Help).
LAYOUT = """[...document.querySelectorAll('header a, header button, a[href^="mailto:"], a[href^="tel:"]')]
  .concat([...document.querySelectorAll('a')].filter(a => /\\b(help|contact|support)\\b/i.test(a.textContent)))
  .map(el => el.textContent.trim())"""


def test_every_page_meets_the_criteria_axe_cannot_check(tech_site: Site, signed_in: dict[str | None, Any]) -> None:
    refs = seeded(tech_site)
    failures: list[str] = []
    layouts: dict[str | None, dict[tuple[str, ...], str]] = {}
    for role, path in page_list(refs):
        page = signed_in[role]
        open_page(page, path)
        if (role, path) != NOT_ALLOWED:  # test_the_not_allowed_page_keeps_the_navigation
            layouts.setdefault(role, {}).setdefault(tuple(page.evaluate(LAYOUT)), path)
        for criterion, problems in measured(page, path, role).items():
            failures.extend(f"{path} ({role or 'signed out'}) {criterion}: {p}" for p in problems)
    failures.extend(
        f"3.2.3/3.2.6 the {role} pages' header and help differ: {layout}"
        for role, layout in layouts.items()
        if len(layout) > 1
    )
    assert failures == [], "\n" + "\n".join(failures)


def test_the_not_allowed_page_keeps_the_navigation(signed_in: dict[str | None, Any]) -> None:
    """3.2.3 Consistent Navigation: a page refused for the role keeps the header every other page has."""
    page = signed_in[NOT_ALLOWED[0]]
    open_page(page, HOME["technician"])
    header = page.evaluate(LAYOUT)
    open_page(page, NOT_ALLOWED[1])
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.evaluate(LAYOUT) == header
