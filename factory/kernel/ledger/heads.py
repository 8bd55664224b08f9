"""Signed tree heads: a custody log's size and Merkle root at a moment, signed with a site key.

Each site's log has its own heads (``log``), signed with that site's key (format 2 names the log;
a format 1 head predates per-site logs and is of the one log there was, ``ledger_head.log``).

A head commits to every entry up to its size at once: an entry edited (its hash recomputed or
not), removed, reordered or inserted below it changes the root, and an entry appended after the
latest head is visible as the *unsigned tail* until the next head covers it. Heads are made on a
schedule (``HeadPolicy``: every N entries or T seconds, ``factory ledger heads --watch`` or the
caller's own loop through ``sign_if_due``), on demand (``factory ledger head``) and for every
audit bundle; they are kept in ``ledger_head`` and exported as JSON (``TreeHead.dumps``) to
write-once storage and witnesses. The body is flat ASCII strings and integers, so its RFC 8785
form is also what ``json.dumps(sort_keys=True, separators=(",", ":"))`` gives: the standalone
verifier needs only the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select, text
from sqlmodel import Session

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import now, parse_utc, utc_now
from factory.kernel.errors import InvalidInput
from factory.kernel.key_registry import KeyNotValid, Keyring, ensure_registered
from factory.kernel.ledger.logs import configured_log, lock_log
from factory.kernel.ledger.tree import catch_up, root_at
from factory.kernel.models.ledger_tree import LedgerHead
from imaging import signing
from imaging.offline_verify import TREE_HEAD_FIELDS as _BODY
from imaging.offline_verify import TREE_HEAD_FIELDS_V1 as _BODY_V1
from imaging.offline_verify import TREE_HEAD_FORMAT as HEAD_FORMAT
from imaging.offline_verify import TREE_HEAD_FORMAT_V1 as HEAD_FORMAT_V1


class HeadFormatError(InvalidInput):
    """The file is not a signed tree head this version can read."""


@dataclass(frozen=True)
class TreeHead:
    site: str
    tree_size: int
    root_hash: str  # hex
    signed_at: str
    key_fingerprint: str
    signature: str  # base64 Ed25519 over the canonical JSON of the body
    log: str = ""  # the log the head is of
    format: str = HEAD_FORMAT  # HEAD_FORMAT_V1: signed before per-site logs, its body has no log

    def body(self) -> dict[str, Any]:
        fields = _BODY_V1 if self.format == HEAD_FORMAT_V1 else _BODY
        values = asdict(self)
        return {name: values[name] for name in fields}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def dumps(self) -> bytes:
        return orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    def check_signature(self, keyring: Keyring) -> None:
        """:raises KeyNotValid: not signed by a key in the list that was valid at ``signed_at``."""
        key = keyring.key_for(self.key_fingerprint, self.signed_at)
        try:
            signing.verify(key, canonical_bytes(self.body()), base64.b64decode(self.signature, validate=True))
        except (signing.SigningError, binascii.Error) as exc:
            raise KeyNotValid(f"tree head of size {self.tree_size}: signature does not verify") from exc


def sign_tree_head(
    session: Session, private_key: Ed25519PrivateKey, site: str, kind: str = "on_demand", log: str | None = None
) -> TreeHead:
    """Sign ``log``'s tree (default: this site's log) over every entry now, store the head and
    return it (in the caller's transaction)."""
    log = log or configured_log()
    lock_log(session, log)  # the size and root must be of one moment, between two appends
    ensure_registered(session, site, private_key.public_key())  # so the head verifies after a rotation
    size = log_size(session, log)
    catch_up(session, size, log)
    unsigned = TreeHead(site, size, root_at(session, size, log).hex(), utc_now(),
                        signing.key_fingerprint(private_key.public_key()), "", log)  # fmt: skip
    value = base64.b64encode(signing.sign(private_key, canonical_bytes(unsigned.body()))).decode("ascii")
    head = TreeHead(**{**asdict(unsigned), "signature": value})
    session.add(LedgerHead(**asdict(head), kind=kind))
    session.flush()
    return head


def log_size(conn: Session | Connection, log: str) -> int:
    """How many entries ``log`` holds (its last position)."""
    found = conn.execute(text("SELECT coalesce(max(log_seq), 0) FROM custody_entry WHERE log = :log"), {"log": log})
    return int(found.scalar_one())


def _head(row: Any) -> TreeHead:
    return TreeHead(row.site, int(row.tree_size), row.root_hash, row.signed_at, row.key_fingerprint, row.signature,
                    row.log, row.format)  # fmt: skip


def stored_heads(conn: Session | Connection, log: str | None = None) -> list[TreeHead]:
    """Every stored head of ``log`` (default: of every log), smallest first (a session or a plain,
    e.g. read-only, connection)."""
    cols = select(*LedgerHead.__table__.columns).order_by("log", "tree_size", "id")  # type: ignore[attr-defined]
    if log is not None:
        cols = cols.where(LedgerHead.log == log)  # type: ignore[arg-type]
    return [_head(r) for r in conn.execute(cols).all()]


def latest_head(session: Session | Connection, log: str | None = None) -> TreeHead | None:
    """The largest (then newest) head of ``log`` (default: this site's)."""
    row = session.execute(
        select(*LedgerHead.__table__.columns)  # type: ignore[attr-defined]
        .where(LedgerHead.log == (log or configured_log()))  # type: ignore[arg-type]
        .order_by(LedgerHead.tree_size.desc(), LedgerHead.id.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()
    return _head(row) if row is not None else None


def head_with_size(session: Session, size: int, log: str | None = None) -> TreeHead | None:
    row = session.execute(
        select(*LedgerHead.__table__.columns)  # type: ignore[attr-defined]
        .where(LedgerHead.log == (log or configured_log()), LedgerHead.tree_size == size)  # type: ignore[arg-type]
        .order_by(LedgerHead.id.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()
    return _head(row) if row is not None else None


def parse_head(data: bytes, log: str | None = None) -> TreeHead:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HeadFormatError(f"not JSON: {exc}") from exc
    return head_from_dict(doc, log)


def head_from_dict(doc: object, log: str | None = None) -> TreeHead:
    """A head from its JSON form; a format 1 head (no log in it) is taken as of ``log`` (default: this site's)."""
    if not isinstance(doc, dict) or doc.get("format") not in (HEAD_FORMAT, HEAD_FORMAT_V1):
        raise HeadFormatError(f"not a signed tree head (format must be {HEAD_FORMAT!r})")
    fields = _BODY if doc["format"] == HEAD_FORMAT else _BODY_V1
    if set(doc) != {*fields, "signature"}:
        raise HeadFormatError("signed tree head has unexpected or missing fields")
    head = TreeHead(**{"log": log or configured_log(), **{k: doc[k] for k in (*fields, "signature")}})
    texts = (head.log, head.site, head.root_hash, head.signed_at, head.signature)
    if (
        type(head.tree_size) is not int
        or head.tree_size < 0
        or not all(isinstance(v, str) and v.isascii() for v in texts)
    ):
        raise HeadFormatError("signed tree head has a field of the wrong type")
    return head


@dataclass(frozen=True)
class HeadPolicy:
    """When the line signs a head by itself: once ``every_entries`` are unsigned, or the oldest
    unsigned entry is ``every_seconds`` old (``FACTORY_HEAD_EVERY_ENTRIES``, ``FACTORY_HEAD_EVERY_SECONDS``)."""

    every_entries: int = 1000
    every_seconds: float = 300.0

    @classmethod
    def from_env(cls) -> HeadPolicy:
        entries = os.environ.get("FACTORY_HEAD_EVERY_ENTRIES", "").strip()
        seconds = os.environ.get("FACTORY_HEAD_EVERY_SECONDS", "").strip()
        try:
            policy = cls(int(entries) if entries else cls.every_entries,
                         float(seconds) if seconds else cls.every_seconds)  # fmt: skip
        except ValueError:
            raise ValueError("FACTORY_HEAD_EVERY_ENTRIES and FACTORY_HEAD_EVERY_SECONDS must be numbers") from None
        if policy.every_entries < 1 or policy.every_seconds <= 0:
            raise ValueError("FACTORY_HEAD_EVERY_ENTRIES must be >= 1 and FACTORY_HEAD_EVERY_SECONDS > 0")
        return policy


def head_due(session: Session | Connection, policy: HeadPolicy, log: str | None = None) -> bool:
    """Whether ``log``'s (default: this site's) unsigned tail has reached the policy's count or age."""
    log = log or configured_log()
    signed = session.execute(
        text("SELECT coalesce(max(tree_size), 0) FROM ledger_head WHERE log = :log"), {"log": log}
    ).scalar_one()
    first = session.execute(
        text("SELECT occurred_at FROM custody_entry WHERE log = :log AND log_seq > :s ORDER BY log_seq LIMIT 1"),
        {"log": log, "s": signed},
    ).first()
    if first is None:
        return False
    if log_size(session, log) - int(signed) >= policy.every_entries:
        return True
    return now() - parse_utc(str(first[0])) >= timedelta(seconds=policy.every_seconds)


def sign_if_due(
    session: Session, private_key: Ed25519PrivateKey, site: str, policy: HeadPolicy, log: str | None = None
) -> TreeHead | None:
    """The scheduled head of ``log`` (default: this site's): signed when ``head_due``, else None."""
    if not head_due(session, policy, log):
        return None
    return sign_tree_head(session, private_key, site, kind="scheduled", log=log)
