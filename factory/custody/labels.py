"""Asset labels: one PDF page sized for a label printer's 90 x 38 mm labels (Brother DK-11208 and
similar), with the serial and asset tag in text, a Code 128 barcode of the serial (what the bench
scanners read) and a QR code of serial and asset tag. Rendered in invariant mode, so the same
device always prints the same bytes."""

from __future__ import annotations

import io

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import createBarcodeDrawing
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from factory.kernel.models.device import Device

LABEL_SIZE = (90 * mm, 38 * mm)
_QR = 30 * mm


def qr_text(device: Device) -> str:
    """What the QR code says: the serial and, when the device has one, its asset tag."""
    return f"SN:{device.serial}" + (f";AT:{device.asset_tag}" if device.asset_tag else "")


def _code128(value: str, width: float, height: float) -> Drawing:
    drawing = createBarcodeDrawing("Code128", value=value, barHeight=height, humanReadable=False, quiet=True)
    scale = min(1.0, width / drawing.width)  # a long serial is narrowed to fit the label
    drawing.scale(scale, 1)
    drawing.width *= scale
    return drawing


def render_label(device: Device, site: str) -> bytes:
    """The device's asset label as a one-page PDF the size of the label."""
    width, height = LABEL_SIZE
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LABEL_SIZE, invariant=1)
    canvas.setTitle(f"Asset label {device.serial}")
    canvas.setAuthor("Device Factory")
    left, text_width = 3 * mm, width - _QR - 8 * mm
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(left, height - 6 * mm, f"SN {device.serial}"[:40])
    canvas.setFont("Helvetica", 8)
    canvas.drawString(left, height - 10.5 * mm, f"Asset {device.asset_tag or '-'}"[:40])
    canvas.drawString(left, height - 14.5 * mm, f"{device.make} {device.model}"[:40])
    renderPDF.draw(_code128(device.serial, text_width, 12 * mm), canvas, left, 4 * mm)
    canvas.setFont("Helvetica", 6)
    canvas.drawString(left, 1.5 * mm, f"{site} · {device.kind}"[:60])
    qr = QrCodeWidget(qr_text(device), barLevel="M")
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(_QR, _QR, transform=[_QR / (x1 - x0), 0, 0, _QR / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, canvas, width - _QR - 3 * mm, (height - _QR) / 2)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
