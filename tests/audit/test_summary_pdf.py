"""The summary PDF of a date range: rendered to PNG (pdftoppm) and its numbers read back from the
PDF's text (pdftotext) and checked against the database; and the certificate page's sections."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness.audit_data import failed_device, sanitised_device
from harness.courier_data import handed_over, handed_over_days_ago, wave_with_room
from harness.requirements import require_tool
from sqlmodel import select

from factory.audit.errors import AuditRequestInvalid
from factory.audit.views import certificate_sections, summarise, summary_pdf
from factory.custody.views import DEFAULT_OVERDUE_DAYS
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate

FROM, TO = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_summary_pdf_numbers_match_the_database(ctx: AppContext, tmp_path: Path) -> None:
    require_tool("pdftoppm")
    require_tool("pdftotext")
    sanitised_device(ctx, "SUM-1", ("SUM-1-A",))
    sanitised_device(ctx, "SUM-2", ("SUM-2-A", "SUM-2-B"), purge=True)
    sanitised_device(ctx, "SUM-3", ("SUM-3-A",))
    failed_device(ctx, "SUM-4", "read-back found 12 mismatches")
    with session_scope(ctx.engine) as s:
        summary = summarise(s, ctx.site_keys.public_key(), issued_from=FROM, issued_to=TO)
        stored = s.exec(select(Certificate)).all()
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(summary_pdf(summary))

    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    [png] = list(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000  # a rendered page, not blank
    shots = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / f"audit-summary-pdf-{ctx.engine.dialect.name}.png").write_bytes(png.read_bytes())

    text = _text(pdf)
    assert re.search(rf"Total\s+{len(stored)}\b", text), text
    for (method, level), n in Counter((c.method, c.level) for c in stored).items():
        assert re.search(rf"{re.escape(method)}\s+{level}\s+{n}\b", text), (method, level, n)
    for level, n in Counter(c.level for c in stored).items():
        assert re.search(rf"All methods\s+{level}\s+{n}\b", text), (level, n)
    assert "Failed or unknown erase outcomes: 1" in text
    flat = re.sub(r"\s+", "", text)
    for cert in stored:
        assert cert.id in flat
        assert cert.digest_sha256 in flat, cert.id


def test_summary_needs_a_wave_or_a_range_and_a_known_wave(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        with pytest.raises(AuditRequestInvalid, match="a wave or a date range"):
            summarise(s, ctx.site_keys.public_key())
        with pytest.raises(AuditRequestInvalid, match="no wave 'W-none'"):
            summarise(s, ctx.site_keys.public_key(), wave="W-none")


def test_certificate_page_sections_come_from_the_signed_document(ctx: AppContext) -> None:
    _, [cert_id] = sanitised_device(ctx, "SEC-1", ("SEC-1-A",), asset_tag="AT-77")
    with session_scope(ctx.engine) as s:
        doc = json.loads(s.get(Certificate, cert_id).envelope)["certificate"]
    sections = {section.key: dict(section.facts) for section in certificate_sections(doc)}
    assert list(sections) == ["device", "medium", "method", "verification", "validation", "people", "custody"]
    assert sections["device"]["Asset tag"] == "AT-77" and sections["medium"]["Serial number"] == "SEC-1-A"
    assert sections["method"]["Standard"] == "NIST SP 800-88 Rev. 2"
    assert sections["validation"]["Result"] == "accepted"
    assert sections["people"]["Sanitised by"].startswith("tech.one")
    assert sections["custody"]["Custody entry (sequence)"] == str(doc["custody"]["sequence"])


def test_summary_lists_every_kind_of_open_exception(ctx: AppContext, tmp_path: Path) -> None:
    """Failed erases without a re-erase and overdue consignments are exceptions of the summary as
    of the exception report; a wave's summary keeps those of its own devices."""
    require_tool("pdftotext")
    failed_device(ctx, "EXC-FAIL", "read-back found 3 mismatches")
    wave = wave_with_room(ctx, "W-EXC", in_person=0)
    late = handed_over(ctx, wave, "S-EXC", "OLD-EXC", "CON-EXC")
    handed_over_days_ago(ctx, late, DEFAULT_OVERDUE_DAYS + 1)
    with session_scope(ctx.engine) as s:
        everything = summarise(s, ctx.site_keys.public_key(), issued_from=FROM, issued_to=TO)
        the_wave = summarise(s, ctx.site_keys.public_key(), wave=wave)
    failure = "failed erase without a re-erase: EXC-FAIL at "
    overdue = f"consignment {late} overdue: handed over "
    assert any(line.startswith(failure) and "3 mismatches" in line for line in everything.exceptions)
    assert any(line.startswith(overdue) for line in everything.exceptions), everything.exceptions
    # The failed laptop is not the wave's; the late consignment carries the wave's tablet.
    assert not any(line.startswith(failure) for line in the_wave.exceptions)
    assert any(line.startswith(overdue) for line in the_wave.exceptions), the_wave.exceptions
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(summary_pdf(everything))
    flat = re.sub(r"\s+", " ", _text(pdf))
    assert f"Exceptions listed: {len(everything.exceptions)}" in flat
    assert "failed erase without a re-erase: EXC-FAIL" in flat and f"consignment {late} overdue" in flat
