"""Human-readable PDF rendering of a signed certificate envelope.

The PDF is a view, never the evidence: the signed JSON is. So the PDF shows the digest and the
key fingerprint, carries a QR code ``dfcert:<certificate id>:<digest>`` that leads back to the
JSON, and truncates long command output (saying so) where the JSON keeps every byte. It is a
tagged PDF (``pdf_tagging``): headings, paragraphs and table cells in reading order for screen
readers, the QR code a figure with its payload as alternative text, rules and footers artifacts;
the signed JSON envelope is embedded in it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from imaging.certificate import ENVELOPE_FORMAT, CertificateError, canonical_bytes, document_field, dumps_envelope
from imaging.pdf_tagging import TagRecorder, finish_tagged

QR_PREFIX = "dfcert"
OUTPUT_LIMIT_CHARS = 1500  # per stdout/stderr on the PDF only
OUTPUT_LIMIT_LINES = 30
QR_SIZE = 38 * mm
PAGE_MARGIN = 16 * mm

# Section order and titles; any section not listed is still rendered, after these.
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("organisation", "Organisation"),
    ("device", "Device"),
    ("media", "Storage medium"),
    ("confidentiality", "Confidentiality category"),
    ("sanitisation", "Sanitisation"),
    ("verification", "Verification"),
    ("tool", "Tool"),
    ("personnel", "Personnel"),
    ("destination", "Destination"),
    ("data_backed_up", "Data backed up"),
    ("residual_risk", "Residual risk"),
    ("custody", "Chain of custody"),
)
_HEADER_FIELDS = ("schema_version", "certificate_id", "issued_at")
_TRUNCATED_FIELDS = frozenset({"stdout", "stderr"})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu",)


class CertificateRenderError(CertificateError):
    """The envelope cannot be rendered (wrong shape, or its digest does not match its content)."""


def qr_payload(certificate_id: str, digest_sha256: str) -> str:
    return f"{QR_PREFIX}:{certificate_id}:{digest_sha256}"


def render_pdf(envelope: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a readable, tagged PDF of ``envelope`` to ``path``, the signed JSON embedded in it.

    Checks the recorded digest against the certificate content first, so a PDF is never made
    from an envelope whose content was altered; signature checking needs the public key and is
    ``verify_certificate``'s job.
    """
    certificate, signature = _checked_parts(envelope)
    certificate_id = str(certificate.get("certificate_id", ""))
    digest = signature["digest_sha256"]
    fonts = _fonts()
    r = _Render(fonts)

    story: list[Flowable] = [_header(certificate, signature, r), Spacer(1, 4 * mm)]
    rendered = set(_HEADER_FIELDS)
    for key, title in _SECTIONS:
        if key in certificate:
            story.extend(_section(title, certificate[key], r))
            rendered.add(key)
    for key, value in certificate.items():
        if key not in rendered:
            story.extend(_section(_label(key), value, r))
    story.extend(_signature_section(signature, certificate_id, r))

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(fonts.regular, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(
            PAGE_MARGIN, 8 * mm, f"Certificate {certificate_id}   SHA-256 {digest[:16]}...   page {doc.page}"
        )
        canvas.restoreState()

    title = f"Certificate of sanitisation {certificate_id}"
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=PAGE_MARGIN,
        rightMargin=PAGE_MARGIN,
        topMargin=PAGE_MARGIN,
        bottomMargin=PAGE_MARGIN,
        title=title,
        author=str(document_field(certificate, "organisation", "name") or ""),
        subject=qr_payload(certificate_id, digest),
        creator="device-factory imaging",
    )
    doc.build(story, onFirstPage=r.tags.page_decoration(footer), onLaterPages=r.tags.page_decoration(footer))
    attachment = {ATTACHMENT_NAME.format(id=certificate_id): dumps_envelope(envelope)}
    Path(path).write_bytes(finish_tagged(buffer.getvalue(), r.tags, title=title, attachments=attachment))


ATTACHMENT_NAME = "certificate-{id}.json"


# --- envelope checks ----------------------------------------------------------------------------


