"""Ed25519 keys, fingerprints and detached signatures for sanitisation certificates.

Pure functions over bytes and key objects: where keys live on disk, and with which permissions,
is the caller's policy (the factory's key store), not this module's.

Key fingerprint: ``"SHA256:" + base64(SHA-256(raw 32-byte public key))`` with the trailing ``=``
padding removed, the same shape OpenSSH prints (``ssh-keygen -l``) but hashed over the raw
Ed25519 public key rather than the SSH wire encoding.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from imaging.certificate_errors import CertificateError

RAW_PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64
FINGERPRINT_PREFIX = "SHA256:"

_K = TypeVar("_K", Ed25519PrivateKey, Ed25519PublicKey)


class SigningError(Exception):
    """Base of every error raised by this module."""


class KeyFormatError(SigningError):
    """Key material that is not a usable, unencrypted Ed25519 key."""


class SignatureInvalidError(SigningError, CertificateError):
    """A signature that does not verify under the given public key.

    The one class for this failure: also a ``CertificateError``, so a certificate check that meets
    it (``imaging.certificate.verify_certificate``) raises it as one of its own.
    """


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: protecting the file is the key store's job."""
    return private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``)."""
    return public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def public_key_to_raw(public_key: Ed25519PublicKey) -> bytes:
    """The 32-byte Ed25519 public key (RFC 8032 encoding)."""
    return public_key.public_bytes(
        encoding=serialization.Encoding.Raw,
        format=serialization.PublicFormat.Raw,
    )


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # raised for encrypted keys when no password is given
        raise KeyFormatError(f"private key is encrypted or needs a password: {exc}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"not a PEM private key: {_first_line(exc)}") from exc
    return _ed25519(key, Ed25519PrivateKey, "private")


def public_key_from_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"not a PEM public key: {_first_line(exc)}") from exc
    return _ed25519(key, Ed25519PublicKey, "public")


def public_key_from_raw(data: bytes) -> Ed25519PublicKey:
    if len(data) != RAW_PUBLIC_KEY_LENGTH:
        raise KeyFormatError(f"raw Ed25519 public key must be {RAW_PUBLIC_KEY_LENGTH} bytes, got {len(data)}")
    try:
        return Ed25519PublicKey.from_public_bytes(data)
    except ValueError as exc:
        raise KeyFormatError(f"not an Ed25519 public key: {_first_line(exc)}") from exc


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<unpadded base64 of SHA-256 over the raw 32-byte public key>``."""
    digest = hashlib.sha256(public_key_to_raw(public_key)).digest()
    return FINGERPRINT_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    """Detached 64-byte Ed25519 signature over ``data``."""
    return private_key.sign(data)


def verify(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> None:
    """Return quietly if ``signature`` is valid for ``data``; raise ``SignatureInvalidError`` if not.

    Raising rather than returning a bool keeps a forgotten check from passing silently.
    """
    if len(signature) != SIGNATURE_LENGTH:
        raise SignatureInvalidError(
            f"signature must be {SIGNATURE_LENGTH} bytes, got {len(signature)} (key {key_fingerprint(public_key)})"
        )
    try:
        public_key.verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureInvalidError(f"signature invalid for key {key_fingerprint(public_key)}") from exc


def _ed25519(key: object, expected: type[_K], kind: str) -> _K:
    """``key`` if it is the Ed25519 kind expected (PEM files may hold RSA, EC, ... keys)."""
    if not isinstance(key, expected):
        raise KeyFormatError(f"{kind} key is {type(key).__name__}, expected Ed25519")
    return key


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
