"""The summary of a wave or date range as a PDF (``summary.summarise`` gathers it).

Tables a reader can check line by line: counts by method and level (with totals), the failures
and exceptions, and every certificate with its SHA-256 digest, which ``factory cert verify`` or the
auditor's portal confirm one by one. The PDF declares its language and title; reportlab writes no
structure tree, so it is not tagged (the web pages are the accessible form of the same report).
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, TextStringObject
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from factory.audit.summary import Summary

_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _table(rows: list[list[str]], widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(_GRID)
    return table


def summary_pdf(summary: Summary) -> bytes:
    styles = getSampleStyleSheet()
    story: list[Flowable] = [
        Paragraph(f"Sanitisation summary: {summary.scope}", styles["Title"]),
        Paragraph(f"Generated {summary.generated_at}. Certificates: {len(summary.certificates)}.", styles["Normal"]),
        Spacer(1, 4 * mm),
        Paragraph("Certificates by method and level", styles["Heading2"]),
    ]
    counts = [["Method", "Level", "Certificates"]]
    counts += [[method, level, str(n)] for method, level, n in summary.by_method_and_level]
    counts += [["All methods", level, str(n)] for level, n in summary.by_level.items()]
    counts.append(["Total", "", str(len(summary.certificates))])
    story += [_table(counts), Spacer(1, 4 * mm), Paragraph("Exceptions", styles["Heading2"])]
    story.append(Paragraph(f"Failed or unknown erase outcomes: {summary.failures}", styles["Normal"]))
    story.append(Paragraph(f"Exceptions listed: {len(summary.exceptions)}", styles["Normal"]))
    listed = [Paragraph(line, styles["Normal"]) for line in summary.exceptions]
    story += listed or [Paragraph("None.", styles["Normal"])]
    story += [Spacer(1, 4 * mm), Paragraph("Certificates", styles["Heading2"])]
    rows = [["Issued (UTC)", "Device", "Medium", "Method", "Level", "Certificate id", "SHA-256 digest"]]
    rows += [
        [c.issued_at[:19], c.device_serial, c.medium_serial, c.method, c.level, c.certificate_id, c.digest_sha256]
        for c in summary.certificates
    ]
    certificates = _table(rows, [28 * mm, 24 * mm, 24 * mm, 34 * mm, 12 * mm, 52 * mm, 96 * mm])
    certificates.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 7)]))
    story.append(certificates)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        title=f"Sanitisation summary: {summary.scope}",
        author="device-factory",
        subject="Certificates by method and level, exceptions, certificate digests",
    )
    doc.build(story)
    return _with_language(buffer.getvalue())


def _with_language(pdf: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer._root_object[NameObject("/Lang")] = TextStringObject("en-GB")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
