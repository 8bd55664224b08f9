"""Typed errors of the custody workflows (subclasses of the kernel's, so the API and CLI map them).

Most custody refusals are the kernel's own (``InvalidInput``, ``NotFound``, ``Conflict``,
``GuardRefused``) with a reason that names the record; this module adds the ones the custody
status tables raise.
"""

from __future__ import annotations

from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound, PermissionDenied

__all__ = ["Conflict", "GuardRefused", "InvalidInput", "NotFound", "PermissionDenied", "StatusChangeRefused"]


class StatusChangeRefused(Conflict):
    """A custody record's status table has no edge for this step from its status."""

    code = "invalid_status_change"

    def __init__(self, kind: str, ident: object, status: str | None, step: str) -> None:
        shown = status or "(new)"
        super().__init__(f"{kind} {ident}: step '{step}' is not allowed from status '{shown}'")
        self.kind = kind
        self.from_status = status  # not ``status``: only the status tables assign that name
        self.step = step
