"""Verify a Device Factory sanitisation certificate offline (needs only cryptography and rfc8785).

And offline_verify.py, the verification primitives it shares with the audit bundle's checker and
the factory: strict JSON, the key fingerprint, and the certificate check itself (verify_envelope,
steps 2 to 6 below). Keep it beside this script; in a checkout of the repository it is
imaging/offline_verify.py, found there; an audit bundle carries a copy beside verify_bundle.py.

Usage: python verify_certificate_example.py CERT.json PUBLIC_KEY.pem   (exit 0 valid, 1 invalid)

Strict on purpose: it rejects everything the format forbids (docs/certificate-format.md), not only
a bad signature. A lenient reader can be shown a file whose signed content verifies while what a
person or another parser reads differs: a duplicated member (most parsers keep the last value,
some the first), an unsigned extra envelope member, a version spelled 1.0 or true. The steps:
1 here, 2 to 6 in offline_verify.verify_envelope, numbered as docs/certificate-format.md numbers them.
"""

import sys
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # offline_verify.py beside this script, else
sys.path.append(str(Path(__file__).resolve().parent.parent / "imaging"))  # the repository's copy
try:
    from offline_verify import load_public_key, loads, verify_envelope
except ModuleNotFoundError:
    sys.exit("offline_verify.py is missing: keep it beside this script (in the repository: imaging/)")

MAX_BYTES = 64 * 1024 * 1024  # far above any real certificate


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


def verify(cert_path: str, key_path: str) -> str:
    envelope = load(cert_path)
    with open(key_path, "rb") as f:
        key = load_public_key(f.read())
    cert, signer = verify_envelope(envelope, key)  # steps 2 to 6, in offline_verify.py
    return f"certificate {cert['certificate_id']} signed by {signer}, SHA-256 {envelope['signature']['digest_sha256']}"


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
