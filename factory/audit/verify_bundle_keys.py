"""The signed key list, for verify_bundle.py (shipped beside it in a bundle).

Standalone like it: Python 3.9+, `cryptography`, `rfc8785` and offline_verify.py (the primitives
verify_bundle.py puts on the path); nothing of Device Factory.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from offline_verify import load_public_key, loads, verify_signature


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
    return load_public_key(pem.encode("ascii"))


def load_keyring(root: Path, trusted: str, problems: list[str]) -> Keyring:
    """keys/site-keys.json, checked: signed by a listed key that ``trusted`` is or (through
    endorsements) vouches for. A problem is added if not, and only ``trusted``'s own record kept."""
    try:
        doc = loads((root / "keys" / "site-keys.json").read_text(encoding="utf-8"))
        records = {r["fingerprint"]: r for r in doc["keys"]}
        body = {k: v for k, v in doc.items() if k != "signature"}
        signer = records[doc["signed_by"]]
        verify_signature(
            load_pem(signer["public_key_pem"]), doc["signature"], rfc8785.dumps(body), "keys/site-keys.json"
        )
        current, seen = signer, set()
        while current["fingerprint"] != trusted:
            previous = records.get(current.get("endorsed_by") or "")
            if previous is None or current["fingerprint"] in seen:
                raise ValueError(
                    f"its signer {signer['fingerprint']} is not the trusted key {trusted} nor endorsed by it"
                )
            seen.add(current["fingerprint"])
            endorsed = {k: current[k] for k in ("site", "fingerprint", "valid_from")}
            verify_signature(load_pem(previous["public_key_pem"]), current["endorsement"], rfc8785.dumps(endorsed),
                    f"the endorsement of key {current['fingerprint']}")  # fmt: skip
            current = previous
        return Keyring(records)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"keys/site-keys.json: not a key list the trusted key vouches for ({exc})")
        return Keyring({})
