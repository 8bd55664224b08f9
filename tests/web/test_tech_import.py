"""Bulk import as a technician in Chromium: a dry run reports every row (a refused row named with
its line and reason, nothing written), the corrected file imports, a second import of it is
refused row by row; a non-CSV file is refused on its field; axe-core, screenshots."""

from __future__ import annotations

import pytest
from harness.browser import attach, check_page, log_in, press
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from sqlmodel import select

from factory.custody.models import Officer
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site

BAD = b"staff_number,name,team,at_needs\nPC6001,Alice Jones,Response A,screen reader\nPC6002,Bob Smith,,telepathy\n"
GOOD = b"staff_number,name,team,at_needs\nPC6001,Alice Jones,Response A,screen reader\nPC6002,Bob Smith,,none\n"


def _import(page, content: bytes, dry_run: bool, name: str = "officers.csv") -> None:
    page.get_by_label("What the file holds").select_option("officers")
    attach(page, "CSV file", name, content, "text/csv")
    page.get_by_label("Dry run: check every row, import nothing").set_checked(dry_run)
    press(page, "Check and import")


def _officers(site) -> int:
    with session_scope(site.ctx.engine) as s:
        return len(s.exec(select(Officer).where(Officer.staff_number.in_(["PC6001", "PC6002"]))).all())


def test_officers_import_with_a_dry_run(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    log_in(page, "technician1", "/tech/import")
    check_page(page, "tech-import-1-form")
    _import(page, BAD, dry_run=True)
    rows = page.locator("#report tbody tr")
    assert rows.count() == 2 and "OK" in rows.nth(0).inner_text()
    assert "telepathy" in rows.nth(1).inner_text() and "Refused" in rows.nth(1).inner_text()
    assert "1 row(s) refused" in page.locator("#page-error").inner_text() and _officers(site) == 0
    check_page(page, "tech-import-2-dry-run-report")
    _import(page, GOOD, dry_run=True)
    assert "all 2 rows can be imported" in page.locator("#page-notice").inner_text() and _officers(site) == 0
    _import(page, GOOD, dry_run=False)
    assert "Imported 2 officers" in page.locator("#page-notice").inner_text() and _officers(site) == 2
    _import(page, GOOD, dry_run=False)  # the same file again: every row already registered
    assert page.locator("#report tbody tr").filter(has_text="already registered").count() == 2
    _import(page, b"\xff\xfe\x00not text", dry_run=True, name="photo.csv")
    assert "not UTF-8" in page.locator("#page-error").inner_text()
    assert page.locator("#f-file").get_attribute("aria-invalid") == "true"
