"""A WEEE disposal batch from opening to closing as a technician in Chromium: scanned devices,
the refusals on the page (an EWC code without its asterisk, a certificate made for internal
reuse, the same signature image for both parties, closing before the recycler accounted for every
device) with what was entered kept; laptops with lithium-ion batteries go under the non-hazardous
16 02 14 with no consignment note; taking a device out of an open batch; axe-core on every page,
screenshots."""

from __future__ import annotations

import io

import pytest
from harness.browser import attach, check_page, focused_id, log_in, page_error, press, scan
from harness.custody_data import JPEG, PNG
from harness.domain import receive, sanitise, verifier
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from pypdf import PdfReader

from factory.custody.service import (
    Upload,
    WasteTransfer,
    add_device,
    collect,
    open_batch,
    register_party,
)
from factory.kernel.db.engine import session_scope
from factory.kernel.models.parties import CustodianKind
from imaging.certificate import Destination

pytestmark = pytest.mark.slow  # a real browser against a served site

NOTE = {"transferor_name": "Alex Store", "transferor_address": "Police HQ, Northtown",
        "containment": "1 caged pallet", "place": "Loading bay", "carrier_name": "Green Haulage Ltd",
        "carrier_registration": "CBDU123456", "recycler_permit": "EPR/AB1234CD"}  # fmt: skip


def _seed(ctx) -> None:
    for serial in ("DSP-1", "DSP-2"):
        sanitise(ctx, receive(ctx, serial, (f"{serial}-M",)), destination=Destination.RECYCLING)
    sanitise(ctx, receive(ctx, "DSP-INT", ("DSP-INT-M",)), destination=Destination.INTERNAL_REUSE)
    with session_scope(ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-CO", name="Green Recycling Ltd",
                       address="Unit 4, Industrial Estate")  # fmt: skip


def _open_batch(page) -> None:
    page.get_by_label("Recycler reference").fill("WEEE-CO")
    page.get_by_label("Description of the waste").fill("Waste laptops")
    page.get_by_label("EWC code").fill("16 02 13")  # the hazardous entry without its asterisk: no such code
    page.get_by_label("Your SIC code").fill("84240")
    press(page, "Open batch")
    assert "a hazardous entry is '16 02 13*'" in page.locator("#page-error").inner_text()
    assert page.get_by_label("Description of the waste").input_value() == "Waste laptops"  # kept
    check_page(page, "tech-disposal-1-ewc-refused")
    page.get_by_label("EWC code").fill("16 02 14")  # LED-backlit laptops, lithium-ion batteries: not hazardous
    press(page, "Open batch")


def test_disposal_batch_from_open_to_closed(tech_page, tech_site) -> None:
    page, site = tech_page, tech_site
    _seed(site.ctx)
    log_in(page, "admin1", "/tech/disposal")  # disposal is an administrator's (RBAC)
    check_page(page, "tech-disposal-0-list")
    _open_batch(page)
    for code in ("DSP-1", "DSP-INT", "DSP-2"):
        scan(page, code)
    press(page, "Add the scanned devices")
    assert "made for 'internal_reuse'" in page.locator("#page-error").inner_text()
    assert page.locator("#add-list li").count() == 3  # the scans are kept
    check_page(page, "tech-disposal-2-wrong-certificate")
    page.goto(page.url.removesuffix("/add"))
    for code in ("DSP-1", "DSP-2"):
        scan(page, code)
    press(page, "Add the scanned devices")
    assert site.state("DSP-1") == site.state("DSP-2") == "awaiting_disposal"

    for name, value in NOTE.items():
        page.locator(f"#f-{name}").fill(value)
    page.get_by_label("I confirm the waste management hierarchy was applied").check()
    same = {"name": "sig.png", "mimeType": "image/png", "buffer": PNG}
    page.get_by_label("Transferor's signature (PNG, JPEG or PDF)").set_input_files(same)
    page.get_by_label("Recycler's signature (PNG, JPEG or PDF)").set_input_files(same)
    press(page, "Record collection")
    assert "same image" in page.locator("#page-error").inner_text()
    assert page.get_by_label("Carrier's registration number").input_value() == "CBDU123456"  # kept
    check_page(page, "tech-disposal-3-same-signature")
    page.get_by_label("Transferor's signature (PNG, JPEG or PDF)").set_input_files(same)
    attach(page, "Recycler's signature (PNG, JPEG or PDF)", "theirs.jpg", JPEG, "image/jpeg")
    press(page, "Record collection")
    assert site.state("DSP-1") == "with_recycler"
    with page.expect_download() as download:
        page.locator("#wtn-link").click()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(download.value.path().read_bytes())).pages)
    assert "CBDU123456" in text and "EPR/AB1234CD" in text

    press(page, "Close the batch")  # out of order: the recycler has not accounted for the devices
    assert "not accounted for" in page.locator("#page-error").inner_text()
    page.get_by_label("Certificate reference").fill("RC-2026-1")
    page.get_by_label("Scan each device it accounts for, then Enter").focus()
    for code in ("DSP-1", "DSP-2"):
        scan(page, code)
    press(page, "Record the certificate")
    press(page, "Close the batch")
    assert page.locator("#batch-status").inner_text() == "closed"
    assert site.state("DSP-2") == "disposed"
    check_page(page, "tech-disposal-4-closed")


