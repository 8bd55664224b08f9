"""The custody log over HTTP: verification, signed tree heads and proofs (auditors; admins sign heads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AdminUser, AuditorUser, ContextDep, SessionDep, UnitOfWorkRoute
from api.params import Reference
from api.schemas.common import LedgerReportPublic
from factory.kernel.errors import NotFound
from factory.kernel.ledger.heads import TreeHead, head_with_size, latest_head, sign_tree_head, stored_heads
from factory.kernel.ledger.proofs import consistency_document, entry_seqs, inclusion_document
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key

router = APIRouter(prefix="/api/ledger", tags=["ledger"], route_class=UnitOfWorkRoute)
TreeSize = Annotated[int | None, Query(ge=0, le=2**53 - 1)]


@router.get("/verify", response_model=LedgerReportPublic)
def verify(ctx: ContextDep, _user: AuditorUser) -> dict[str, object]:
    """The chain, the Merkle tree and every signed tree head recomputed; the unsigned tail counted."""
    return verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring()).as_dict()


@router.get("/heads")
def heads(session: SessionDep, _user: AuditorUser) -> list[dict[str, Any]]:
    """Every signed tree head, oldest first (each verifies with the site key list)."""
    return [h.as_dict() for h in stored_heads(session)]


@router.post("/heads", status_code=201)
def sign_head(session: SessionDep, ctx: ContextDep, _user: AdminUser) -> dict[str, Any]:
    """Sign a tree head over every entry now."""
    return sign_tree_head(session, load_private_key(ctx.settings), ctx.settings.site_name).as_dict()


def _head(session: SessionDep, size: int | None) -> TreeHead:
    head = latest_head(session) if size is None else head_with_size(session, size)
    if head is None:
        raise NotFound("no signed tree head" + ("" if size is None else f" of size {size}"))
    return head


@router.get("/proofs/{ref}")
def inclusion(ref: Reference, session: SessionDep, _user: AuditorUser, size: TreeSize = None) -> dict[str, Any]:
    """Inclusion proofs of a device's entries (by serial) or one entry (by sequence number)."""
    return inclusion_document(session, entry_seqs(session, ref), _head(session, size))


@router.get("/consistency")
def consistency(
    session: SessionDep, _user: AuditorUser, old: Annotated[int, Query(ge=0, le=2**53 - 1)], new: TreeSize = None
) -> dict[str, Any]:
    """Proof that the signed log of ``old`` entries is a prefix of the ``new`` one (default: the latest)."""
    return consistency_document(session, _head(session, old), _head(session, new))
