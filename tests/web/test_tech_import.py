"""Bulk import as a technician in Chromium: a dry run reports every row (a refused row named with
its line and reason, nothing written), the corrected file imports, a second import of it is
refused row by row; a non-CSV file is refused on its field; devices already in the field are
imported with their officers, and a new laptop is issued in exchange for one; axe-core, screenshots."""

from __future__ import annotations

import json

import pytest
from harness.browser import attach, check_page, focused_id, log_in, page_error, press, scan
from harness.custody_data import allocated, entries
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from sqlmodel import select

from factory.custody.models import Officer
from factory.custody.service import import_csv, register_officer
from factory.kernel.db.engine import session_scope

pytestmark = pytest.mark.slow  # a real browser against a served site

BAD = b"staff_number,name,team,at_needs\nPC6001,Alice Jones,Response A,screen reader\nPC6002,Bob Smith,,telepathy\n"
GOOD = b"staff_number,name,team,at_needs\nPC6001,Alice Jones,Response A,screen reader\nPC6002,Bob Smith,,none\n"


def _import(page, content: bytes, dry_run: bool, name: str = "officers.csv", kind: str = "officers") -> None:
    page.get_by_label("What the file holds").select_option(kind)
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
    assert "1 row refused" in page.locator("#page-error").inner_text() and _officers(site) == 0
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


IN_FIELD = b"serial,asset_tag,kind,make,model,staff_number,media\n"
LAPTOP = b"FLD-1,AT-FLD-1,laptop,Dell,Latitude 5420,PC6101,nvme:NV-FLD-1:512G\n"
IN_FIELD_BAD = IN_FIELD + LAPTOP + b"FLD-2,,tablet,Samsung,Tab S8,PC9999,\n"  # no such officer
IN_FIELD_GOOD = IN_FIELD + LAPTOP + b"FLD-2,,tablet,Samsung,Tab S8,PC6102,\n"


def test_devices_in_the_field_import_with_their_officers(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    with session_scope(site.ctx.engine) as s:
        for staff_number in ("PC6101", "PC6102"):
            register_officer(s, staff_number=staff_number, name="Field Officer", team="Response C", pin="4321")
    log_in(page, "technician1", "/tech/import")
    _import(page, IN_FIELD_BAD, dry_run=True, name="in-field.csv", kind="devices")
    assert page.locator("#report thead").inner_text().split("\t")[1].strip() == "Serial"
    rows = page.locator("#report tbody tr")
    assert rows.count() == 2 and "OK" in rows.nth(0).inner_text()
    assert "no officer with staff number PC9999" in rows.nth(1).inner_text()
    assert "1 row refused" in page.locator("#page-error").inner_text()
    assert page.get_by_label("What the file holds").input_value() == "devices"  # the choice is kept
    check_page(page, "tech-import-3-devices-refused")
    _import(page, IN_FIELD_GOOD, dry_run=False, name="in-field.csv", kind="devices")
    notice = page.locator("#page-notice").inner_text()
    assert "Imported 2 devices" in notice and "issued in exchange for it" in notice
    assert site.state("FLD-1") == "issued" and site.state("FLD-2") == "issued"
    check_page(page, "tech-import-4-devices-imported")
    _import(page, IN_FIELD_GOOD, dry_run=True, name="in-field.csv", kind="devices")  # already recorded, row by row
    assert page.locator("#report tbody tr").filter(has_text="already known").count() == 2
    # The first wave: a new laptop is issued at the counter in exchange for the imported one.
    allocated(site.ctx, "FLD-NEW", "PC6101")
    page.goto("/tech/issue")
    scan(page, "FLD-NEW")
    scan(page, "FLD-1")
    page.get_by_label("Officer's name as given").fill("Field Officer")
    page.get_by_label("Officer's PIN").fill("4321")
    press(page, "Issue")
    assert "Issued FLD-NEW" in page.locator("#page-notice").inner_text()
    assert site.state("FLD-NEW") == "issued" and site.state("FLD-1") == "returned"


def test_media_of_a_device_imported_without_them_are_scanned_in(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    with session_scope(site.ctx.engine) as s:
        register_officer(s, staff_number="PC6201", name="Field Officer", team="Response C")
        text = IN_FIELD.decode() + "FLD-T1,,tablet,Samsung,Tab S8,PC6201,\n"
        assert import_csv(s, kind="devices", text=text, dry_run=False, actor="technician1").kept
    log_in(page, "technician1", "/tech/import")
    page.get_by_label("Medium type").select_option("emmc")
    page.get_by_label("Device serial").focus()
    scan(page, "FLD-NOPE")  # Enter moves on to the medium
    with page.expect_navigation():
        scan(page, "EM-FLD-T1")
    assert "no device with serial FLD-NOPE" in page_error(page)
    assert page.locator("#f-serial").get_attribute("aria-invalid") == "true" and focused_id(page) == "f-serial"
    assert page.locator("#f-medium_serial").input_value() == "EM-FLD-T1"  # the scans are kept
    check_page(page, "tech-import-5-media-refused")
    page.locator("#f-serial").fill("")
    scan(page, "FLD-T1")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # on the medium scanned before
    assert "Media recorded for FLD-T1" in page.locator("#page-notice").inner_text()
    check_page(page, "tech-import-6-media-recorded")
    last = entries(site.ctx, "FLD-T1")[-1]
    assert (last.event, last.actor, json.loads(last.evidence)["media"]) == (
        "record_media",
        "technician1",
        ["EM-FLD-T1"],
    )
    page.get_by_label("Device serial").fill("FLD-T1")  # once only: its media are recorded now
    page.get_by_label("Storage medium serial").fill("EM-OTHER")
    press(page, "Record the media")
    assert "FLD-T1 is not awaiting its media" in page_error(page)
