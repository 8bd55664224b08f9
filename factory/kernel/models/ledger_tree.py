"""The custody logs' Merkle trees, signed tree heads, witness cosignatures, and the site key registry.

``ledger_node`` keeps every *perfect* subtree hash of the RFC 9162 tree over each site's log
(level 0 are the leaves), written once when the entry that completes it is appended, so proofs
and roots cost O(log n) reads. ``ledger_head`` keeps signed tree heads, ``ledger_cosignature``
other sites' cosignatures of them; all three are append-only (triggers), and heads and
cosignatures are re-derived from the entries by ``ledger verify``. ``site_key`` is the key
registry: revocation and retirement update a row, which is why every published key list is
signed (``factory keys list --signed``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel


class LedgerNode(SQLModel, table=True):
    __tablename__ = "ledger_node"

    log: str = Field(primary_key=True, max_length=128)  # each site's log has its own tree
    level: int = Field(primary_key=True)  # the subtree holds 2**level leaves
    idx: int = Field(primary_key=True)  # starting at leaf idx * 2**level
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LedgerHead(SQLModel, table=True):
    """A signed tree head: the tree's size and root at a moment, signed with a site key."""

    __tablename__ = "ledger_head"
    __table_args__ = (Index("ix_ledger_head_log_size", "log", "tree_size"),)

    id: int | None = Field(default=None, primary_key=True)
    log: str = Field(max_length=128)  # the log the head is of
    site: str = Field(max_length=128)  # the site whose key signed it (the log's own site)
    tree_size: int = Field(index=True)
    root_hash: str = Field(max_length=64)  # hex
    signed_at: str = Field(max_length=32)
    key_fingerprint: str = Field(max_length=128)
    signature: str = Field(max_length=128)  # base64 Ed25519 over the canonical JSON of the head's body
    kind: str = Field(default="on_demand", max_length=16)  # scheduled | on_demand | bundle | witness
    # device-factory/tree-head/2 names its log in the signed body; /1 heads were signed before per-site logs.
    format: str = Field(default="device-factory/tree-head/2", max_length=40)


class LedgerCosignature(SQLModel, table=True):
    """A witness cosignature: another site's signature over one log's (size, root), append-only.

    A site cosigns the latest head of every other log it sees (``ledger.cosign``); a log rewritten
    later then contradicts a signature its own site's key did not make.
    """

    __tablename__ = "ledger_cosignature"
    __table_args__ = (Index("ix_ledger_cosignature_log_size", "log", "tree_size"),)

    id: int | None = Field(default=None, primary_key=True)
    log: str = Field(max_length=128)  # the log cosigned
    tree_size: int
    root_hash: str = Field(max_length=64)  # hex
    witness: str = Field(max_length=128)  # the cosigning site
    signed_at: str = Field(max_length=32)
    key_fingerprint: str = Field(max_length=128)
    signature: str = Field(max_length=128)  # base64 Ed25519 over the canonical JSON of the body


class SiteKey(SQLModel, table=True):
    """One signing key of one site: when it may sign, and whether it was retired or revoked."""

    __tablename__ = "site_key"

    fingerprint: str = Field(primary_key=True, max_length=128)
    site: str = Field(index=True, max_length=128)
    public_key_pem: str
    valid_from: str = Field(max_length=32)
    valid_to: str | None = Field(default=None, max_length=32)  # set when a rotation retires it
    revoked_at: str | None = Field(default=None, max_length=32)
    revoked_reason: str | None = Field(default=None, max_length=500)
    # base64 signature by the key it replaced over this key's fingerprint and valid_from: the
    # chain an auditor follows from a fingerprint they trust to the keys that came after it.
    endorsed_by: str | None = Field(default=None, max_length=128)
    endorsement: str | None = Field(default=None, max_length=128)
