"""Ledger verification (auditors and admins)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuditorUser, ContextDep
from api.schemas.common import LedgerReportPublic
from factory.kernel.ledger.verify import verify_ledger

router = APIRouter(prefix="/api/ledger", tags=["ledger"])


@router.get("/verify", response_model=LedgerReportPublic)
def verify(ctx: ContextDep, _user: AuditorUser) -> dict[str, object]:
    return verify_ledger(ctx.engine).as_dict()
