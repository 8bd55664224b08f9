"""Tamper detection and malformed envelopes: every changed byte, field or spelling fails with its reason.

Builders and the tree helpers (``leaf_paths``, ``altered``...) come from ``test_certificate``.
"""

from __future__ import annotations

import copy
import json

import pytest
from test_certificate import (
    CERT_ID,
    ISSUED_AT,
    SIGNING_KEY,
    altered,
    each_changed,
    each_removed,
    get_at,
    leaf_paths,
    make_context,
    make_result,
    reload,
    set_at,
    signed_envelope,
)

from imaging import signing
from imaging.certificate import (
    CertificateError,
    DigestMismatchError,
    EnvelopeLoadError,
    KeyMismatchError,
    MalformedEnvelopeError,
    SignatureInvalidError,
    UnsupportedEnvelopeError,
    build_certificate,
    dumps_envelope,
    load_envelope,
    sign_certificate,
    verify_certificate,
)


def test_every_changed_leaf_of_the_certificate_fails_verification(tmp_path):
    envelope = reload(signed_envelope(), tmp_path)
    public = SIGNING_KEY.public_key()
    paths = list(leaf_paths(envelope["certificate"]))
    assert len(paths) > 80  # the walk really reaches every section
    for tampered in each_changed(envelope, paths):
        with pytest.raises(DigestMismatchError, match="digest mismatch: certificate content changed"):
            verify_certificate(tampered, public)


def test_removed_or_added_certificate_fields_fail_verification():
    envelope = signed_envelope()
    public = SIGNING_KEY.public_key()
    members = [path for path in leaf_paths(envelope["certificate"]) if not isinstance(path[-1], int)]
    for tampered in each_removed(envelope, members):
        with pytest.raises(DigestMismatchError):
            verify_certificate(tampered, public)
    tampered = copy.deepcopy(envelope)
    tampered["certificate"]["media"]["note"] = "added later"
    with pytest.raises(DigestMismatchError):
        verify_certificate(tampered, public)
    tampered = copy.deepcopy(envelope)
    tampered["certificate"]["residual_risk"].pop()
    with pytest.raises(DigestMismatchError):
        verify_certificate(tampered, public)


@pytest.mark.parametrize(
    ("field", "error", "reason"),
    [
        ("format", UnsupportedEnvelopeError, "unsupported format"),
        ("schema_version", UnsupportedEnvelopeError, "unsupported schema version 3"),
        ("signature.algorithm", UnsupportedEnvelopeError, "unsupported signature algorithm"),
        ("signature.key_fingerprint", KeyMismatchError, "key fingerprint mismatch"),
        ("signature.digest_sha256", MalformedEnvelopeError, "not 64 lowercase hex"),
        ("signature.value", MalformedEnvelopeError, "signature.value"),
    ],
)
def test_changed_envelope_and_signature_fields_fail(field, error, reason):
    envelope = signed_envelope()
    path = tuple(field.split("."))
    set_at(envelope, path, altered(get_at(envelope, path)))
    with pytest.raises(error, match=reason):
        verify_certificate(envelope, SIGNING_KEY.public_key())


def test_every_single_character_change_in_the_signature_block_fails():
    envelope = signed_envelope()
    public = SIGNING_KEY.public_key()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    for field in ("digest_sha256", "value", "key_fingerprint"):
        original = envelope["signature"][field]
        for index, char in enumerate(original):
            replacement = next(c for c in ("0", "1", "A", "B") if c != char and c in alphabet + "0123456789abcdef")
            tampered = copy.deepcopy(envelope)
            tampered["signature"][field] = original[:index] + replacement + original[index + 1 :]
            with pytest.raises(CertificateError):
                verify_certificate(tampered, public)


def test_non_canonical_base64_spelling_of_a_valid_signature_is_rejected():
    envelope = signed_envelope()
    value = envelope["signature"]["value"]
    assert value.endswith("==")  # 64 bytes: the last data character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(value[-3]) ^ 1]  # flips an unused bit: decodes to the same bytes
    envelope["signature"]["value"] = value[:-3] + sibling + "=="
    with pytest.raises(MalformedEnvelopeError, match="not canonical base64"):
        verify_certificate(envelope, SIGNING_KEY.public_key())


