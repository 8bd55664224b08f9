"""The certificate PDF is tagged: read back with pypdf (tests/harness/tagged_pdf.py), its structure
tree holds the headings and the table cells in reading order with the certificate's values, every
MCID drawn is in the tree and back, and the decoration (rules, footers) is an artifact."""

from __future__ import annotations

import subprocess

from harness.requirements import require_tool
from harness.tagged_pdf import pdfinfo, read_tagged
from test_certificate import CERT_ID
from test_certificate_pdf import SECTION_HEADINGS, rendered  # noqa: F401 (rendered: the module's certificate fixture)

from imaging.certificate_pdf import qr_payload


def test_pdf_is_marked_with_language_title_and_displayed_title(rendered):  # noqa: F811
    _, path = rendered
    tagged = read_tagged(path)
    root = tagged.reader.root_object
    assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712 (a pypdf BooleanObject)
    assert root["/Lang"] == "en-GB"
    assert root["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712
    title = f"Certificate of sanitisation {CERT_ID}"
    assert tagged.reader.metadata.title == title
    assert tagged.reader.xmp_metadata.dc_title == {"x-default": title}
    assert tagged.reader.pdf_header == "%PDF-1.7"
    info = pdfinfo(path)
    assert "Tagged:          yes" in info and "Metadata Stream: yes" in info


def test_structure_holds_headings_and_cells_in_reading_order(rendered):  # noqa: F811
    envelope, path = rendered
    tagged = read_tagged(path)
    cert, signature = envelope["certificate"], envelope["signature"]
    assert tagged.elements[0].role == "Document"
    assert tagged.roles("H1") == [("H1", "Certificate of Sanitisation")]
    headings = [text for _, text in tagged.roles("H2")]
    shown = [heading for heading in headings if heading in SECTION_HEADINGS]
    assert shown == list(SECTION_HEADINGS) and headings[-1] == "Digital signature"  # every section, in page order
    order = [e.text for e in tagged.elements if e.role in ("H2", "TH")]
    assert order.index("Device") < order.index("Serial number") < order.index("Storage medium")
    rows = tagged.row_values()
    assert rows["Certificate ID"] == str(CERT_ID)
    assert rows["Serial number"] == cert["device"]["serial_number"]
    assert rows["Asset tag"] == cert["device"]["asset_tag"]
    assert rows["Method"] == cert["sanitisation"]["method"]
    assert rows["Level achieved"] == cert["sanitisation"]["level_achieved"]
    assert rows["Passed"] == ("yes" if cert["verification"]["passed"] else "no")
    assert rows["Result"] == cert["validation"]["result"]
    assert rows["Key fingerprint"] == signature["key_fingerprint"]
    assert rows["SHA-256 digest"].replace(" ", "") == signature["digest_sha256"]
    scopes = {str(e.attributes["/A"]["/Scope"]) for e in tagged.elements if e.role == "TH"}
    assert scopes == {"/Row"}


def test_every_mcid_drawn_is_in_the_structure_tree_and_back(rendered):  # noqa: F811
    _, path = rendered
    tagged = read_tagged(path)
    assert len(tagged.reader.pages) > 1 and {page for page, _ in tagged.page_mcids} == set(
        range(len(tagged.reader.pages))
    )
    assert tagged.page_mcids == tagged.tree_mcids
    assert tagged.parent_tree_mismatches == []
    for index, page in enumerate(tagged.reader.pages):
        assert page["/StructParents"] == index


def test_decoration_is_an_artifact_and_the_qr_code_a_figure_with_its_payload(rendered):  # noqa: F811
    envelope, path = rendered
    tagged = read_tagged(path)
    assert tagged.unmarked_painting == []
    footers = [text for text in tagged.artifact_text if text.startswith(f"Certificate {CERT_ID}")]
    assert len(footers) == len(tagged.reader.pages)
    assert not any(f"Certificate {CERT_ID}" in e.text for e in tagged.elements)
    [figure] = [e for e in tagged.elements if e.role == "Figure"]
    assert qr_payload(str(CERT_ID), envelope["signature"]["digest_sha256"]) in figure.attributes["/Alt"]


def test_poppler_reads_the_same_structure(rendered):  # noqa: F811
    _, path = rendered
    tool = require_tool("pdfinfo")
    tree = subprocess.run([tool, "-struct-text", str(path)], capture_output=True, text=True, check=True).stdout
    assert tree.startswith("Document")
    assert (
        tree.index('"Certificate of Sanitisation"') < tree.index('"Storage medium"') < tree.index('"Digital signature"')
    )
