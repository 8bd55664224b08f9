"""The custody PDFs (transfer note, waste transfer note, courier manifest) are tagged and still
invariant: the same input renders to the same bytes (their SHA-256 goes into the ledger), the
structure tree reads the title, the label-value rows and the tables with their real values in
order, every MCID is in the tree and back, and the grids and barcodes in cells draw inside marked
content. Built from the dataclasses directly; the flows that store them are the custody tests'."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness.tagged_pdf import TaggedPdf, pdfinfo, read_tagged

from factory.custody.manifest_pdf import Manifest, ManifestLine, render_manifest
from factory.custody.pdf import (
    Party,
    TransferLine,
    TransferNote,
    WasteTransferNote,
    render_transfer_note,
    render_waste_transfer_note,
)

TRANSFER = TransferNote(
    transfer_id=41,
    site="Hendon device factory",
    organisation_name="Reuse Charity",
    organisation_reference="RC-9",
    organisation_address="1 High Street, London",
    created_at="2026-03-01T10:00:00Z",
    created_by="Sam Patel",
    lines=[TransferLine("SN-T1", "AT-1", "Dell 5440", [("cert-1", "ab" * 32)])],
)
WASTE = WasteTransferNote(
    batch_id=7,
    description="Laptops for recycling",
    ewc_code="16 02 14",
    quantity=2,
    containment="cage",
    transferor=Party("Example Constabulary", "Hendon", "cd" * 32),
    transferee=Party("Recycler Ltd", "Slough", "ef" * 32),
    carrier="Carrier Ltd CBDU123",
    recycler_permit="EPR/AB1234",
    sic_code="84.24",
    hierarchy_declaration=True,
    place="Hendon",
    collected_at="2026-03-02T09:00:00Z",
    contains_batteries=False,
    hazardous_note_reference=None,
    device_serials=["SN-W1", "SN-W2"],
    hazardous=False,
    ewc_entry="discarded equipment other than those mentioned in 16 02 09 to 16 02 13",
)
MANIFEST = Manifest(
    reference="CN-2026-0001",
    site="Hendon device factory",
    courier="Courier Ltd",
    recipient_name="Sgt Jones",
    recipient_address="Colindale station",
    seal_numbers=["SEAL-1"],
    created_at="2026-03-03T08:00:00Z",
    created_by="Sam Patel",
    lines=[ManifestLine("SN-M1", "AT-M1", "laptop", "Dell 5440", "PC Smith")],
)
WASTE_ROWS = {"EWC code": "16 02 14", "Hazardous waste": "No", "Transferor is": "The producer of the waste"}
RENDERERS: dict[str, tuple[Callable[[], bytes], str, dict[str, str]]] = {
    "transfer": (lambda: render_transfer_note(TRANSFER), "Transfer note 41", {"To": "Reuse Charity (RC-9)"}),
    "waste": (lambda: render_waste_transfer_note(WASTE), "Waste transfer note, batch 7", WASTE_ROWS),
    "manifest": (lambda: render_manifest(MANIFEST), "Courier manifest CN-2026-0001", {"Consignment": "CN-2026-0001"}),
}


@pytest.fixture(params=sorted(RENDERERS))
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path, TaggedPdf]:
    render = RENDERERS[request.param][0]
    pdf = render()
    assert render() == pdf  # still invariant: the bytes' SHA-256 is recorded in the ledger
    path = tmp_path / f"{request.param}.pdf"
    path.write_bytes(pdf)
    return request.param, path, read_tagged(path)


def test_custody_pdf_is_tagged_and_invariant(rendered: tuple[str, Path, TaggedPdf]) -> None:
    name, path, pdf = rendered
    _, title, rows = RENDERERS[name]
    assert "Tagged:          yes" in pdfinfo(path)
    assert pdf.reader.root_object["/Lang"] == "en-GB" and pdf.reader.metadata.title == title
    assert pdf.roles("H1") == [("H1", title)] and pdf.elements[1].role == "H1"
    values = pdf.row_values()
    for label, value in rows.items():
        assert values[label] == value
    assert pdf.page_mcids == pdf.tree_mcids and pdf.parent_tree_mismatches == []
    assert pdf.unmarked_painting == []


def test_tables_read_with_their_column_headers(tmp_path: Path) -> None:
    transfer = _cells(render_transfer_note(TRANSFER), tmp_path / "transfer.pdf")
    assert transfer[-8:-1] == ["Serial", "Asset tag", "Make / model", "Sanitisation certificates", "SN-T1", "AT-1",
                               "Dell 5440"]  # fmt: skip
    assert transfer[-1].replace(" ", "") == f"cert-1(SHA-256{'ab' * 32})"  # the digest wraps in its cell
    assert _cells(render_waste_transfer_note(WASTE), tmp_path / "waste.pdf")[-3:] == ["Serial", "SN-W1", "SN-W2"]
    manifest = _cells(render_manifest(MANIFEST), tmp_path / "manifest.pdf")
    seals = manifest.index("Seal / bag number")
    assert manifest[seals : seals + 4] == ["Seal / bag number", "Barcode", "SEAL-1", ""]  # a barcode has no text


def _cells(pdf: bytes, path: Path) -> list[str]:
    path.write_bytes(pdf)
    return [e.text for e in read_tagged(path).elements if e.role in ("TH", "TD")]
