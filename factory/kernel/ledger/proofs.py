"""Inclusion and consistency proofs as documents an auditor verifies offline.

An inclusion proof carries, per entry, its canonical bytes (the Merkle leaf, whose SHA-256 is
also its ``entry_hash``) and its audit path, with the signed tree head it leads to. A
consistency proof carries two signed heads and the RFC 9162 path that shows the older tree is a
prefix of the newer. Every proof is checked here before it is handed out, so a damaged stored
tree yields an error, never a proof that fails later. ``docs/verify_ledger_proof.py`` verifies
both with the standard library and ``cryptography`` only. Each proof is within one site's log
(the head's ``log``; a leaf's index is its entry's ``log_seq - 1``); entries of a device that moved
between sites are proved per log, one inclusion document per log in a set (``INCLUSION_SET_FORMAT``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from factory.kernel.errors import InvalidInput, NotFound
from factory.kernel.ledger import merkle
from factory.kernel.ledger.hashing import ROW_COLUMNS
from factory.kernel.ledger.heads import TreeHead
from factory.kernel.ledger.tree import TreeMissing, canonical_of, node_source, root_at

INCLUSION_FORMAT = "device-factory/ledger-inclusion/1"
INCLUSION_SET_FORMAT = "device-factory/ledger-inclusion-set/1"
CONSISTENCY_FORMAT = "device-factory/ledger-consistency/1"


class ProofUnavailable(InvalidInput):
    """No proof can be made: the entry is after the head, or the stored tree does not give the head's root."""


def _check_root(session: Session, head: TreeHead) -> None:
    try:
        root = root_at(session, head.tree_size, head.log).hex()
    except TreeMissing as exc:
        raise ProofUnavailable(f"the stored Merkle tree cannot reach the signed head: {exc}") from exc
    if root != head.root_hash:
        raise ProofUnavailable(
            f"the stored Merkle tree does not give the root signed at size {head.tree_size}:"
            " run 'factory ledger verify'"
        )


def entry_seqs(session: Session, ref: str) -> list[int]:
    """The entries a reference names: a sequence number, or every entry of a device serial.

    :raises NotFound: no such entry or device.
    """
    if ref.isdigit():
        found = session.execute(text("SELECT seq FROM custody_entry WHERE seq = :s"), {"s": int(ref)}).scalar()
        if found is None:
            raise NotFound(f"no custody entry {ref}")
        return [int(found)]
    rows = session.execute(
        text("SELECT seq FROM custody_entry WHERE device_serial = :s ORDER BY seq"), {"s": ref}
    ).scalars()
    seqs = [int(s) for s in rows]
    if not seqs:
        raise NotFound(f"no custody entries for a device with serial {ref}")
    return seqs


def logs_of(session: Session, seqs: list[int]) -> dict[str, list[int]]:
    """The entries ``seqs`` grouped by the log each is in."""
    found: dict[str, list[int]] = {}
    for seq in seqs:
        log = session.execute(text("SELECT log FROM custody_entry WHERE seq = :s"), {"s": seq}).scalar_one()
        found.setdefault(str(log), []).append(seq)
    return found


def inclusion_set(session: Session, by_log: dict[str, tuple[list[int], TreeHead]]) -> dict[str, Any]:
    """One inclusion document per log (``seqs`` of that log and that log's head); a single log's document alone."""
    docs = [inclusion_document(session, seqs, head) for _, (seqs, head) in sorted(by_log.items())]
    return docs[0] if len(docs) == 1 else {"format": INCLUSION_SET_FORMAT, "proofs": docs}


def inclusion_document(session: Session, seqs: list[int], head: TreeHead) -> dict[str, Any]:
    """Proofs that each entry in ``seqs`` (all of ``head``'s log) is in the tree ``head`` signed.

    :raises ProofUnavailable: an entry of another log or after the head, or a stored tree that does not match it.
    """
    _check_root(session, head)
    nodes = node_source(session, head.log)
    root = bytes.fromhex(head.root_hash)
    cols = ", ".join(ROW_COLUMNS)
    entries = []
    for seq in seqs:
        values = session.execute(text(f"SELECT {cols} FROM custody_entry WHERE seq = :s"), {"s": seq}).one()
        index = _leaf_index(values, head)
        canonical = canonical_of(values)
        path = merkle.inclusion_proof(index, head.tree_size, nodes)
        merkle.verify_inclusion(index, head.tree_size, merkle.leaf_hash(canonical), path, root)
        entries.append({
            "seq": seq,
            "leaf_index": index,
            "entry": canonical.decode("utf-8"),
            "entry_hash": values[14],
            "audit_path": [p.hex() for p in path],
        })  # fmt: skip
    return {"format": INCLUSION_FORMAT, "head": head.as_dict(), "entries": entries}


def _leaf_index(values: Any, head: TreeHead) -> int:
    """The entry's leaf index in its log's tree (``log_seq - 1``), if ``head`` covers it."""
    log, position = values[-2], int(values[-1])  # ROW_COLUMNS ends with log, log_seq
    if log != head.log:
        raise ProofUnavailable(f"custody entry {values[0]} is in log {log!r}, not in {head.log!r}")
    if position > head.tree_size:
        raise ProofUnavailable(
            f"custody entry {values[0]} is after the latest signed head (size {head.tree_size}) of log {log!r}:"
            " sign a new head first"
        )
    return position - 1


def consistency_document(session: Session, old: TreeHead, new: TreeHead) -> dict[str, Any]:
    """Proof that the tree ``old`` signed is a prefix of the tree ``new`` signed.

    :raises ProofUnavailable: ``old`` is larger than ``new``, or a stored tree that does not match them.
    """
    if old.tree_size > new.tree_size:
        raise ProofUnavailable(f"the old head (size {old.tree_size}) is larger than the new one ({new.tree_size})")
    _check_root(session, new)
    if old.log != new.log:
        raise ProofUnavailable(f"the heads are of two logs ({old.log!r} and {new.log!r})")
    path = merkle.consistency_proof(old.tree_size, new.tree_size, node_source(session, new.log))
    try:
        merkle.verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), path
        )
    except merkle.ProofError as exc:
        raise ProofUnavailable(f"the old head is not a prefix of the new one: {exc}") from exc
    return {"format": CONSISTENCY_FORMAT, "old": old.as_dict(), "new": new.as_dict(), "proof": [p.hex() for p in path]}