def _checked_parts(envelope: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    if not isinstance(envelope, Mapping) or envelope.get("format") != ENVELOPE_FORMAT:
        raise CertificateRenderError(f"not a {ENVELOPE_FORMAT} envelope")
    certificate = envelope.get("certificate")
    signature = envelope.get("signature")
    if not isinstance(certificate, Mapping) or not isinstance(signature, Mapping):
        raise CertificateRenderError("envelope lacks a 'certificate' or 'signature' object")
    for name in ("algorithm", "key_fingerprint", "digest_sha256", "value"):
        if not isinstance(signature.get(name), str):
            raise CertificateRenderError(f"envelope lacks 'signature.{name}'")
    if hashlib.sha256(canonical_bytes(certificate)).hexdigest() != signature["digest_sha256"]:
        raise CertificateRenderError("digest mismatch: certificate content changed")
    return certificate, signature


# --- layout -------------------------------------------------------------------------------------


class _Fonts:
    def __init__(self, regular: str, bold: str, mono: str) -> None:
        self.regular, self.bold, self.mono = regular, bold, mono


def _fonts() -> _Fonts:
    """DejaVu when installed (covers non-Latin text in command output), else the PDF base fonts."""
    wanted = {
        "DejaVuSans": "DejaVuSans.ttf",
        "DejaVuSans-Bold": "DejaVuSans-Bold.ttf",
        "DejaVuSansMono": "DejaVuSansMono.ttf",
    }
    for directory in _DEJAVU_DIRS:
        files = {name: Path(directory, file) for name, file in wanted.items()}
        if all(p.is_file() for p in files.values()):
            registered = set(pdfmetrics.getRegisteredFontNames())
            for name, file in files.items():
                if name not in registered:
                    pdfmetrics.registerFont(TTFont(name, str(file)))
            return _Fonts("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono")
    return _Fonts("Helvetica", "Helvetica-Bold", "Courier")


class _Styles:
    def __init__(self, fonts: _Fonts) -> None:
        self.title = ParagraphStyle("title", fontName=fonts.bold, fontSize=17, leading=21)
        self.subtitle = ParagraphStyle("subtitle", fontName=fonts.regular, fontSize=10, leading=13)
        self.heading = ParagraphStyle(
            "heading", fontName=fonts.bold, fontSize=11.5, leading=14, spaceBefore=7, spaceAfter=3
        )
        self.label = ParagraphStyle("label", fontName=fonts.bold, fontSize=8.5, leading=10.5)
        self.value = ParagraphStyle("value", fontName=fonts.regular, fontSize=8.5, leading=10.5)
        self.mono = ParagraphStyle("mono", fontName=fonts.mono, fontSize=7.5, leading=9.2)
        self.note = ParagraphStyle(
            "note", fontName=fonts.regular, fontSize=8, leading=10, textColor=colors.HexColor("#444444")
        )


class _Render:
    """What the layout functions share for one PDF: its styles and its tag recorder."""

    def __init__(self, fonts: _Fonts) -> None:
        self.styles = _Styles(fonts)
        self.tags = TagRecorder()

    def tagged(self, markup: str, style: ParagraphStyle, role: str = "P") -> Flowable:
        """A paragraph outside any table, tagged ``role`` (table cells are tagged by their table)."""
        return self.tags.tagged(role, Paragraph(markup, style))


_TABLE_STYLE = TableStyle(
    [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b0b0")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef1f5")),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
)
_CONTENT_WIDTH = A4[0] - 2 * PAGE_MARGIN
_LABEL_WIDTH = 46 * mm


