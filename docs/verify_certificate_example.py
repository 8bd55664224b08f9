"""Verify a Device Factory sanitisation certificate offline (needs only cryptography and rfc8785).

Usage: python verify_certificate_example.py CERT.json PUBLIC_KEY.pem   (exit 0 valid, 1 invalid)
"""

import base64
import hashlib
import json
import sys

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify(cert_path: str, key_path: str) -> str:
    with open(cert_path, "rb") as f:
        envelope = json.load(f)
    with open(key_path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("public key is not Ed25519")
    cert, sig = envelope["certificate"], envelope["signature"]
    if (envelope["format"], envelope["schema_version"], sig["algorithm"]) != (
        "device-factory-certificate",
        1,
        "Ed25519",
    ):
        raise ValueError("unsupported format, schema version or algorithm")
    raw_key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(raw_key).digest()).decode().rstrip("=")
    if sig["key_fingerprint"] != fingerprint:
        raise ValueError(f"key fingerprint mismatch: certificate names {sig['key_fingerprint']}")
    payload = rfc8785.dumps(cert)  # RFC 8785 canonical bytes: what was hashed and signed
    if hashlib.sha256(payload).hexdigest() != sig["digest_sha256"]:
        raise ValueError("digest mismatch: certificate content changed")
    signature = base64.b64decode(sig["value"], validate=True)
    if base64.b64encode(signature).decode() != sig["value"]:
        raise ValueError("signature is not canonical base64")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise ValueError(f"signature invalid for key {fingerprint}") from None
    return f"certificate {cert['certificate_id']} signed by {fingerprint}, SHA-256 {sig['digest_sha256']}"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        print("VALID:", verify(sys.argv[1], sys.argv[2]))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSON and base64 errors are ValueErrors
        print("INVALID:", exc if not isinstance(exc, KeyError) else f"missing field {exc}")
        sys.exit(1)
