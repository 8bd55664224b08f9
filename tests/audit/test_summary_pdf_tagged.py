"""The summary PDF is tagged: read back with pypdf (tests/harness/tagged_pdf.py) its structure tree
holds the title, the headings and every table cell in reading order, a certificates table that
runs over several pages stays one Table whose repeated header rows are artifacts, and every MCID
drawn is in the tree and back. Built from a Summary directly (no database: the numbers against
the database are test_summary_pdf's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.tagged_pdf import TaggedPdf, pdfinfo, read_tagged

from factory.audit.summary import Summary, SummaryCertificate
from factory.audit.summary_pdf import summary_pdf

CERTIFICATES = [
    SummaryCertificate(
        certificate_id=f"cert-{n:03d}",
        device_serial=f"SN-{n:03d}",
        medium_serial=f"MED-{n:03d}",
        issued_at=f"2026-03-01T10:{n % 60:02d}:00.000000Z",
        method="nvme-sanitize-crypto" if n % 3 else "overwrite",
        level="purge" if n % 3 else "clear",
        digest_sha256=f"{n:064x}",
    )
    for n in range(70)
]
SUMMARY = Summary(
    scope="wave W-TAG",
    generated_at="2026-03-02T09:00:00Z",
    certificates=CERTIFICATES,
    failures=2,
    exceptions=["uncertified departure: SN-900 'issue' at 2026-03-01T12:00:00Z: no certificate"],
)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TaggedPdf]:
    path = tmp_path_factory.mktemp("summary") / "summary.pdf"
    path.write_bytes(summary_pdf(SUMMARY))
    return path, read_tagged(path)


def test_summary_pdf_is_marked_with_language_and_title(tagged: tuple[Path, TaggedPdf]) -> None:
    path, pdf = tagged
    root = pdf.reader.root_object
    assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712 (a pypdf BooleanObject)
    assert root["/Lang"] == "en-GB" and root["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712
    assert pdf.reader.metadata.title == "Sanitisation summary: wave W-TAG"
    assert pdf.reader.xmp_metadata.dc_title == {"x-default": "Sanitisation summary: wave W-TAG"}
    assert "Tagged:          yes" in pdfinfo(path)


def test_summary_structure_reads_in_order_with_the_real_values(tagged: tuple[Path, TaggedPdf]) -> None:
    _, pdf = tagged
    assert pdf.roles("H1") == [("H1", "Sanitisation summary: wave W-TAG")]
    assert [text for _, text in pdf.roles("H2")] == ["Certificates by method and level", "Exceptions", "Certificates"]
    paragraphs = [text for _, text in pdf.roles("P")]
    assert "Failed or unknown erase outcomes: 2" in paragraphs and "Exceptions listed: 1" in paragraphs
    assert SUMMARY.exceptions[0] in paragraphs
    tables = [e for e in pdf.elements if e.role == "Table"]
    assert len(tables) == 2  # the certificates table spans pages but is one Table
    cells = [e.text for e in pdf.elements if e.role in ("TH", "TD")]
    counts = cells[: cells.index("Issued (UTC)")]
    assert counts[:3] == ["Method", "Level", "Certificates"]
    assert counts[-3:] == ["Total", "", "70"]
    rows = cells[cells.index("SHA-256 digest") + 1 :]
    assert rows == [
        value
        for c in CERTIFICATES
        for value in (c.issued_at[:19], c.device_serial, c.medium_serial, c.method, c.level, c.certificate_id,
                      c.digest_sha256)
    ]  # fmt: skip
    headers = [e for e in pdf.elements if e.role == "TH"]
    assert [h.text for h in headers].count("SHA-256 digest") == 1  # repeated on later pages as artifacts
    assert {str(h.attributes["/A"]["/Scope"]) for h in headers} == {"/Column"}


def test_summary_marked_content_matches_the_tree(tagged: tuple[Path, TaggedPdf]) -> None:
    _, pdf = tagged
    assert len(pdf.reader.pages) >= 2
    assert pdf.page_mcids == pdf.tree_mcids and pdf.parent_tree_mismatches == []
    assert pdf.unmarked_painting == []
    assert pdf.artifact_text.count("SHA-256 digest") == len(pdf.reader.pages) - 1  # the repeated header rows
