"""A device's full history with a chain proof for every entry.

For each of the device's custody entries the proof gives what an auditor needs to re-link it to
the one site-wide chain without trusting the server: the entry's fields, its recomputed hash, the
hash of the entry it extends (the one just before it in the chain, usually another device's) and
the ``prev_hash`` of the entry that extends it. With the ledger head and, on request, a full
verification of the chain, that places the device's entries in an intact ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlmodel import Session

from factory.audit.certificate_check import SiteKeyList, check_certificate, verify_stored
from factory.intake.views import get_device
from factory.kernel.ledger.hashing import entry_hash, hashed_row
from factory.kernel.ledger.links import chain_links
from factory.kernel.ledger.verify import LedgerReport
from factory.kernel.lifecycle.states import State
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device, StorageMedium
from factory.sanitisation.service import destruction_certificates_of
from imaging.certificate import CertificateError, document_field

# What a device's history lists of the device and of each of its certificates, in this order.
DEVICE_SUMMARY_COLUMNS = ("serial", "asset_tag", "make", "model", "kind", "state", "custodian", "location")
HISTORY_CERTIFICATE_COLUMNS = (
    "id",
    "medium_serial",
    "issued_at",
    "level",
    "method",
    "destination",
    "erase_round_seq",
    "digest_sha256",
)


@dataclass(frozen=True)
class EntryProof:
    entry: dict[str, Any]  # every hashed field (evidence as an object) plus entry_hash
    recomputed_hash: str
    previous_seq: int | None  # None: this is the first entry of the ledger
    previous_entry_hash: str | None  # entry_hash of the entry this one extends (genesis for seq 1)
    next_seq: int | None  # None: this entry is the ledger head
    next_prev_hash: str | None  # prev_hash of the entry that extends this one

    @property
    def hash_ok(self) -> bool:
        return self.recomputed_hash == self.entry["entry_hash"]

    @property
    def links_to_previous(self) -> bool:
        return self.previous_entry_hash == self.entry["prev_hash"]

    @property
    def linked_by_next(self) -> bool | None:
        return None if self.next_seq is None else self.next_prev_hash == self.entry["entry_hash"]

    @property
    def ok(self) -> bool:
        return self.hash_ok and self.links_to_previous and self.linked_by_next is not False

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.entry,
            "proof": {
                "recomputed_hash": self.recomputed_hash,
                "hash_ok": self.hash_ok,
                "previous_seq": self.previous_seq,
                "previous_entry_hash": self.previous_entry_hash,
                "links_to_previous": self.links_to_previous,
                "next_seq": self.next_seq,
                "next_prev_hash": self.next_prev_hash,
                "linked_by_next": self.linked_by_next,
            },
        }


@dataclass(frozen=True)
class DeviceHistory:
    device: dict[str, Any]
    media: list[dict[str, Any]]
    certificates: list[dict[str, Any]]
    entries: list[EntryProof]
    head_seq: int | None
    head_hash: str | None
    ledger: LedgerReport | None  # None unless a full verification was asked for
    destruction_certificates: list[dict[str, Any]] = field(default_factory=list)  # a destroyed device's

    @property
    def ok(self) -> bool:
        return (
            all(e.ok for e in self.entries)
            and all(c["check"]["ok"] for c in self.certificates)
            and all(d["verified"] for d in self.destruction_certificates)
            and (self.ledger is None or self.ledger.ok)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "device": self.device,
            "media": self.media,
            "certificates": self.certificates,
            "destruction_certificates": self.destruction_certificates,
            "destruction_certificate_missing": self.device.get("state") == State.DESTROYED.value
            and not self.destruction_certificates,
            "entries": [e.as_dict() for e in self.entries],
            "ledger": {
                "head_seq": self.head_seq,
                "head_hash": self.head_hash,
                "verified": self.ledger.as_dict() if self.ledger is not None else None,
            },
        }


def entry_record(e: CustodyEntry) -> dict[str, Any]:
    """The entry as it is hashed (``evidence`` as an object), plus its stored hash."""
    record: dict[str, Any] = hashed_row(e)
    record["evidence"] = orjson.loads(e.evidence)
    record["entry_hash"] = e.entry_hash
    return record


def device_entries(session: Session, device_id: int) -> list[CustodyEntry]:
    stmt = select(CustodyEntry).where(CustodyEntry.device_id == device_id).order_by(CustodyEntry.seq)  # type: ignore[arg-type]
    return list(session.execute(stmt).scalars())


def device_history(
    session: Session, serial: str, keys: SiteKeyList, *, ledger: LedgerReport | None = None
) -> DeviceHistory:
    """``ledger``: a full ``verify_ledger`` report to attach, run by the caller before this session
    starts (on SQLite a session holds the write lock, which the verifier's connection would wait on)."""
    device = get_device(session, serial)
    entries = device_entries(session, device.id or 0)
    links = chain_links(session, entries)  # neighbours in each entry's own site's log
    proofs = []
    for e in entries:
        link = links[e.seq]
        proofs.append(
            EntryProof(
                entry=entry_record(e),
                recomputed_hash=entry_hash(hashed_row(e)),
                previous_seq=link.previous_seq,
                previous_entry_hash=link.previous_entry_hash,
                next_seq=link.next_seq,
                next_prev_hash=link.next_prev_hash,
            )
        )
    head = session.execute(
        select(CustodyEntry.seq, CustodyEntry.entry_hash).order_by(CustodyEntry.seq.desc()).limit(1)  # type: ignore[attr-defined]
    ).first()
    certs = session.execute(
        select(Certificate).where(Certificate.device_id == device.id).order_by(Certificate.issued_at)  # type: ignore[arg-type]
    ).scalars()
    return DeviceHistory(
        destruction_certificates=_destructions(session, device.id or 0, keys),
        device=_device_summary(device),
        media=_media(session, device.id or 0),
        certificates=[
            {**columns_of(c, HISTORY_CERTIFICATE_COLUMNS), "check": check_certificate(session, c, keys).as_dict()}
            for c in certs
        ],
        entries=proofs,
        head_seq=head[0] if head else None,
        head_hash=head[1] if head else None,
        ledger=ledger,
    )


def columns_of(row: Any, names: Sequence[str]) -> dict[str, Any]:
    """The named columns of a row, by name, in that order: what a history or a manifest lists of it."""
    return {name: getattr(row, name) for name in names}


def _device_summary(device: Device) -> dict[str, Any]:
    return {
        **columns_of(device, DEVICE_SUMMARY_COLUMNS),
        "held_user_data": device.user_data_since_seq is not None,
        "erase_round_seq": device.erase_round_seq,
    }


def _media(session: Session, device_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(StorageMedium).where(StorageMedium.device_id == device_id)).scalars()
    return [
        {"serial": m.serial, "model": m.model, "media_type": m.media_type, "capacity_bytes": m.capacity_bytes}
        for m in rows
    ]


def _destructions(session: Session, device_id: int, keys: SiteKeyList) -> list[dict[str, Any]]:
    """The device's destruction certificates, each verified against the site key list."""
    out = []
    for row in destruction_certificates_of(session, device_id):
        try:
            doc = verify_stored(json.loads(row.envelope), keys).certificate
            verified, problem = True, None
        except (CertificateError, ValueError) as exc:
            doc, verified, problem = {}, False, str(exc)
        out.append(
            {
                "id": row.id,
                "medium_serial": row.medium_serial,
                "issued_at": row.issued_at,
                "technique": row.technique,
                "particle_size_mm": document_field(doc, "destruction", "particle_size_mm"),
                "machine": document_field(doc, "destruction", "machine"),
                "witness": document_field(doc, "personnel", "witnessed_by", "name"),
                "digest_sha256": row.digest_sha256,
                "verified": verified,
                "problem": problem,
            }
        )
    return out
