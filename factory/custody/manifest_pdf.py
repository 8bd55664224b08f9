"""The courier manifest as a PDF, with Code 128 barcodes the courier's and the officer's scanners
read: the consignment reference, each seal and each device's serial.

Built like the other custody PDFs (``pdf.py``): reportlab in invariant mode, so the same input
renders to the same bytes, and real text beside every barcode so the document stays searchable;
tagged like them, the consignment's barcode a figure named by its alternative text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.graphics.barcode import createBarcodeDrawing
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table, TableStyle

from factory.custody.pdf import _fields, _p, _render
from factory.kernel.clock import uk_time
from imaging.pdf_tagging import TagRecorder


@dataclass(frozen=True)
class ManifestLine:
    serial: str
    asset_tag: str
    kind: str
    make_model: str
    officer: str


@dataclass(frozen=True)
class Manifest:
    reference: str
    site: str
    courier: str
    recipient_name: str
    recipient_address: str
    seal_numbers: Sequence[str]
    created_at: str
    created_by: str
    lines: Sequence[ManifestLine]


def barcode(value: str, width: float = 60 * mm, height: float = 11 * mm) -> Drawing:
    """A Code 128 barcode of ``value``, narrowed to ``width`` when it is wider (long serials get thinner bars)."""
    natural = createBarcodeDrawing("Code128", value=value, barHeight=height, humanReadable=False)
    if natural.width <= width:
        return natural
    return createBarcodeDrawing("Code128", value=value, barHeight=height, humanReadable=False, width=width,
                                height=natural.height)  # fmt: skip


def _grid(tags: TagRecorder, rows: list[list[object]], widths: Sequence[float]) -> Table:
    table = tags.table(rows, header_rows=1, colWidths=list(widths), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ]
        )
    )
    return table


def render_manifest(m: Manifest) -> bytes:
    devices: list[list[object]] = [[_p(h) for h in ("Serial", "Barcode", "Kind / model", "Officer")]]
    for x in m.lines:
        tag = f" (asset tag {x.asset_tag})" if x.asset_tag else ""
        devices.append([_p(x.serial + tag), barcode(x.serial, 62 * mm), _p(f"{x.kind} {x.make_model}"), _p(x.officer)])
    seals: list[list[object]] = [[_p("Seal / bag number"), _p("Barcode")]]
    seals += [[_p(s), barcode(s)] for s in m.seal_numbers]

    def story(tags: TagRecorder) -> list[Flowable]:
        code = tags.tagged(
            "Figure", barcode(m.reference, 80 * mm, 14 * mm), alt=f"Barcode of consignment {m.reference}"
        )
        return [
            code,
            _fields(tags, _manifest_fields(m)),
            Spacer(1, 5 * mm),
            _grid(tags, seals, (60 * mm, 70 * mm)),
            Spacer(1, 5 * mm),
            _grid(tags, devices, (42 * mm, 66 * mm, 32 * mm, 34 * mm)),
            Spacer(1, 10 * mm),
            _fields(tags, [("Collected by (courier)", ""), ("Signature, date and time", ""), ("Received by", "")]),
        ]

    return _render(f"Courier manifest {m.reference}", story)


def _manifest_fields(m: Manifest) -> list[tuple[str, str]]:
    return [
        ("Consignment", m.reference),
        ("From", m.site),
        ("Courier", m.courier),
        ("Recipient", m.recipient_name),
        ("Delivery address", m.recipient_address),
        ("Seal / bag numbers", ", ".join(m.seal_numbers) or "none"),
        ("Prepared", f"{uk_time(m.created_at)} (UK time) by {m.created_by}"),
        ("Devices", str(len(m.lines))),
    ]
