"""PDF rendering: text parsed back with pypdf, page rasterised with pdftoppm, QR decoded with zbarimg."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess

import pytest
from harness.requirements import require_tool
from pypdf import PdfReader
from test_certificate import CERT_ID, make_result, signed_envelope

from imaging.certificate_pdf import OUTPUT_LIMIT_CHARS, CertificateRenderError, qr_payload, render_pdf

# The sections of the example certificate, in the order the PDF shows them.
SECTION_HEADINGS = (
    "Organisation",
    "Device",
    "Storage medium",
    "Confidentiality category",
    "Sanitisation",
    "Verification",
    "Personnel",
    "Destination",
    "Data backed up",
    "Residual risk",
    "Chain of custody",
)
LONG_STDOUT = "".join(f"pass 1 block {n:08d} written ok\n" for n in range(400))  # ~13 kB


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    base = make_result()
    noisy = dataclasses.replace(base.commands[0], stdout=LONG_STDOUT)
    envelope = signed_envelope(make_result(commands=(noisy, base.commands[1])))
    path = tmp_path_factory.mktemp("pdf") / "certificate.pdf"
    render_pdf(envelope, path)
    return envelope, path


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdf_shows_id_digest_fingerprint_and_every_section(rendered):
    envelope, path = rendered
    text = pdf_text(path)
    flat = squeeze(text)
    signature = envelope["signature"]
    assert str(CERT_ID) in flat
    assert signature["digest_sha256"] in flat
    assert signature["key_fingerprint"] in flat
    for heading in ("Certificate of Sanitisation", *SECTION_HEADINGS, "Digital signature"):
        assert heading in text, heading
    cert = envelope["certificate"]
    for value in (
        cert["device"]["serial_number"],
        cert["device"]["asset_tag"],
        cert["media"]["serial_number"],
        cert["personnel"]["sanitised_by"]["name"],
        cert["personnel"]["validated_by"]["name"],
        cert["custody"]["previous_entry_sha256"],
        "OFFICIAL-SENSITIVE",
        "nvme sanitize /dev/nvme0n1 --sanact=4",
        "over-provisioned area not read back",
        "caf\u00e9",
    ):
        assert squeeze(value) in flat, value


def test_long_output_is_truncated_on_the_pdf_only_and_says_so(rendered):
    envelope, path = rendered
    flat = squeeze(pdf_text(path))
    assert "pass1block00000000writtenok" in flat
    assert "pass1block00000399writtenok" not in flat
    assert squeeze("characters shown; the signed JSON certificate holds the full output") in flat
    assert squeeze(f"of {len(LONG_STDOUT)} characters") in flat
    assert len(LONG_STDOUT) > OUTPUT_LIMIT_CHARS
    assert envelope["certificate"]["sanitisation"]["commands"][0]["stdout"] == LONG_STDOUT


def test_pdf_rasterises_and_its_qr_code_decodes_to_id_and_digest(rendered, tmp_path):
    envelope, path = rendered
    pdftoppm = require_tool("pdftoppm")
    subprocess.run([pdftoppm, "-png", "-r", "150", "-f", "1", "-l", "1", path, tmp_path / "page"], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 10_000
    zbarimg = require_tool("zbarimg")
    decoded = subprocess.run(
        [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", pngs[0]],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = qr_payload(str(CERT_ID), envelope["signature"]["digest_sha256"])
    assert expected == f"dfcert:{CERT_ID}:{envelope['signature']['digest_sha256']}"
    assert decoded.stdout.strip() == expected


def test_pdf_metadata_names_the_certificate(rendered):
    envelope, path = rendered
    metadata = PdfReader(path).metadata
    assert str(CERT_ID) in metadata.title
    assert metadata.subject == qr_payload(str(CERT_ID), envelope["signature"]["digest_sha256"])


def test_envelope_with_changed_content_is_not_rendered(tmp_path):
    envelope = copy.deepcopy(signed_envelope())
    envelope["certificate"]["sanitisation"]["level_achieved"] = "destroy"
    with pytest.raises(CertificateRenderError, match="digest mismatch"):
        render_pdf(envelope, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(CertificateRenderError, match="not a device-factory-certificate envelope"):
        render_pdf({"format": "other"}, tmp_path / "x.pdf")


def test_the_signed_json_is_attached_inside_the_pdf_and_verifies(rendered):
    from test_certificate import SIGNING_KEY

    from imaging.certificate import verify_certificate

    reader = PdfReader(str(rendered[1]))
    attachments = reader.attachments
    assert list(attachments) == [f"certificate-{CERT_ID}.json"]
    [data] = attachments[f"certificate-{CERT_ID}.json"]
    envelope = json.loads(data)
    assert envelope == rendered[0]
    assert verify_certificate(envelope, SIGNING_KEY.public_key()).certificate_id == str(CERT_ID)
    assert reader.trailer["/Root"]["/Lang"] == "en-GB"
