"""Schema version 2: what NIST SP 800-88 Rev. 2 and IEEE 2883 add, round-tripped and tampered with
field by field, and version 1 certificates still verifying.

Builders come from ``test_certificate``; the version 1 certificate is a file signed before
version 2 existed (``fixtures/v1-certificate.json``, with its public key beside it).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from test_certificate import (
    SIGNING_KEY,
    each_changed,
    each_removed,
    leaf_paths,
    make_context,
    make_result,
    reload,
    signed_envelope,
)

from imaging import signing
from imaging.certificate import (
    CertificateRefusedError,
    DigestMismatchError,
    MalformedEnvelopeError,
    build_certificate,
    dumps_envelope,
    load_envelope,
    sign_certificate,
    verify_certificate,
)
from imaging.ieee2883 import method_standard
from imaging.methods import firmware_methods
from imaging.result import Level, Technique
from imaging.tablets.methods import CRYPTO_RESET, EmmcSecureErase

FIXTURES = Path(__file__).parent / "fixtures"
V1_CERT, V1_KEY = FIXTURES / "v1-certificate.json", FIXTURES / "v1-key.pub.pem"
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_certificate_example.py"

# Every member schema version 2 added, as paths into the document.
V2_MEMBERS = (
    ("certificate_type",),
    ("standards",),
    ("media", "firmware_revision"),
    ("media", "sanitize_capabilities"),
    ("reason_for_sanitisation",),
    ("sanitisation", "ieee2883"),
    ("sanitisation", "crypto_erase"),
    ("validation",),
    ("tool", "agent"),
    ("personnel", "sanitised_by", "account"),
    ("personnel", "validated_by", "account"),
)


def v2_leaves(doc: dict) -> list[tuple]:
    """Every scalar under a member version 2 added (command statuses included)."""
    leaves = [p for p in leaf_paths(doc) if any(p[: len(m)] == m for m in V2_MEMBERS)]
    return leaves + [p for p in leaf_paths(doc) if "status" in p]


def test_round_trip_keeps_every_v2_field(tmp_path):
    envelope = reload(signed_envelope(), tmp_path)
    doc = verify_certificate(envelope, SIGNING_KEY.public_key()).certificate
    assert (envelope["schema_version"], doc["schema_version"], doc["certificate_type"]) == (2, 2, "sanitisation")
    assert doc["standards"] == {"sanitisation": "NIST SP 800-88 Rev. 2", "techniques": "IEEE 2883-2022"}
    assert doc["media"]["firmware_revision"] == "2B2QEXM7"
    assert doc["media"]["sanitize_capabilities"] == ["nvme-sanitize-crypto-erase", "nvme-format-crypto-erase"]
    assert doc["sanitisation"]["ieee2883"] == {
        "category": "purge",
        "interface": "NVMe",
        "technique": "Sanitize Crypto Erase",
        "clause": "IEEE 2883-2022, NVMe interface: Sanitize command, Crypto Erase action (SANACT 100b)",
    }
    assert [c["status"] for c in doc["sanitisation"]["commands"]] == [
        {"outcome": "in_progress", "detail": "sanitize accepted; it runs in the background (see the sanitize log)"},
        {"outcome": "completed", "detail": "sanitize completed (SSTAT 001b)"},
    ]
    crypto = doc["sanitisation"]["crypto_erase"]
    assert crypto["encrypted_from_first_use"] is True and "nvme-sanitize-crypto-erase" in crypto["basis"]
    assert crypto["key_destroyed"].startswith("every media encryption key of the NVM subsystem")
    assert doc["validation"]["result"] == "accepted"
    assert doc["validation"]["validated_by"] == doc["personnel"]["validated_by"]
    assert "(10.43% of the medium) at 2002 locations" in doc["validation"]["sample"]
    assert doc["tool"]["agent"] == "bench-agent-3"
    assert doc["personnel"]["sanitised_by"]["account"] == "amorgan"
    assert doc["reason_for_sanitisation"] == "returned by its officer"
    assert doc["confidentiality"]["pre_sanitisation"] == "OFFICIAL-SENSITIVE"


def test_every_v2_field_changed_alone_fails_with_digest_mismatch():
    envelope = signed_envelope()
    public = SIGNING_KEY.public_key()
    leaves = v2_leaves(envelope["certificate"])
    assert len(leaves) >= 30  # statuses, crypto erase, validation, standards, accounts...
    for tampered in each_changed(envelope, leaves):
        with pytest.raises(DigestMismatchError):
            verify_certificate(tampered, public)
    for tampered in each_removed(envelope, V2_MEMBERS):  # and each added member removed
        with pytest.raises(DigestMismatchError):
            verify_certificate(tampered, public)


@pytest.mark.parametrize("kind", [None, "erasure", 2, ["sanitisation"]])
def test_a_v2_document_must_name_a_known_type_even_when_signed(kind):
    doc = build_certificate(make_result(), make_context())
    doc["certificate_type"] = kind
    with pytest.raises(MalformedEnvelopeError, match="certificate_type"):
        verify_certificate(sign_certificate(doc, SIGNING_KEY), SIGNING_KEY.public_key())


def test_version_1_certificates_still_verify():
    envelope = load_envelope(V1_CERT)
    public = signing.public_key_from_pem(V1_KEY.read_bytes())
    verified = verify_certificate(envelope, public)
    assert envelope["schema_version"] == 1 and "validation" not in verified.certificate
    assert verified.digest_sha256 == envelope["signature"]["digest_sha256"]
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(V1_CERT), str(V1_KEY)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("VALID: certificate "), done.stdout + done.stderr


def test_example_script_rejects_a_v2_certificate_of_unknown_type(tmp_path):
    doc = build_certificate(make_result(), make_context())
    doc["certificate_type"] = "erasure"
    cert, key = tmp_path / "cert.json", tmp_path / "key.pem"
    cert.write_bytes(dumps_envelope(sign_certificate(doc, SIGNING_KEY)))
    key.write_bytes(signing.public_key_to_pem(SIGNING_KEY.public_key()))
    done = subprocess.run([sys.executable, "-I", str(SCRIPT), str(cert), str(key)], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (1, "INVALID: 'certificate.certificate_type' is not a known type")


def test_overwrite_has_no_crypto_erase_block_and_cites_the_overwrite_clause():
    result = make_result(
        method="overwrite-random",
        technique=Technique.OVERWRITE,
        level_requested=Level.CLEAR,
        level_achieved=Level.CLEAR,
        pattern="random",
        pattern_seed_hex="ab" * 32,
        bytes_written=256 * 1024 * 1024,
        commands=(),
        firmware_revision=None,
        sanitize_capabilities=(),
    )
    doc = build_certificate(result, make_context())
    assert doc["sanitisation"]["crypto_erase"] is None
    assert doc["sanitisation"]["ieee2883"]["technique"] == "Overwrite"
    assert doc["media"]["firmware_revision"] is None and doc["media"]["sanitize_capabilities"] == []


@pytest.mark.parametrize(
    ("changes", "context_changes", "reason"),
    [
        ({"level_requested": Level.PURGE, "level_achieved": Level.CLEAR}, {}, "less than the purge requested"),
        ({}, {"reason_for_sanitisation": " "}, "reason_for_sanitisation is empty"),
        ({}, {"pre_sanitisation_confidentiality": None}, "pre_sanitisation_confidentiality is empty"),
    ],
)
def test_v2_refusals(changes, context_changes, reason):
    with pytest.raises(CertificateRefusedError, match=reason):
        build_certificate(make_result(**changes), dataclasses.replace(make_context(), **context_changes))


def test_every_engine_method_cites_its_ieee_2883_technique():
    names = [m.name for m in firmware_methods()] + ["overwrite-random", "overwrite-zeros", "overwrite-ones"]
    names += [CRYPTO_RESET, EmmcSecureErase.label]
    for name in names:
        standard = method_standard(name)
        assert standard is not None and standard.clause.startswith(("IEEE 2883-2022", "NIST SP 800-88 Rev. 2")), name
    doc = build_certificate(make_result(method="a-method-nobody-mapped"), make_context())
    assert doc["sanitisation"]["ieee2883"] == {
        "category": "purge",
        "interface": None,
        "technique": None,
        "clause": None,
    }
