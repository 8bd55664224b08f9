"""Ed25519 key handling, fingerprints and detached signatures."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imaging import signing


@pytest.fixture(scope="module")
def key() -> signing.Ed25519PrivateKey:
    return signing.generate_private_key()


def test_private_key_pem_is_unencrypted_pkcs8_and_round_trips(key):
    pem = signing.private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, not "ENCRYPTED PRIVATE KEY"
    loaded = signing.private_key_from_pem(pem)
    assert signing.public_key_to_raw(loaded.public_key()) == signing.public_key_to_raw(key.public_key())


def test_public_key_pem_and_raw_round_trip(key):
    public = key.public_key()
    pem = signing.public_key_to_pem(public)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    raw = signing.public_key_to_raw(public)
    assert len(raw) == 32
    assert signing.public_key_to_raw(signing.public_key_from_pem(pem)) == raw
    assert signing.public_key_to_raw(signing.public_key_from_raw(raw)) == raw


def test_fingerprint_is_unpadded_base64_sha256_of_raw_key(key):
    public = key.public_key()
    fingerprint = signing.key_fingerprint(public)
    expected = base64.b64encode(hashlib.sha256(signing.public_key_to_raw(public)).digest()).decode()
    assert fingerprint == "SHA256:" + expected.rstrip("=")
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint)
    assert signing.key_fingerprint(signing.generate_private_key().public_key()) != fingerprint


def test_sign_and_verify(key):
    data = b"canonical certificate bytes"
    signature = signing.sign(key, data)
    assert len(signature) == 64
    signing.verify(key.public_key(), data, signature)


def test_verify_rejects_changed_data_changed_signature_and_other_key(key):
    data = b"canonical certificate bytes"
    signature = signing.sign(key, data)
    with pytest.raises(signing.SignatureInvalidError, match=r"signature invalid for key SHA256:"):
        signing.verify(key.public_key(), data + b" ", signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(signing.SignatureInvalidError):
        signing.verify(key.public_key(), data, flipped)
    with pytest.raises(signing.SignatureInvalidError):
        signing.verify(signing.generate_private_key().public_key(), data, signature)
    with pytest.raises(signing.SignatureInvalidError, match="must be 64 bytes, got 63"):
        signing.verify(key.public_key(), data, signature[:-1])


def test_loaders_reject_non_ed25519_encrypted_and_garbage(key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(signing.KeyFormatError, match="expected Ed25519"):
        signing.private_key_from_pem(ec_pem)
    ec_public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(signing.KeyFormatError, match="expected Ed25519"):
        signing.public_key_from_pem(ec_public_pem)

    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"),
    )
    with pytest.raises(signing.KeyFormatError, match="encrypted"):
        signing.private_key_from_pem(encrypted)

    with pytest.raises(signing.KeyFormatError, match="not a PEM private key"):
        signing.private_key_from_pem(b"not a key")
    with pytest.raises(signing.KeyFormatError, match="not a PEM public key"):
        signing.public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(signing.KeyFormatError, match="must be 32 bytes, got 31"):
        signing.public_key_from_raw(b"\x00" * 31)
