"""The summary of a wave or date range as a PDF (``summary.summarise`` gathers it).

Tables a reader can check line by line: counts by method and level (with totals), the failures
and exceptions, and every certificate with its SHA-256 digest, which ``factory cert verify`` or the
auditor's portal confirm one by one. A tagged PDF (``imaging.pdf_tagging``): title, headings,
paragraphs and every table cell (header rows as column headers) in reading order, the grids and
the header rows repeated on later pages as artifacts; language en-GB, title shown by viewers.
"""

from __future__ import annotations

import io

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from factory.audit.summary import Summary
from imaging.pdf_tagging import TagRecorder, finish_tagged

_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _table(tags: TagRecorder, rows: list[list[str]], widths: list[float] | None = None) -> Table:
    table = tags.table(rows, header_rows=1, colWidths=widths, repeatRows=1)
    table.setStyle(_GRID)
    return table


def summary_pdf(summary: Summary) -> bytes:
    styles = getSampleStyleSheet()
    tags = TagRecorder()

    def para(text: str, style: str, role: str = "P") -> Flowable:
        return tags.tagged(role, Paragraph(text, styles[style]))

    title = f"Sanitisation summary: {summary.scope}"
    story: list[Flowable] = [
        para(title, "Title", "H1"),
        para(f"Generated {summary.generated_at}. Certificates: {len(summary.certificates)}.", "Normal"),
        Spacer(1, 4 * mm),
        para("Certificates by method and level", "Heading2", "H2"),
    ]
    counts = [["Method", "Level", "Certificates"]]
    counts += [[method, level, str(n)] for method, level, n in summary.by_method_and_level]
    counts += [["All methods", level, str(n)] for level, n in summary.by_level.items()]
    counts.append(["Total", "", str(len(summary.certificates))])
    story += [_table(tags, counts), Spacer(1, 4 * mm), para("Exceptions", "Heading2", "H2")]
    story.append(para(f"Failed or unknown erase outcomes: {summary.failures}", "Normal"))
    story.append(para(f"Exceptions listed: {len(summary.exceptions)}", "Normal"))
    listed = [para(line, "Normal") for line in summary.exceptions]
    story += listed or [para("None.", "Normal")]
    story += [Spacer(1, 4 * mm), para("Certificates", "Heading2", "H2")]
    rows = [["Issued (UTC)", "Device", "Medium", "Method", "Level", "Certificate id", "SHA-256 digest"]]
    rows += [
        [c.issued_at[:19], c.device_serial, c.medium_serial, c.method, c.level, c.certificate_id, c.digest_sha256]
        for c in summary.certificates
    ]
    certificates = _table(tags, rows, [28 * mm, 24 * mm, 24 * mm, 34 * mm, 12 * mm, 52 * mm, 96 * mm])
    certificates.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 7)]))
    story.append(certificates)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        title=title,
        author="device-factory",
        subject="Certificates by method and level, exceptions, certificate digests",
    )
    doc.build(story)
    return finish_tagged(buffer.getvalue(), tags, title=title)
