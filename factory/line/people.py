"""Who a real line runs for: certificates name people, not the bench agent.

A real (non ``--simulate``) line refuses to start under the placeholder organisation name (the
organisation signs every certificate: ``FACTORY_ORGANISATION``) and without a named technician who
is an enabled user with the technician (or admin) role: the person the agent runs for, recorded
on every job it claims (``job.started_by``) and named on its certificates.
"""

from __future__ import annotations

from factory.identity.models import Role
from factory.identity.views import find_user
from factory.kernel.config import DEFAULT_ORGANISATION
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused

STARTING_ROLES = (Role.TECHNICIAN.value, Role.ADMIN.value)


def require_named_people(ctx: AppContext, technician: str | None) -> str:
    """The technician's user name, once the line may start; else ``GuardRefused`` with the reason."""
    if ctx.settings.organisation == DEFAULT_ORGANISATION:
        raise GuardRefused(
            f"a real line signs certificates for the organisation: set FACTORY_ORGANISATION "
            f"(it is the placeholder '{DEFAULT_ORGANISATION}')"
        )
    name = (technician or "").strip()
    if not name:
        raise GuardRefused("a real line names the technician who starts it: --technician NAME (a signed-in user)")
    with session_scope(ctx.engine) as session:
        user = find_user(session, name)
        if user is None or user.disabled or user.role not in STARTING_ROLES:
            raise GuardRefused(f"'{name[:64]}' is not an enabled technician or admin: the line cannot run for them")
        return user.name
