"""Signed ledger heads ("anchors"): what makes removing entries from the end of the chain detectable.

The rows alone prove that nothing inside the chain changed, but not that nothing was cut off its
end. An anchor is the head (sequence number and entry hash) at some moment, signed with the site
key and kept outside the database (a write-once share, the auditors' mailbox, an audit bundle).
An anchor names its entry by its position in the site's own log (``log_seq``; for the log from
before per-site logs, the same number as its ``seq``).
``check_anchor`` then proves the chain still contains that head: the entry at that sequence exists
and has that hash. Together with ``verify_ledger`` (every entry links back to genesis) this shows
the ledger as it stood when the anchor was signed is still a prefix of the ledger now.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, text

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.errors import InvalidInput
from factory.kernel.ledger.logs import configured_log
from imaging import signing

ANCHOR_FORMAT = "device-factory/ledger-anchor/1"


class AnchorFormatError(InvalidInput):
    """The file is not a ledger anchor this version can read."""


@dataclass(frozen=True)
class LedgerAnchor:
    site: str
    seq: int
    entry_hash: str
    signed_at: str
    key_fingerprint: str
    signature: str  # base64 Ed25519 over the canonical JSON of every other field

    def body(self) -> dict[str, Any]:
        return {
            "format": ANCHOR_FORMAT,
            "site": self.site,
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "signed_at": self.signed_at,
            "key_fingerprint": self.key_fingerprint,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def dumps(self) -> bytes:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2) + b"\n"


def sign_head(engine: Engine, private_key: Ed25519PrivateKey, site: str, log: str | None = None) -> LedgerAnchor:
    """Sign the current head of ``log`` (default: this site's). An empty log has nothing to anchor."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT log_seq, entry_hash FROM custody_entry WHERE log = :log ORDER BY log_seq DESC LIMIT 1"),
            {"log": log or configured_log()},
        ).first()
    if row is None:
        raise InvalidInput("the ledger is empty: there is no head to anchor")
    return sign_entry(private_key, site, int(row[0]), str(row[1]))


def sign_entry(private_key: Ed25519PrivateKey, site: str, seq: int, entry_hash: str) -> LedgerAnchor:
    fingerprint = signing.key_fingerprint(private_key.public_key())
    unsigned = LedgerAnchor(site, seq, entry_hash, utc_now(), fingerprint, "")
    signature = signing.sign(private_key, canonical_bytes(unsigned.body()))
    return LedgerAnchor(**{**unsigned.__dict__, "signature": base64.b64encode(signature).decode("ascii")})


def parse_anchor(data: bytes) -> LedgerAnchor:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AnchorFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != ANCHOR_FORMAT:
        raise AnchorFormatError(f"not a ledger anchor (format must be {ANCHOR_FORMAT!r})")
    try:
        anchor = LedgerAnchor(
            site=doc["site"],
            seq=doc["seq"],
            entry_hash=doc["entry_hash"],
            signed_at=doc["signed_at"],
            key_fingerprint=doc["key_fingerprint"],
            signature=doc["signature"],
        )
    except KeyError as exc:
        raise AnchorFormatError(f"ledger anchor lacks the field {exc.args[0]!r}") from exc
    if (
        type(anchor.seq) is not int
        or anchor.seq < 1
        or not all(isinstance(v, str) for v in (anchor.site, anchor.entry_hash, anchor.signed_at, anchor.signature))
    ):
        raise AnchorFormatError("ledger anchor has a field of the wrong type")
    return anchor


def check_anchor(
    engine: Engine, anchor: LedgerAnchor, public_key: Ed25519PublicKey, log: str | None = None
) -> str | None:
    """None when the anchor is authentic and its head is still in the chain of ``log`` (default:
    this site's); else the reason."""
    try:
        signature = base64.b64decode(anchor.signature, validate=True)
        signing.verify(public_key, canonical_bytes(anchor.body()), signature)
    except (binascii.Error, signing.SigningError) as exc:
        return f"anchor at entry {anchor.seq} is not signed by this site's key ({exc})"
    with engine.connect() as conn:
        # The entry at that position of the log, or (an anchor of a backup, which names the global
        # sequence number) with that seq: either still holding the anchored hash is the anchored entry.
        where = {"log": log or configured_log(), "seq": anchor.seq}
        found = [str(r[0]) for r in conn.execute(_AT, where)]
        head = conn.execute(text("SELECT max(log_seq) FROM custody_entry WHERE log = :log"), where).scalar()
    said = f"anchor signed {anchor.signed_at} says entry {anchor.seq} has hash {anchor.entry_hash}"
    if not found:
        return f"ledger truncated: {said}, but the chain now ends at entry {head or 0}"
    if anchor.entry_hash not in found:
        return f"ledger rewritten: {said}, but it now has hash {found[0]}"
    return None


_AT = text(
    "SELECT entry_hash FROM custody_entry WHERE log = :log AND log_seq = :seq"
    " UNION ALL SELECT entry_hash FROM custody_entry WHERE seq = :seq"
)