def test_a_forged_signature_that_names_the_right_key_is_invalid():
    other = signing.generate_private_key()
    envelope = signed_envelope(key=other)
    envelope["signature"]["key_fingerprint"] = signing.key_fingerprint(SIGNING_KEY.public_key())
    with pytest.raises(SignatureInvalidError, match=r"signature invalid for key SHA256:\S+"):
        verify_certificate(envelope, SIGNING_KEY.public_key())


def test_wrong_key_fails():
    envelope = signed_envelope()
    with pytest.raises(KeyMismatchError, match="key fingerprint mismatch"):
        verify_certificate(envelope, signing.generate_private_key().public_key())


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["signature"].pop("value"), "malformed envelope: missing field 'signature.value'"),
        (lambda e: e.pop("certificate"), "malformed envelope: missing field 'certificate'"),
        (lambda e: e.update(comment="trust me"), "unexpected field 'comment'"),
        (lambda e: e["signature"].update(signed_by="lead"), "unexpected field 'signature.signed_by'"),
        (lambda e: e.update(schema_version="1"), "'schema_version' must be an integer"),
        (lambda e: e.update(schema_version=True), "'schema_version' must be an integer"),
        (lambda e: e.update(certificate=[]), "'certificate' is not an object"),
        (lambda e: e["signature"].update(value=None), "'signature.value' must be a string"),
        (lambda e: e["signature"].update(value="!!!"), "'signature.value' is not base64"),
    ],
)
def test_malformed_envelopes_have_one_line_reasons(mutate, reason):
    envelope = signed_envelope()
    mutate(envelope)
    with pytest.raises(MalformedEnvelopeError) as info:
        verify_certificate(envelope, SIGNING_KEY.public_key())
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_unsupported_schema_version_message():
    envelope = signed_envelope()
    envelope["schema_version"] = 7
    with pytest.raises(UnsupportedEnvelopeError, match=r"^unsupported schema version 7$"):
        verify_certificate(envelope, SIGNING_KEY.public_key())


def test_signed_content_must_agree_with_the_envelope_version():
    doc = build_certificate(make_result(), make_context(), certificate_id=CERT_ID, issued_at=ISSUED_AT)
    doc["schema_version"] = 1
    with pytest.raises(MalformedEnvelopeError, match="schema_version differs"):
        verify_certificate(sign_certificate(doc, SIGNING_KEY), SIGNING_KEY.public_key())


def test_signing_does_not_alias_the_document():
    doc = build_certificate(make_result(), make_context())
    envelope = sign_certificate(doc, SIGNING_KEY)
    doc["media"]["serial_number"] = "changed after signing"
    verify_certificate(envelope, SIGNING_KEY.public_key())


# --- loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "is not JSON: Expecting property name"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
        (b"[1, 2]", "holds JSON list, not an object"),
        (b'{"format": 1, "format": 2}', "duplicate key 'format'"),
        (b'{"coverage": NaN}', "non-finite number NaN"),
    ],
)
def test_load_envelope_rejects_bad_files(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(EnvelopeLoadError, match=reason):
        load_envelope(path)


def test_load_envelope_reports_unreadable_files(tmp_path):
    with pytest.raises(EnvelopeLoadError, match=r"cannot read .*missing\.json: No such file"):
        load_envelope(tmp_path / "missing.json")
    with pytest.raises(EnvelopeLoadError, match="cannot read"):
        load_envelope(tmp_path)


def test_stored_json_keeps_non_ascii_and_control_characters(tmp_path):
    envelope = signed_envelope()
    stored = dumps_envelope(envelope)
    assert "caf\u00e9".encode() in stored
    assert json.loads(stored)["certificate"]["sanitisation"]["commands"][1]["stderr"].startswith("warning")
    verify_certificate(reload(envelope, tmp_path), SIGNING_KEY.public_key())