def _header(certificate: Mapping[str, Any], signature: Mapping[str, Any], r: _Render) -> Table:
    certificate_id = str(certificate.get("certificate_id", ""))
    org = document_field(certificate, "organisation", "name")
    site = document_field(certificate, "organisation", "site")
    achieved = document_field(certificate, "sanitisation", "level_achieved")
    technique = document_field(certificate, "sanitisation", "technique")
    styles = r.styles
    lines = [
        r.tagged("Certificate of Sanitisation", styles.title, "H1"),
        Spacer(1, 2 * mm),
        r.tagged(_text(f"{org or ''} - {site or ''}"), styles.subtitle),
        r.tagged(_text(f"Sanitisation level achieved: {str(achieved).upper()} ({technique})"), styles.subtitle),
        Spacer(1, 2 * mm),
        _kv_table(
            [
                ("Certificate ID", certificate_id),
                ("Issued (UTC)", certificate.get("issued_at")),
                ("Schema version", certificate.get("schema_version")),
                ("SHA-256 digest", signature["digest_sha256"]),
                ("Signing key", signature["key_fingerprint"]),
            ],
            r,
            width=_CONTENT_WIDTH - QR_SIZE - 6 * mm,
            label_width=28 * mm,
            mono_keys={"SHA-256 digest", "Signing key", "Certificate ID"},
        ),
    ]
    payload = qr_payload(certificate_id, signature["digest_sha256"])
    qr = r.tags.tagged("Figure", _qr_drawing(payload), alt=f"QR code of the certificate id and digest: {payload}")
    qr_cell = [qr, r.tagged("Scan: certificate id and digest", styles.note)]
    widths = [_CONTENT_WIDTH - QR_SIZE - 4 * mm, QR_SIZE + 4 * mm]
    table = r.tags.layout_table([[lines, qr_cell]], colWidths=widths)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _qr_drawing(payload: str) -> Drawing:
    widget = QrCodeWidget(payload, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def _section(title: str, value: Any, r: _Render) -> list[Flowable]:
    heading = r.tagged(_text(title), r.styles.heading, "H2")
    if isinstance(value, Mapping):
        body = _mapping_flowables(value, r, _CONTENT_WIDTH)
    elif isinstance(value, list) and not value:
        body = [r.tagged("none recorded", r.styles.value)]
    elif isinstance(value, list):
        body = [r.tagged(_text(f"- {_scalar(item)}"), r.styles.value) for item in value]
    else:
        body = [_kv_table([(title, value)], r, width=_CONTENT_WIDTH)]
    return _kept_with_first(heading, body)


def _mapping_flowables(mapping: Mapping[str, Any], r: _Render, width: float, depth: int = 3) -> list[Flowable]:
    """Scalars of a mapping as one table, then each nested mapping or list of records as its own,
    under a heading one level below its parent's (H3 under a section's H2, at most H6)."""
    flat = [(_label(k), v) for k, v in mapping.items() if not _is_nested(v)]
    out: list[Flowable] = [_kv_table(flat, r, width=width)] if flat else []
    inner = min(depth + 1, 6)
    for key, value in mapping.items():
        if not _is_nested(value):
            continue
        heading = r.tagged(_text(_label(key)), r.styles.label, f"H{depth}")
        if isinstance(value, Mapping):
            out.extend(_kept_with_first(heading, _mapping_flowables(value, r, width, inner)))
        elif not value:
            out.extend([heading, r.tagged("none recorded", r.styles.value)])
        else:
            out.append(heading)
            for index, item in enumerate(value, start=1):
                note = r.tagged(_text(f"{_label(key)} {index} of {len(value)}"), r.styles.note)
                out.extend(_kept_with_first(note, _mapping_flowables(item, r, width, inner)))
        out.append(Spacer(1, 1.5 * mm))
    return out


def _kept_with_first(heading: Flowable, body: list[Flowable]) -> list[Flowable]:
    """A caption never ends a page without the start of what it captions."""
    if not body:
        return [heading]
    return [KeepTogether([heading, body[0]]), *body[1:]]


def _kv_table(
    rows: Sequence[tuple[str, Any]],
    r: _Render,
    *,
    width: float,
    label_width: float = _LABEL_WIDTH,
    mono_keys: frozenset[str] | set[str] = frozenset(),
) -> Table:
    styles = r.styles
    cells = []
    for label, value in rows:
        key = label.lower()
        if key in _TRUNCATED_FIELDS and isinstance(value, str):
            cell: Any = _output_cell(value, styles)
        elif key == "coverage" and isinstance(value, int | float) and not isinstance(value, bool):
            cell = Paragraph(_text(f"{value * 100:.4g} % of addressable bytes ({value})"), styles.value)
        elif label in mono_keys or key in {"argv", "path"} or key.endswith(("hex", "sha-256")):
            cell = Paragraph(_text(_scalar(value)), styles.mono)
        else:
            cell = Paragraph(_text(_scalar(value)), styles.value)
        cells.append([Paragraph(_text(label), styles.label), cell])
    table = r.tags.table(cells, header_columns=1, colWidths=[label_width, width - label_width], repeatRows=0)
    table.setStyle(_TABLE_STYLE)
    return table


def _output_cell(text: str, styles: _Styles) -> list[Flowable]:
    if not text:
        return [Paragraph("(empty)", styles.note)]
    shown = text
    lines = shown.splitlines()
    if len(lines) > OUTPUT_LIMIT_LINES:
        shown = "\n".join(lines[:OUTPUT_LIMIT_LINES])
    shown = shown[:OUTPUT_LIMIT_CHARS]
    cell: list[Flowable] = [Paragraph(_text(shown), styles.mono)]
    if len(shown) < len(text):
        cell.append(
            Paragraph(
                f"[truncated on this PDF: {len(shown)} of {len(text)} characters shown;"
                " the signed JSON certificate holds the full output]",
                styles.note,
            )
        )
    return cell


def _signature_section(signature: Mapping[str, Any], certificate_id: str, r: _Render) -> list[Flowable]:
    rows = [
        ("Algorithm", signature["algorithm"]),
        ("Key fingerprint", signature["key_fingerprint"]),
        ("SHA-256 digest", signature["digest_sha256"]),
        ("Signature (base64)", signature["value"]),
        ("QR payload", qr_payload(certificate_id, signature["digest_sha256"])),
    ]
    mono = {label for label, _ in rows if label != "Algorithm"}
    return [
        r.tagged("Digital signature", r.styles.heading, "H2"),
        _kv_table(rows, r, width=_CONTENT_WIDTH, mono_keys=mono),
        Spacer(1, 2 * mm),
        r.tagged(
            "This PDF is a rendering. The evidence is the signed JSON certificate: its RFC 8785"
            " canonical form hashes to the digest above and carries an Ed25519 signature by the key"
            " with the fingerprint above. The personnel named above sign through that site key."
            " Verify offline as described in docs/certificate-format.md.",
            r.styles.note,
        ),
    ]


# --- formatting helpers -------------------------------------------------------------------------


def _is_nested(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
    )


_ACRONYMS = {"lba": "LBA", "hpa": "HPA", "dco": "DCO", "sha256": "SHA-256", "id": "ID", "utc": "UTC"}


def _label(key: str) -> str:
    words = [_ACRONYMS.get(word, word) for word in key.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(_scalar(v) for v in value) if value else "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in value.items())
    return str(value)


def _text(value: str) -> str:
    """Paragraph markup for arbitrary text: escaped, control bytes shown, newlines kept."""
    visible = _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", value).replace("\t", "    ")
    return escape(visible).replace("\n", "<br/>")
