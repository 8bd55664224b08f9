"""Witness cosignatures: each site signs the latest head of every other site's log it can see.

A site's own signed heads prove its log only to someone who trusts that site's key. When sites
share a database, each one also witnesses the others: it checks another log's latest head (signed
by a key of that log's site in the site key list, valid when it signed; the stored tree gives the
signed root; the log is a consistent extension of what this witness cosigned before) and signs
that log's (size, root) with its own key, into ``ledger_cosignature`` (append-only). Rewriting a
log afterwards then contradicts a signature its own site's key did not make; ``ledger verify``
recomputes every cosigned root from the entries and checks each cosignature against the site key
list, where the key must belong to the witness site that the cosignature names.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select, text
from sqlmodel import Session

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import utc_now
from factory.kernel.db.shared_statements import warmed
from factory.kernel.key_registry import KeyNotValid, Keyring, ensure_registered
from factory.kernel.ledger import merkle
from factory.kernel.ledger.heads import TreeHead, latest_head
from factory.kernel.ledger.logs import configured_log
from factory.kernel.ledger.tree import TreeMissing, node_source, root_at
from factory.kernel.models.ledger_tree import LedgerCosignature
from imaging import signing
from imaging.offline_verify import COSIGNATURE_FIELDS, COSIGNATURE_FORMAT


class WitnessRefused(ValueError):
    """A head this site will not cosign: its signature, its root or its history does not check."""


@dataclass(frozen=True)
class Cosignature:
    log: str
    tree_size: int
    root_hash: str  # hex
    witness: str  # the cosigning site
    signed_at: str
    key_fingerprint: str
    signature: str  # base64 Ed25519 over the canonical JSON of the body

    def body(self) -> dict[str, Any]:
        values = {"format": COSIGNATURE_FORMAT, **asdict(self)}
        return {name: values[name] for name in COSIGNATURE_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def check_signature(self, keyring: Keyring) -> None:
        """:raises KeyNotValid: not signed by a key of the witness site, valid at ``signed_at``, in the list."""
        key = keyring.key_for(self.key_fingerprint, self.signed_at)
        owner = keyring.records[self.key_fingerprint].site
        if owner != self.witness:
            raise KeyNotValid(f"cosigned with a key of site {owner!r}, not of the witness {self.witness!r}")
        try:
            signing.verify(key, canonical_bytes(self.body()), base64.b64decode(self.signature, validate=True))
        except (signing.SigningError, binascii.Error) as exc:
            raise KeyNotValid(f"cosignature by {self.witness} of size {self.tree_size}: does not verify") from exc


def stored_cosignatures(conn: Session | Connection, log: str | None = None) -> list[Cosignature]:
    """Every stored cosignature (of ``log``, if given), by log and size."""
    query = select(*LedgerCosignature.__table__.columns).order_by("log", "tree_size", "id")  # type: ignore[attr-defined]
    if log is not None:
        query = query.where(LedgerCosignature.log == log)  # type: ignore[arg-type]
    return [
        Cosignature(r.log, int(r.tree_size), r.root_hash, r.witness, r.signed_at, r.key_fingerprint, r.signature)
        for r in conn.execute(query).all()
    ]


def cosign_due(conn: Session | Connection, site: str, own_log: str | None = None) -> bool:
    """Whether another log has a head larger than any ``site`` has cosigned (a cheap read, run first)."""
    found = conn.execute(_FIRST_UNCOSIGNED, {"w": site, "own": own_log or configured_log()}).first()
    return found is not None


_UNCOSIGNED = warmed(
    select(text("h.log"))
    .select_from(text("ledger_head h"))
    .where(
        text(
            "h.log <> :own AND NOT EXISTS (SELECT 1 FROM ledger_cosignature c"
            " WHERE c.log = h.log AND c.witness = :w AND c.tree_size >= h.tree_size)"
        )
    )
    .distinct()
)
_FIRST_UNCOSIGNED = warmed(_UNCOSIGNED.limit(1))


def cosign_logs(
    session: Session, private_key: Ed25519PrivateKey, site: str, keyring: Keyring, own_log: str | None = None
) -> tuple[list[Cosignature], list[str]]:
    """Cosign, as ``site``, the latest head of every log but its own (``own_log``, default this
    site's) that it has not cosigned at that size yet.

    Returns the cosignatures made and, for each head that does not check (not cosigned), why.
    """
    # The witness is the site the key list names for this key (its first registration), so the
    # cosignature verifies against the list even where the configured name differs.
    site = ensure_registered(session, site, private_key.public_key()).site
    own = own_log or configured_log()
    logs = [str(r[0]) for r in session.execute(_UNCOSIGNED, {"w": site, "own": own})]
    made, refused = [], []
    for log in sorted(logs):
        head = latest_head(session, log)
        if head is None or _already(session, log, head.tree_size, site):
            continue
        try:
            _check_head(session, head, site, keyring)
        except (WitnessRefused, KeyNotValid) as exc:
            refused.append(f"log {log!r}, head of size {head.tree_size}: {exc}")
            continue
        made.append(_sign(session, private_key, site, head))
    return made, refused


def _already(session: Session, log: str, size: int, witness: str) -> bool:
    found = session.execute(
        text("SELECT 1 FROM ledger_cosignature WHERE log = :log AND tree_size >= :n AND witness = :w LIMIT 1"),
        {"log": log, "n": size, "w": witness},
    ).first()
    return found is not None


def _check_head(session: Session, head: TreeHead, witness: str, keyring: Keyring) -> None:
    """What a witness checks before it signs: the head's signature, its root, and its history."""
    head.check_signature(keyring)
    if keyring.records[head.key_fingerprint].site != head.site:
        raise WitnessRefused(f"signed with a key that is not of site {head.site!r}")
    try:
        if root_at(session, head.tree_size, head.log).hex() != head.root_hash:
            raise WitnessRefused("the log's stored tree does not give the signed root")
        previous = _last_cosigned(session, head.log, witness)
        if previous is not None and previous.tree_size <= head.tree_size:
            path = merkle.consistency_proof(previous.tree_size, head.tree_size, node_source(session, head.log))
            merkle.verify_consistency(previous.tree_size, head.tree_size, bytes.fromhex(previous.root_hash),
                                      bytes.fromhex(head.root_hash), path)  # fmt: skip
    except TreeMissing as exc:
        raise WitnessRefused(f"the log's stored tree is incomplete ({exc})") from exc
    except merkle.ProofError as exc:
        raise WitnessRefused(f"not an extension of the head this site cosigned before ({exc})") from exc


def _last_cosigned(session: Session, log: str, witness: str) -> Cosignature | None:
    mine = [c for c in stored_cosignatures(session, log) if c.witness == witness]
    return max(mine, key=lambda c: c.tree_size) if mine else None


def _sign(session: Session, private_key: Ed25519PrivateKey, site: str, head: TreeHead) -> Cosignature:
    fingerprint = signing.key_fingerprint(private_key.public_key())
    unsigned = Cosignature(head.log, head.tree_size, head.root_hash, site, utc_now(), fingerprint, "")
    value = base64.b64encode(signing.sign(private_key, canonical_bytes(unsigned.body()))).decode("ascii")
    cosig = Cosignature(**{**asdict(unsigned), "signature": value})
    session.add(LedgerCosignature(**asdict(cosig)))
    session.flush()
    return cosig


def cosignature_problem(
    cosigs: list[Cosignature], roots: dict[int, bytes], entries: int, keyring: Keyring | None
) -> str | None:
    """Why the cosignatures of one log do not verify, or None: each one's root must be the entries'
    root at its size (``roots``, from the log's ``entries``), and (given a ``keyring``) its signature
    by a key of the witness site in the site key list, valid when it cosigned."""
    for cosig in cosigs:
        where = f"cosignature by {cosig.witness} of size {cosig.tree_size} ({cosig.signed_at})"
        if cosig.tree_size > entries:
            return f"ledger truncated: {where}, but the log holds {entries} entries"
        expected = roots.get(cosig.tree_size, merkle.EMPTY_ROOT).hex()
        if cosig.root_hash != expected:
            return f"ledger rewritten: {where} has root {cosig.root_hash}, the entries give {expected}"
        if keyring is not None:
            try:
                cosig.check_signature(keyring)
            except KeyNotValid as exc:
                return f"{where}: {exc}"
    return None
