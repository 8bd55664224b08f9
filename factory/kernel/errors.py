"""Typed errors of the domain core. Every one carries a one-line, human-readable reason.

The API maps them to 4xx responses and the CLI to a one-line message with a non-zero exit;
nothing else is expected to escape to a user.
"""

from __future__ import annotations


class FactoryError(Exception):
    """Base of every expected, user-facing failure."""

    status_code = 400
    code = "bad_request"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidInput(FactoryError):
    status_code = 422
    code = "invalid_input"


class NotFound(FactoryError):
    status_code = 404
    code = "not_found"


class Conflict(FactoryError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """The lifecycle table has no edge for this event from this state."""

    code = "invalid_transition"

    def __init__(self, serial: str, state: str | None, event: str) -> None:
        shown = state or "(not in custody)"
        super().__init__(f"device {serial}: event '{event}' is not allowed from state '{shown}'")
        self.serial = serial
        self.state = state
        self.event = event


class GuardRefused(Conflict):
    """The edge exists but a rule that must hold refuses it (e.g. no valid certificate)."""

    code = "guard_refused"


class PermissionDenied(FactoryError):
    status_code = 403
    code = "forbidden"


class Unauthenticated(FactoryError):
    status_code = 401
    code = "unauthenticated"


class KeyStoreError(FactoryError):
    status_code = 409
    code = "key_store"