def test_remove_a_device_from_an_open_batch(tech_page, tech_site) -> None:
    """A device scanned into the wrong batch comes out again while the batch is open (scan, Enter,
    the reason, Enter): an unknown serial and a missing reason are refused on their fields; once
    the batch is collected the control is gone."""
    page, site = tech_page, tech_site
    for serial in ("RMV-1", "RMV-2"):
        sanitise(site.ctx, receive(site.ctx, serial, (f"{serial}-M",)), destination=Destination.RECYCLING)
    keys = verifier(site.ctx)
    with session_scope(site.ctx.engine) as s:
        register_party(s, kind=CustodianKind.RECYCLER, reference="WEEE-RM", name="Remove Recycling Ltd",
                       address="Unit 9, Industrial Estate")  # fmt: skip
        batch_id = open_batch(s, recycler_reference="WEEE-RM", description="Waste laptops", ewc_code="16 02 14",
                              sic_code="84240", actor="admin1").record.id  # fmt: skip
        for serial in ("RMV-1", "RMV-2"):
            add_device(s, batch_id=batch_id or 0, serial=serial, actor="admin1", verifier=keys)
    log_in(page, "admin1", f"/tech/disposal/{batch_id}")
    page.get_by_label("Device to take out").focus()
    scan(page, "NOPE-R1")
    assert focused_id(page) == "f-remove_reason"  # Enter after the scan moves on to the reason
    with page.expect_navigation():
        scan(page, "scanned into the wrong batch")  # typed, then Enter submits
    assert "NOPE-R1" in page_error(page)
    assert page.locator("#f-remove_serial").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Why it comes out").input_value() == "scanned into the wrong batch"  # kept
    check_page(page, "tech-disposal-5-remove-unknown")

    page.get_by_label("Device to take out").fill("")
    page.get_by_label("Device to take out").focus()
    scan(page, "RMV-1")
    page.get_by_label("Why it comes out").fill("")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "needs a reason" in page_error(page) and focused_id(page) == "f-remove_reason"
    assert page.get_by_label("Device to take out").input_value() == "RMV-1"
    with page.expect_navigation():
        scan(page, "wanted for redistribution")
    assert "Device taken out of the batch" in page.locator("#page-notice").inner_text()
    assert page.locator("#devices tbody td.mono").all_inner_texts() == ["RMV-2"]
    assert site.state("RMV-1") == "sanitised" and site.state("RMV-2") == "awaiting_disposal"
    check_page(page, "tech-disposal-6-removed")

    with session_scope(site.ctx.engine) as s:
        transfer = WasteTransfer(**NOTE, hierarchy_declaration=True, transferor_signature=Upload(PNG, "image/png"),
                                 transferee_signature=Upload(JPEG, "image/jpeg"))  # fmt: skip
        collect(s, batch_id=batch_id or 0, transfer=transfer, actor="admin1", site=site.ctx.settings.site_name,
                verifier=keys)  # fmt: skip
    page.goto(f"/tech/disposal/{batch_id}")
    assert page.locator("#batch-status").inner_text() == "collected"
    assert page.locator("#remove-form").count() == 0  # only while the batch is open
