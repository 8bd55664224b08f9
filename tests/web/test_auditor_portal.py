"""The auditor's portal as a report: search with the filters, a certificate read in sections with
the raw signed JSON one click away, the exception report with its waves, and the summary PDF; every
page passes axe-core at WCAG 2.2 AA with 0 violations, and its screenshot is kept."""

from __future__ import annotations

import json

import pytest
from harness.audit_data import failed_device, sanitised_device
from harness.browser import check_page, focused_id, log_in, scan
from harness.courier_data import handed_over, handed_over_days_ago, wave_with_room
from harness.custody_data import officer
from harness.domain import move
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.custody.service import allocate, create_wave
from factory.custody.views import DEFAULT_OVERDUE_DAYS
from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from imaging.certificate import verify_certificate

pytestmark = pytest.mark.slow  # a real browser against a served site


def in_wave_allocation(ctx: AppContext, serial: str, wave: str) -> None:
    """The sanitised device provisioned and allocated to an officer in ``wave``."""
    with session_scope(ctx.engine) as s:
        device_id = get_device(s, serial).id or 0
    for event in (Event.START_PROVISION, Event.PROVISIONED):
        move(ctx, device_id, event)
    staff = officer(ctx, "PC3001")
    with session_scope(ctx.engine) as s:
        create_wave(s, name=wave, cohort="South", target_devices=4)
    with session_scope(ctx.engine) as s:
        allocate(s, serial=serial, actor="technician1", staff_number=staff, wave=wave)


def _search_purges_from_a_day_first_date(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/audit/search?level=purge&outcome=success")
    page.locator("#f-issued_from").fill("01/01/2000")  # dates are typed day first
    page.locator("#f-issued_from").press("Enter")
    page.wait_for_selector("#results")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and "AUD-2" in rows.first.inner_text()
    assert page.locator("#f-issued_from").input_value() == "01/01/2000"
    summary = page.request.get(page.locator("#summary-link").get_attribute("href") or "")
    assert summary.status == 200 and summary.body()[:5] == b"%PDF-"


def test_auditor_reads_a_certificate_as_a_report(tech_page, tech_site) -> None:
    ctx = tech_site.ctx
    _, [cert_id] = sanitised_device(ctx, "AUD-1", ("AUD-1-M",), asset_tag="AT-AUD-1")
    sanitised_device(ctx, "AUD-2", ("AUD-2-M",), purge=True)
    failed_device(ctx, "AUD-3", "read-back found 3 mismatches")
    in_wave_allocation(ctx, "AUD-2", "W-AUD")
    page = tech_page
    log_in(page, "auditor1", "/audit/search")
    assert focused_id(page) == "f-serial"
    scan(page, "AUD-1")
    page.wait_for_selector("#results")
    check_page(page, "auditor-1-search-serial")

    _search_purges_from_a_day_first_date(page)
    check_page(page, "auditor-2-search-level")

    page.goto(f"/audit/certificates/{cert_id}")
    assert "Signature valid" in page.locator("#certificate-verdict").inner_text()
    titles = page.locator("section h2").all_inner_texts()
    assert titles == [
        "Device",
        "Medium",
        "Method and standard",
        "Verification",
        "Validation",
        "People",
        "Custody link and destination",
    ]
    assert "NIST SP 800-88 Rev. 2" in page.locator("#section-method").inner_text()
    assert "AT-AUD-1" in page.locator("#section-device").inner_text()
    check_page(page, "auditor-3-certificate-sections")

    response = page.request.get(page.locator("#raw-json").get_attribute("href") or "")
    envelope = json.loads(response.text())
    assert verify_certificate(envelope, ctx.site_keys.public_key()).certificate_id == cert_id

    wave_with_room(ctx, "W-LATE", in_person=0)
    late = handed_over(ctx, "W-LATE", "PC3101", "AUD-OLD", "AUD-LATE")
    handed_over_days_ago(ctx, late, DEFAULT_OVERDUE_DAYS + 1)
    page.goto("/audit/exceptions")
    assert page.locator("h1").inner_text() == "Exception report"
    assert "read-back found 3 mismatches" in page.locator("#open-failures").inner_text()  # AUD-3 not re-erased
    assert f"{late}\t—\tOverdue\thanded over" in page.locator("#consignments").inner_text()  # no device named
    check_page(page, "auditor-4-exceptions")

    page.goto("/audit/waves/W-AUD")
    assert "AUD-2" in page.locator("#wave-devices").inner_text()
    check_page(page, "auditor-5-wave")
    wave_pdf = page.request.get(page.locator("#wave-pdf").get_attribute("href") or "")
    assert wave_pdf.status == 200 and wave_pdf.body()[:5] == b"%PDF-"

    pdf = page.request.get("/audit/summary.pdf?issued_from=2000-01-01")  # ISO, as the API takes it
    assert pdf.status == 200 and pdf.body()[:5] == b"%PDF-"
    assert page.request.get("/audit/summary.pdf?issued_from=31/02/2026").status == 422  # no such day
    assert page.request.get("/audit/summary.pdf").status == 422  # neither a wave nor a range
