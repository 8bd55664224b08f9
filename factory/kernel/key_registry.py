"""The registry of site signing keys: which key may sign for which site, and when.

Every verification picks its key by the fingerprint the signature names and checks the key was
valid at the moment the document claims (``Keyring.key_for``): on or after ``valid_from``, not
after ``valid_to`` (set when a rotation retires it) and not at or after ``revoked_at``. A
rotation never invalidates what the retired key signed while it was valid. The registry is a
table, shared by every site on one database; what an auditor receives is the signed key list
(``signed_key_list``), in which each key after a rotation carries the endorsement of the key it
replaced, so trust in one published fingerprint extends to its successors.

The key on disk that predates the registry is registered on first use as valid since
``LEGACY_FROM``: it signed everything before the registry existed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.db.engine import read_scope
from factory.kernel.errors import Conflict, NotFound
from factory.kernel.models.ledger_tree import SiteKey
from imaging import signing
from imaging.certificate_errors import KeyMismatchError

LEGACY_FROM = "1970-01-01T00:00:00.000000Z"
KEY_LIST_FORMAT = "device-factory/site-keys/1"


class KeyNotValid(KeyMismatchError):
    """A signature by a key that is unknown, or was not valid at the time the document claims."""


@dataclass(frozen=True)
class KeyRecord:
    site: str
    fingerprint: str
    public_key_pem: str
    valid_from: str
    valid_to: str | None = None
    revoked_at: str | None = None
    revoked_reason: str | None = None
    endorsed_by: str | None = None
    endorsement: str | None = None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "retired" if self.valid_to is not None else "active"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def endorsed_body(self) -> bytes:
        """What the previous key signs when it hands over to this one."""
        return canonical_bytes({"site": self.site, "fingerprint": self.fingerprint, "valid_from": self.valid_from})


def _moment(stamp: str) -> datetime:
    """A stored or certificate timestamp as an aware UTC moment (ISO 8601 with Z or an offset)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Keyring:
    """A snapshot of the registry: the key records and their public keys, by fingerprint."""

    records: dict[str, KeyRecord]

    def key_for(self, fingerprint: object, at: object) -> Ed25519PublicKey:
        """The public key ``fingerprint`` names, if it could sign at ``at``.

        :raises KeyNotValid: unknown key, unreadable time, before it was valid, after it was
            retired, or at or after its revocation (with the reason recorded then).
        """
        key = self.public_key(fingerprint)
        self.check_time(str(fingerprint), at)
        return key

    def public_key(self, fingerprint: object) -> Ed25519PublicKey:
        """:raises KeyNotValid: the list has no key with that fingerprint."""
        record = self.records.get(fingerprint) if isinstance(fingerprint, str) else None
        if record is None:
            raise KeyNotValid(f"signed by key {fingerprint!r}, which is not in the site key list")
        return signing.public_key_from_pem(record.public_key_pem.encode("ascii"))

    def check_time(self, fingerprint: str, at: object) -> None:
        """:raises KeyNotValid: ``fingerprint``'s key could not sign at ``at`` (with the reason)."""
        record = self.records[fingerprint]
        try:
            moment = _moment(at) if isinstance(at, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise KeyNotValid(f"signed by key {fingerprint} at an unreadable time {at!r}")
        if record.revoked_at is not None and moment >= _moment(record.revoked_at):
            raise KeyNotValid(
                f"signed by key {fingerprint} at {at}, after it was revoked at {record.revoked_at}"
                f" ({record.revoked_reason or 'no reason recorded'})"
            )
        if moment < _moment(record.valid_from):
            raise KeyNotValid(f"signed by key {fingerprint} at {at}, before it was valid ({record.valid_from})")
        if record.valid_to is not None and moment > _moment(record.valid_to):
            raise KeyNotValid(f"signed by key {fingerprint} at {at}, after it was retired ({record.valid_to})")

    @classmethod
    def of(cls, records: Iterable[KeyRecord], legacy: Ed25519PublicKey | None = None, site: str = "") -> Keyring:
        """The records, plus ``legacy`` (the key on disk) as valid since ever if it is not registered."""
        found = {r.fingerprint: r for r in records}
        if legacy is not None:
            fp = signing.key_fingerprint(legacy)
            if fp not in found:
                pem = signing.public_key_to_pem(legacy).decode("ascii")
                found[fp] = KeyRecord(site, fp, pem, LEGACY_FROM)
        return cls(found)


_FIELDS = tuple(KeyRecord.__dataclass_fields__)


def _record(row: SiteKey) -> KeyRecord:
    return KeyRecord(
        row.site, row.fingerprint, row.public_key_pem, row.valid_from, row.valid_to,
        row.revoked_at, row.revoked_reason, row.endorsed_by, row.endorsement,
    )  # fmt: skip


def list_keys(session: Session) -> list[KeyRecord]:
    rows = session.execute(select(SiteKey).order_by(SiteKey.site, SiteKey.valid_from)).scalars()  # type: ignore[arg-type]
    return [_record(r) for r in rows]


def read_registry(engine: Engine) -> list[KeyRecord]:
    """Every registered key; none when the database has no registry yet (not migrated)."""
    # A read-only connection: verifiers are made inside callers' write transactions, and on
    # SQLite a second writer in the same process would wait for them.
    try:
        with read_scope(engine) as conn:
            rows = conn.execute(select(*SiteKey.__table__.columns).order_by("site", "valid_from")).all()
    except (OperationalError, ProgrammingError):
        return []
    return [KeyRecord(**{name: row._mapping[name] for name in _FIELDS}) for row in rows]


def register(
    session: Session, site: str, key: Ed25519PublicKey, valid_from: str, endorsed_by: Ed25519PrivateKey | None = None
) -> KeyRecord:
    """Add ``key`` to the registry (endorsed by the key it replaces, when given)."""
    fp = signing.key_fingerprint(key)
    record = KeyRecord(site, fp, signing.public_key_to_pem(key).decode("ascii"), valid_from)
    if endorsed_by is not None:
        value = base64.b64encode(signing.sign(endorsed_by, record.endorsed_body())).decode("ascii")
        record = KeyRecord(**{**asdict(record), "endorsed_by": signing.key_fingerprint(endorsed_by.public_key()),
                              "endorsement": value})  # fmt: skip
    session.add(SiteKey(**record.as_dict()))
    session.flush()
    return record


def ensure_registered(session: Session, site: str, key: Ed25519PublicKey) -> KeyRecord:
    """The registry record of ``key``; a key that predates the registry is added as valid since ever."""
    row = session.get(SiteKey, signing.key_fingerprint(key))
    if row is not None:
        return _record(row)
    return register(session, site, key, LEGACY_FROM)


def retire(session: Session, fingerprint: str, at: str) -> None:
    row = session.get(SiteKey, fingerprint)
    if row is None:
        raise NotFound(f"no site key with fingerprint {fingerprint}")
    if row.valid_to is None:
        row.valid_to = at
        session.add(row)


def revoke(session: Session, fingerprint: str, reason: str, at: str | None = None) -> KeyRecord:
    """Record that ``fingerprint`` must not be trusted for anything signed at or after ``at`` (default now).

    :raises NotFound: no such key. :raises Conflict: already revoked.
    """
    row = session.get(SiteKey, fingerprint)
    if row is None:
        raise NotFound(f"no site key with fingerprint {fingerprint}")
    if row.revoked_at is not None:
        raise Conflict(f"key {fingerprint} was already revoked at {row.revoked_at}")
    row.revoked_at = at or utc_now()
    row.revoked_reason = reason
    session.add(row)
    session.flush()
    return _record(row)


def signed_key_list(records: Iterable[KeyRecord], private_key: Ed25519PrivateKey, site: str) -> dict[str, Any]:
    """The published key list: every registered key, signed by ``private_key`` (the site's current key)."""
    body = {
        "format": KEY_LIST_FORMAT,
        "site": site,
        "issued_at": utc_now(),
        "signed_by": signing.key_fingerprint(private_key.public_key()),
        "keys": [r.as_dict() for r in sorted(records, key=lambda r: (r.site, r.valid_from, r.fingerprint))],
    }
    signature = signing.sign(private_key, canonical_bytes(body))
    return {**body, "signature": base64.b64encode(signature).decode("ascii")}


def keyring_from_list(doc: dict[str, Any], trusted: str) -> Keyring:
    """The keys of a signed key list, checked against a fingerprint trusted beforehand.

    :raises KeyNotValid: bad signature, or ``trusted`` does not sign it nor lead to its signer
        through the endorsements the list carries.
    """
    body = {k: v for k, v in doc.items() if k != "signature"}
    records = {r["fingerprint"]: KeyRecord(**r) for r in doc.get("keys", [])}
    signer = records.get(doc.get("signed_by", ""))
    if signer is None:
        raise KeyNotValid("the key list is signed by a key it does not list")
    key = signing.public_key_from_pem(signer.public_key_pem.encode("ascii"))
    try:
        signing.verify(key, canonical_bytes(body), base64.b64decode(doc["signature"], validate=True))
    except (signing.SigningError, ValueError) as exc:
        raise KeyNotValid(f"the key list's signature does not verify ({exc})") from exc
    _check_endorsements(records, signer, trusted)
    return Keyring(records)


def _check_endorsements(records: dict[str, KeyRecord], signer: KeyRecord, trusted: str) -> None:
    """Walk back from the signer through endorsements to ``trusted``, checking each one."""
    current, seen = signer, set()
    while current.fingerprint != trusted:
        if current.fingerprint in seen or current.endorsed_by is None or current.endorsement is None:
            raise KeyNotValid(f"the key list's signer {signer.fingerprint} is not endorsed by {trusted}")
        seen.add(current.fingerprint)
        previous = records.get(current.endorsed_by)
        if previous is None:
            raise KeyNotValid(f"key {current.fingerprint} is endorsed by a key the list does not hold")
        key = signing.public_key_from_pem(previous.public_key_pem.encode("ascii"))
        try:
            signing.verify(key, current.endorsed_body(), base64.b64decode(current.endorsement, validate=True))
        except (signing.SigningError, ValueError) as exc:
            raise KeyNotValid(f"the endorsement of key {current.fingerprint} does not verify") from exc
        current = previous
