"""The custody log over HTTP: verification, signed tree heads and proofs (auditors; admins sign heads)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AdminUser, AuditorUser, ContextDep, SessionDep, UnitOfWorkRoute
from api.params import Reference
from api.schemas.common import LedgerReportPublic
from factory.kernel.errors import NotFound
from factory.kernel.ledger.heads import TreeHead, head_with_size, latest_head, sign_tree_head, stored_heads
from factory.kernel.ledger.logs import configured_log as own_log
from factory.kernel.ledger.proofs import consistency_document, entry_seqs, inclusion_set, logs_of
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key

router = APIRouter(prefix="/api/ledger", tags=["ledger"], route_class=UnitOfWorkRoute)
TreeSize = Annotated[int | None, Query(ge=0, le=2**53 - 1)]
# A site's log when several sites share the database; omitted: this site's (or, for the list of heads, every log).
LogName = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]


@router.get("/verify", response_model=LedgerReportPublic)
def verify(ctx: ContextDep, _user: AuditorUser) -> dict[str, object]:
    """The chain, the Merkle tree and every signed tree head recomputed; the unsigned tail counted."""
    return verify_ledger(ctx.engine, keyring=ctx.site_keys.keyring()).as_dict()


@router.get("/heads")
def heads(session: SessionDep, _user: AuditorUser, log: LogName = None) -> list[dict[str, Any]]:
    """Every signed tree head of ``log`` (default: of every log), smallest first per log (each
    verifies with the site key list)."""
    return [h.as_dict() for h in stored_heads(session, log)]


@router.post("/heads", status_code=201)
def sign_head(session: SessionDep, ctx: ContextDep, _user: AdminUser) -> dict[str, Any]:
    """Sign a tree head over every entry now."""
    return sign_tree_head(session, load_private_key(ctx.settings), ctx.settings.site_name).as_dict()


def _head(session: SessionDep, size: int | None, log: str | None = None) -> TreeHead:
    head = latest_head(session, log) if size is None else head_with_size(session, size, log)
    if head is None:
        of_log = f" of log {log!r}" if log else ""
        raise NotFound("no signed tree head" + ("" if size is None else f" of size {size}") + of_log)
    return head


@router.get("/proofs/{ref}")
def inclusion(ref: Reference, session: SessionDep, _user: AuditorUser, size: TreeSize = None) -> dict[str, Any]:
    """Inclusion proofs of a device's entries (by serial) or one entry (by sequence number), against
    the latest signed head of each site's log they are in (a device that moved between sites has
    entries in several logs: one proof document per log). ``size`` names an older head of this
    site's log, for entries all in it."""
    by_log = logs_of(session, entry_seqs(session, ref))
    heads = {log: (seqs, _head(session, size if log == own_log() else None, log)) for log, seqs in by_log.items()}
    return inclusion_set(session, heads)


@router.get("/consistency")
def consistency(
    session: SessionDep,
    _user: AuditorUser,
    old: Annotated[int, Query(ge=0, le=2**53 - 1)],
    new: TreeSize = None,
    log: LogName = None,
) -> dict[str, Any]:
    """Proof that ``log``'s (default: this site's) signed head of ``old`` entries is a prefix of
    the ``new`` one (default: the latest)."""
    return consistency_document(session, _head(session, old, log), _head(session, new, log))
