"""Verify a Device Factory sanitisation certificate offline (needs only cryptography and rfc8785).

And offline_verify.py, the verification primitives it shares with the factory (strict JSON, the
key fingerprint): keep it beside this script; in a checkout of the repository it is
imaging/offline_verify.py, found there; an audit bundle carries a copy beside verify_bundle.py.

Usage: python verify_certificate_example.py CERT.json PUBLIC_KEY.pem   (exit 0 valid, 1 invalid)

Strict on purpose: it rejects everything the format forbids (docs/certificate-format.md), not only
a bad signature. A lenient reader can be shown a file whose signed content verifies while what a
person or another parser reads differs: a duplicated member (most parsers keep the last value,
some the first), an unsigned extra envelope member, a version spelled 1.0 or true.
"""

import base64
import hashlib
import hmac
import re
import sys
import uuid
from pathlib import Path

import rfc8785
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # offline_verify.py beside this script, else
sys.path.append(str(Path(__file__).resolve().parent.parent / "imaging"))  # the repository's copy
try:
    from offline_verify import fingerprint as key_fingerprint
    from offline_verify import load_public_key, loads
except ModuleNotFoundError:
    sys.exit("offline_verify.py is missing: keep it beside this script (in the repository: imaging/)")

FORMAT, ALGORITHM = "device-factory-certificate", "Ed25519"
SCHEMA_VERSIONS = (1, 2)  # version 1 certificates keep verifying, forever
CERTIFICATE_TYPES = ("sanitisation", "destruction")  # schema version 2 names its type
ENVELOPE_FIELDS = ("format", "schema_version", "certificate", "signature")
SIGNATURE_FIELDS = ("algorithm", "key_fingerprint", "digest_sha256", "value")
MAX_BYTES = 64 * 1024 * 1024  # far above any real certificate
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def load(cert_path: str) -> dict:
    """Step 1: strict UTF-8 JSON, no duplicate member names, no NaN or Infinity, an object."""
    with open(cert_path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise ValueError(f"file is larger than {MAX_BYTES} bytes")
    text = raw.decode("utf-8")  # strict: no BOM-sniffing, no UTF-16 (a UnicodeDecodeError is a ValueError)
    envelope = loads(text)
    if not isinstance(envelope, dict):
        raise ValueError("the file is not a JSON object")
    return envelope


def _exact_members(obj: dict, fields: tuple, prefix: str) -> None:
    for name in fields:
        if name not in obj:
            raise ValueError(f"missing field '{prefix}{name}'")
    for name in obj:
        if name not in fields:  # not covered by the signature: a reader could be misled by it
            raise ValueError(f"unexpected field '{prefix}{name}'")


def check_envelope(envelope: dict) -> tuple:
    """Step 2: exactly the envelope and signature members, each of its exact JSON type and value.

    ``type(x) is int`` and not ``x == 1``: in Python ``1.0 == 1`` and ``True == 1``.
    """
    _exact_members(envelope, ENVELOPE_FIELDS, "")
    cert, sig = envelope["certificate"], envelope["signature"]
    if type(cert) is not dict or type(sig) is not dict:
        raise ValueError("'certificate' and 'signature' must be objects")
    _exact_members(sig, SIGNATURE_FIELDS, "signature.")
    if type(envelope["format"]) is not str or type(envelope["schema_version"]) is not int:
        raise ValueError("'format' must be a string and 'schema_version' an integer")
    if any(type(sig[name]) is not str for name in SIGNATURE_FIELDS):
        raise ValueError("every signature field must be a string")
    if (envelope["format"], sig["algorithm"]) != (FORMAT, ALGORITHM) or envelope[
        "schema_version"
    ] not in SCHEMA_VERSIONS:
        raise ValueError("unsupported format, schema version or algorithm")
    return cert, sig


def verify(cert_path: str, key_path: str) -> str:
    envelope = load(cert_path)
    cert, sig = check_envelope(envelope)
    with open(key_path, "rb") as f:
        key = load_public_key(f.read())
    fingerprint = key_fingerprint(key)
    if sig["key_fingerprint"] != fingerprint:  # step 3
        raise ValueError(f"key fingerprint mismatch: certificate names {sig['key_fingerprint']!r}")
    if not HEX_SHA256.fullmatch(sig["digest_sha256"]):
        raise ValueError("'signature.digest_sha256' is not 64 lowercase hex digits")
    payload = rfc8785.dumps(cert)  # step 4: RFC 8785 canonical bytes, what was hashed and signed
    if not hmac.compare_digest(hashlib.sha256(payload).hexdigest(), sig["digest_sha256"]):
        raise ValueError("digest mismatch: certificate content changed")
    signature = base64.b64decode(sig["value"], validate=True)  # step 5
    if base64.b64encode(signature).decode() != sig["value"]:
        raise ValueError("signature is not canonical base64")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise ValueError(f"signature invalid for key {fingerprint}") from None
    version, cert_id = cert.get("schema_version"), cert.get("certificate_id")  # step 6
    if type(version) is not int or version != envelope["schema_version"]:
        raise ValueError("certificate schema_version differs from the envelope's")
    if type(cert_id) is not str or not _is_uuid(cert_id):
        raise ValueError("'certificate.certificate_id' is not a UUID")
    if version >= 2 and (
        type(cert.get("certificate_type")) is not str or cert["certificate_type"] not in CERTIFICATE_TYPES
    ):
        raise ValueError("'certificate.certificate_type' is not a known type")
    return f"certificate {cert_id} signed by {fingerprint}, SHA-256 {sig['digest_sha256']}"


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print("VALID:", verify(argv[1], argv[2]))
    except (OSError, ValueError, UnsupportedAlgorithm) as exc:  # JSON, UTF-8, base64, RFC 8785: ValueErrors
        print("INVALID:", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
