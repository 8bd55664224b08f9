"""The signed key list and RFC 9162 audit paths, for verify_bundle.py (shipped beside it in a bundle).

Standalone like it: Python 3.9+, `cryptography` and `rfc8785`; nothing of Device Factory.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def inclusion_root(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """The root an RFC 9162 audit path leads to (section 2.1.3.2), or ValueError."""
    if not 0 <= index < size:
        raise ValueError(f"position {index} is outside the signed log of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path too long")
        if fn & 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("audit path too short")
    return r


def _moment(stamp: Any) -> datetime:
    moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # noqa: UP017 - Python 3.9 has no datetime.UTC


class Keyring:
    """The site key list: each key and when it could sign."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records

    def key(self, fp: Any, at: Any) -> Ed25519PublicKey:
        """The key ``fp`` names if it could sign at ``at``; ValueError with the reason if not."""
        record = self.records.get(fp) if isinstance(fp, str) else None
        if record is None:
            raise ValueError(f"signed by key {fp!r}, which is not in the site key list")
        moment = _moment(at)
        if record.get("revoked_at") and moment >= _moment(record["revoked_at"]):
            raise ValueError(f"signed by key {fp} at {at}, after it was revoked ({record.get('revoked_reason')})")
        if moment < _moment(record["valid_from"]) or (record.get("valid_to") and moment > _moment(record["valid_to"])):
            raise ValueError(f"signed by key {fp} at {at}, outside its validity")
        return load_pem(record["public_key_pem"])


def load_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _signed(key: Ed25519PublicKey, signature: str, data: bytes, what: str) -> None:
    try:
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError):
        raise ValueError(f"{what}: signature does not verify") from None


def load_keyring(root: Path, trusted: str, problems: list[str]) -> Keyring:
    """keys/site-keys.json, checked: signed by a listed key that ``trusted`` is or (through
    endorsements) vouches for. A problem is added if not, and only ``trusted``'s own record kept."""
    try:
        doc = _load_json((root / "keys" / "site-keys.json").read_text(encoding="utf-8"))
        records = {r["fingerprint"]: r for r in doc["keys"]}
        body = {k: v for k, v in doc.items() if k != "signature"}
        signer = records[doc["signed_by"]]
        _signed(load_pem(signer["public_key_pem"]), doc["signature"], rfc8785.dumps(body), "keys/site-keys.json")
        current, seen = signer, set()
        while current["fingerprint"] != trusted:
            previous = records.get(current.get("endorsed_by") or "")
            if previous is None or current["fingerprint"] in seen:
                raise ValueError(
                    f"its signer {signer['fingerprint']} is not the trusted key {trusted} nor endorsed by it"
                )
            seen.add(current["fingerprint"])
            endorsed = {k: current[k] for k in ("site", "fingerprint", "valid_from")}
            _signed(load_pem(previous["public_key_pem"]), current["endorsement"], rfc8785.dumps(endorsed),
                    f"the endorsement of key {current['fingerprint']}")  # fmt: skip
            current = previous
        return Keyring(records)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"keys/site-keys.json: not a key list the trusted key vouches for ({exc})")
        return Keyring({})
