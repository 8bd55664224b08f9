"""The identity audit: one append-only row per change to who may do what (who, what, when, target).

Users added, passwords set, users disabled and enabled, tokens issued and revoked, browser sessions
ended, accounts and addresses locked by the throttle and unlocked by an admin. Triggers refuse
``UPDATE`` and ``DELETE`` on the table (migration 0010), as on the custody ledger.
"""

from __future__ import annotations

from sqlmodel import Session

from factory.identity.models import IdentityAudit
from factory.kernel.clock import utc_now

SYSTEM = "system"  # the actor of changes no person asked for (a lockout after failed sign-ins)


def record(session: Session, actor: str, action: str, target: str, detail: str = "") -> IdentityAudit:
    """Append one audit row in the caller's unit of work (it lands only if the change does)."""
    row = IdentityAudit(at=utc_now(), actor=actor[:80], action=action, target=target[:200], detail=detail[:500])
    session.add(row)
    return row
