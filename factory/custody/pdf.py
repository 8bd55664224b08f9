"""PDF renderings of the paper that travels with devices: the transfer note for redistribution and
the WEEE waste transfer note (the courier manifest, with its barcodes, is ``manifest_pdf.py``).

The PDFs are built with reportlab in invariant mode (no timestamps or random ids inside), so
the same input renders to the same bytes; the bytes are stored and their SHA-256 goes into the
ledger. Text is drawn as real text so the documents stay searchable and parseable, and the PDFs
are tagged (``imaging.pdf_tagging``: title, paragraphs and table cells in reading order, grids as
artifacts, language and title set) for screen readers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from imaging.pdf_tagging import TagRecorder, finish_tagged

_STYLES = getSampleStyleSheet()


@dataclass(frozen=True)
class TransferLine:
    serial: str
    asset_tag: str
    make_model: str
    certificates: Sequence[tuple[str, str]]  # (certificate id, digest)


@dataclass(frozen=True)
class TransferNote:
    transfer_id: int
    site: str
    organisation_name: str
    organisation_reference: str
    organisation_address: str
    created_at: str
    created_by: str
    lines: Sequence[TransferLine]


@dataclass(frozen=True)
class Party:
    name: str
    address: str
    signature_sha256: str


@dataclass(frozen=True)
class WasteTransferNote:
    batch_id: int
    description: str
    ewc_code: str
    quantity: int
    containment: str
    transferor: Party
    transferee: Party
    carrier: str  # name and waste carrier registration number
    recycler_permit: str
    sic_code: str
    hierarchy_declaration: bool
    place: str
    collected_at: str
    contains_batteries: bool
    hazardous_note_reference: str | None  # the consignment note code, for hazardous waste
    device_serials: Sequence[str]
    hazardous: bool  # the EWC code is a hazardous entry (asterisk)
    ewc_entry: str  # the List of Wastes' words for the code ("" for a code outside the device list)


def _p(text: str, style: str = "BodyText") -> Paragraph:
    return Paragraph(escape(text), _STYLES[style])


def _table(tags: TagRecorder, rows: Sequence[Sequence[str]], widths: Sequence[float], header: bool = True) -> Table:
    """Rows of text under a header row, or (``header=False``) label-value rows whose first column
    is the row header."""
    cells = [[_p(c) for c in row] for row in rows]
    table = tags.table(
        cells, header_rows=int(header), header_columns=int(not header), colWidths=list(widths), repeatRows=int(header)
    )
    style = [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke))
    table.setStyle(TableStyle(style))
    return table


def _fields(tags: TagRecorder, pairs: Sequence[tuple[str, str]]) -> Table:
    return _table(tags, [[k, v] for k, v in pairs], (50 * mm, 120 * mm), header=False)


def _render(title: str, story: Callable[[TagRecorder], list[Flowable]]) -> bytes:
    """The tagged PDF: ``title`` as its heading, then what ``story`` builds with the same recorder
    (called after the heading is tagged, so the structure reads in page order)."""
    tags = TagRecorder()
    heading = tags.tagged("H1", _p(title, "Title"))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, title=title, author="Device Factory", invariant=1, leftMargin=18 * mm, rightMargin=18 * mm
    )
    doc.build([heading, *story(tags)])
    return finish_tagged(buffer.getvalue(), tags, title=title)


def render_transfer_note(n: TransferNote) -> bytes:
    rows: list[Sequence[str]] = [("Serial", "Asset tag", "Make / model", "Sanitisation certificates")]
    for line in n.lines:
        certs = "; ".join(f"{cid} (SHA-256 {digest})" for cid, digest in line.certificates)
        rows.append((line.serial, line.asset_tag, line.make_model, certs))
    return _render(
        f"Transfer note {n.transfer_id}",
        lambda tags: [
            _fields(tags, _transfer_fields(n)),
            Spacer(1, 6 * mm),
            _table(tags, rows, (35 * mm, 22 * mm, 35 * mm, 78 * mm)),
        ],
    )


def _transfer_fields(n: TransferNote) -> list[tuple[str, str]]:
    return [
        ("Transfer", str(n.transfer_id)),
        ("From", n.site),
        ("To", f"{n.organisation_name} ({n.organisation_reference})"),
        ("Address", n.organisation_address),
        ("Date", n.created_at),
        ("Authorised by", n.created_by),
        ("Devices", str(len(n.lines))),
        (
            "Declaration",
            "Every storage medium in these devices was sanitised and verified; each certificate names "
            "the destination external reuse.",
        ),
    ]


def render_waste_transfer_note(w: WasteTransferNote) -> bytes:
    return _render(
        f"Waste transfer note, batch {w.batch_id}",
        lambda tags: [
            _fields(tags, _waste_fields(w)),
            Spacer(1, 6 * mm),
            tags.tagged("P", _p("Devices in this batch")),
            _table(tags, [("Serial",)] + [(s,) for s in w.device_serials], (170 * mm,)),
        ],
    )


def _waste_fields(w: WasteTransferNote) -> list[tuple[str, str]]:
    """The statutory fields (Waste (England and Wales) Regulations 2011 reg. 35; the Scottish note
    asks the same): the waste and its code, quantity and containment, each party with its role and
    its permit or registration number, the transferor's SIC code, the hierarchy declaration, the
    time and place, and how long each party keeps the note."""
    return [
        ("Batch", str(w.batch_id)),
        ("Description of waste", w.description),
        ("EWC code", w.ewc_code),
        ("List of Wastes entry", w.ewc_entry or "see the EWC code"),
        ("Hazardous waste", _hazardous_row(w)),
        ("Batteries", "Yes: left in the devices" if w.contains_batteries else "None"),
        ("Quantity", f"{w.quantity} devices"),
        ("Containment", w.containment),
        ("Transferor", f"{w.transferor.name}, {w.transferor.address}"),
        ("Transferor is", "The producer of the waste"),
        ("Transferor's SIC code (2007)", w.sic_code),
        ("Transferee", f"{w.transferee.name}, {w.transferee.address}"),
        ("Transferee is", f"Holder of an environmental permit or registered exemption, number {w.recycler_permit}"),
        ("Carrier", w.carrier),
        (
            "Waste hierarchy",
            "The transferor confirms it has applied the waste management hierarchy."
            if w.hierarchy_declaration
            else "NOT DECLARED",
        ),
        ("Place of transfer", w.place),
        ("Date and time", w.collected_at),
        ("Keep this note", "Both parties, at least 2 years (a hazardous waste consignment note: 3 years)"),
        ("Transferor signature", f"signed, SHA-256 {w.transferor.signature_sha256}"),
        ("Transferee signature", f"signed, SHA-256 {w.transferee.signature_sha256}"),
    ]


def _hazardous_row(w: WasteTransferNote) -> str:
    if w.hazardous:
        return f"Yes: moved under hazardous waste consignment note {w.hazardous_note_reference}"
    return "No"
