"""Evidence documents (PDFs, photos, signature images): stored once, referenced by SHA-256.

The bytes live in an append-only table; ledger entries carry the document's id and hash, so a
document swapped in the table afterwards no longer matches the hash the chain committed to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from factory.custody.lookups import get_document
from factory.custody.models import EvidenceDocument
from factory.custody.outcome import stored
from factory.kernel.clock import utc_now
from factory.kernel.errors import InvalidInput, PermissionDenied

MAX_DOCUMENT_BYTES = 20 * 2**20

# Leading bytes of each accepted media type: a mislabelled upload is refused, not stored.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


class DocumentKind(StrEnum):
    SIGNATURE = "signature"
    MANIFEST = "manifest"
    PROOF_OF_DELIVERY = "proof_of_delivery"
    TRANSFER_NOTE = "transfer_note"
    WASTE_TRANSFER_NOTE = "waste_transfer_note"
    RECYCLER_CERTIFICATE = "recycler_certificate"
    DESTRUCTION_EVIDENCE = "destruction_evidence"
    INSTALLATION = "installation"


@dataclass(frozen=True)
class Upload:
    content: bytes
    media_type: str
    filename: str = ""


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def store_document(session: Session, kind: DocumentKind, upload: Upload, *, actor: str) -> EvidenceDocument:
    if upload.media_type not in _MAGIC:
        raise InvalidInput(f"{kind} document type '{upload.media_type}' is not one of: {', '.join(_MAGIC)}")
    if not upload.content:
        raise InvalidInput(f"{kind} document is empty")
    if len(upload.content) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{kind} document is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    if not upload.content.startswith(_MAGIC[upload.media_type]):
        raise InvalidInput(f"{kind} document is not a valid {upload.media_type} file")
    doc = EvidenceDocument(
        kind=str(kind),
        media_type=upload.media_type,
        filename=upload.filename[:200],
        sha256=sha256_hex(upload.content),
        size_bytes=len(upload.content),
        content=upload.content,
        created_by=actor,
        created_at=utc_now(),
    )
    return stored(session, doc)


def store_pdf(session: Session, kind: DocumentKind, content: bytes, filename: str, *, actor: str) -> EvidenceDocument:
    return store_document(session, kind, Upload(content, "application/pdf", filename), actor=actor)


def document_ref(doc: EvidenceDocument) -> dict[str, object]:
    """What a ledger entry records about a document: enough to find it and to check it."""
    return {"document_id": doc.id, "kind": doc.kind, "sha256": doc.sha256}


# Couriers handle consignments: they may read manifests and proofs of delivery, never officers'
# signatures, recyclers' certificates or destruction evidence.
COURIER_READABLE: frozenset[str] = frozenset({DocumentKind.MANIFEST.value, DocumentKind.PROOF_OF_DELIVERY.value})


def read_document(session: Session, document_id: int, role: str) -> EvidenceDocument:
    doc = get_document(session, document_id)
    if role == "courier" and doc.kind not in COURIER_READABLE:
        raise PermissionDenied(f"couriers may not read {doc.kind} documents")
    return doc
