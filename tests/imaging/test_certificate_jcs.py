"""Certificates whose content exercises the RFC 8785 rules (non-ASCII and astral text, control
characters, exponent-form numbers) are signed over the bytes ``rfc8785`` gives, so the auditor's
example script and any JCS tool verify them; numbers a verifier could not re-canonicalise are
refused when the certificate is built, not discovered when it is checked."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
from test_certificate import CERT_ID, ISSUED_AT, SIGNING_KEY, VERIFICATION, make_context, make_person, make_result

from imaging import signing
from imaging.certificate import build_certificate, dumps_envelope, sign_certificate
from imaging.certificate_context import DeviceInfo
from imaging.certificate_destruction import DestroyedMedium, DestructionContext, build_destruction_certificate
from imaging.certificate_errors import CertificateRefusedError
from imaging.offline_verify import loads, verify_envelope

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_certificate_example.py"
# text from devices and people: accents, a combining mark, an astral emoji, U+2028, "/", control
# characters (ESC from a tool's colour codes, NUL, DEL), a BOM and a non-character
ODD_TEXT = "Caf\u00e9 A\u030a \U0001f4be \u2028 a/b \x1b[0m\x00\x7f \ufeff\uffff \u20ac"


@pytest.mark.parametrize("coverage", [1.0, 3e-7, 0.000001, 0.1 + 0.2])
def test_a_certificate_with_odd_text_and_numbers_verifies_with_the_example_script(tmp_path, coverage) -> None:
    context = make_context(
        device=DeviceInfo(manufacturer="D\u00e9ll", model=ODD_TEXT, serial_number="8XK2Q93", kind="laptop"),
        sanitised_by=make_person("Zo\u00eb \u00d8stergaard", "Device technician"),
    )
    result = make_result(verification=dataclasses.replace(VERIFICATION, coverage=coverage))
    doc = build_certificate(result, context, certificate_id=CERT_ID, issued_at=ISSUED_AT)
    envelope = sign_certificate(doc, SIGNING_KEY)
    reference = rfc8785.dumps(envelope["certificate"])
    assert envelope["signature"]["digest_sha256"] == hashlib.sha256(reference).hexdigest()
    cert = tmp_path / "cert.json"
    cert.write_bytes(dumps_envelope(envelope))
    assert rfc8785.dumps(loads(cert.read_text("utf-8"))["certificate"]) == reference  # as an auditor parses it
    verify_envelope(loads(cert.read_text("utf-8")), SIGNING_KEY.public_key())
    key = tmp_path / "site.pub.pem"
    key.write_bytes(signing.public_key_to_pem(SIGNING_KEY.public_key()))
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(cert), str(key)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def destruction_context(method: str) -> DestructionContext:
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    return DestructionContext(
        organisation="Example Constabulary",
        site="Hendon device factory",
        device=DeviceInfo(manufacturer="Dell", model="Latitude 7440", serial_number="8XK2Q93", kind="laptop"),
        medium=DestroyedMedium("S64DNX0R123456", "nvme"),
        method=method,
        reason="erase failed",
        destroyed_at=when,
        requested_by=make_person("Alex Morgan", "Device technician"),
        witnessed_by=make_person("Sam Patel", "Sanitisation supervisor"),
        photo_sha256=("c" * 64,),
    )


@pytest.mark.parametrize(("method", "text"), [("shredded to 2 mm", b"2"), ("shredded to 0.25 mm", b"0.25")])
def test_a_particle_size_is_signed_in_its_jcs_form_and_verifies(method: str, text: bytes) -> None:
    envelope = sign_certificate(build_destruction_certificate(destruction_context(method)), SIGNING_KEY)
    assert b'"particle_size_mm":' + text + b"," in rfc8785.dumps(envelope["certificate"])
    verify_envelope(loads(dumps_envelope(envelope).decode()), SIGNING_KEY.public_key())


@pytest.mark.parametrize("size", ["9007199254740992", "20000000000000000", "99999999999999999999"])
def test_a_particle_size_no_verifier_could_re_canonicalise_is_refused(size: str) -> None:
    """JCS writes 2e16 as 20000000000000000; parsed back that is an integer beyond 2**53 - 1, which
    rfc8785 refuses, so a certificate signed with it would never verify: refuse it when building."""
    with pytest.raises(CertificateRefusedError, match="below 2"):
        build_destruction_certificate(destruction_context(f"shredded to {size} mm"))
