"""Typed errors of the custody area (subclasses of the kernel's, so the API and CLI map them as
before: same status codes, same ``error`` codes, same reasons).

Most custody refusals are the kernel's own (``InvalidInput``, ``GuardRefused``) with a reason that
names the record; this module adds the ones of the look-ups and the status tables.
"""

from __future__ import annotations

from factory.kernel.errors import Conflict, GuardRefused, InvalidInput, NotFound, PermissionDenied

__all__ = [
    "Conflict",
    "GuardRefused",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "RecordNotFound",
    "StatusChangeRefused",
    "StepNotAllowed",
    "WrongPin",
]


class RecordNotFound(NotFound):
    """No custody record (allocation, consignment, batch, officer, ...) with the id or key asked for."""


class StepNotAllowed(Conflict):
    """A workflow's pre-check: the record's status table has no edge for the step from its status."""


class StatusChangeRefused(Conflict):
    """``change_status`` was asked for a step its table does not allow (a workflow skipped its pre-check)."""

    code = "invalid_status_change"

    def __init__(self, kind: str, ident: object, status: str | None, step: str) -> None:
        shown = status or "(new)"
        super().__init__(f"{kind} {ident}: step '{step}' is not allowed from status '{shown}'")
        self.kind = kind
        self.from_status = status  # not ``status``: only the status tables assign that name
        self.step = step


class WrongPin(GuardRefused):
    """The acceptance PIN is not the officer's: counted against the officer and the address
    (identity's throttle) even though the refused hand-over is rolled back."""

    def __init__(self, reason: str, staff_number: str, address: str | None) -> None:
        super().__init__(reason)
        self.staff_number = staff_number
        self.address = address
