"""Typed errors of the domain core. Every one carries a one-line, human-readable reason.

The API maps them to 4xx responses (``status_code``, ``code``) and the CLI to a one-line message
with a non-zero exit; nothing else is expected to escape to a user. Areas subclass these (see each
area's ``errors.py``), so a refusal keeps its status and code wherever it is raised.
"""

from __future__ import annotations

from typing import Any


class FactoryError(Exception):
    """Base of every expected, user-facing failure.

    A subclass states its HTTP status and error code in its header:
    ``class NotFound(FactoryError, status=404, code="not_found")``; without them it inherits both.
    """

    status_code = 400
    code = "bad_request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if code is not None:
            cls.code = code

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidInput(FactoryError, status=422, code="invalid_input"):
    """The request itself is malformed (an empty serial, an unknown kind, a bad size)."""


class NotFound(FactoryError, status=404, code="not_found"):
    """What the request names does not exist."""


class Conflict(FactoryError, status=409, code="conflict"):
    """The request is well formed but the current records refuse it."""


class InvalidTransition(Conflict, code="invalid_transition"):
    """The lifecycle table has no edge for this event from this state."""

    def __init__(self, serial: str, state: str | None, event: str) -> None:
        shown = state or "(not in custody)"
        super().__init__(f"device {serial}: event '{event}' is not allowed from state '{shown}'")
        self.serial = serial
        self.from_state = state
        self.event = event

    @property
    def state(self) -> str | None:
        """The state the device was in (read-only: only change_state writes a device's state)."""
        return self.from_state


class GuardRefused(Conflict, code="guard_refused"):
    """The edge exists but a rule that must hold refuses it (e.g. no valid certificate)."""


class PermissionDenied(FactoryError, status=403, code="forbidden"):
    """The caller is known but their role may not do this."""


class Unauthenticated(FactoryError, status=401, code="unauthenticated"):
    """No caller could be established (no, unknown, revoked or expired credentials)."""


class KeyStoreError(FactoryError, status=409, code="key_store"):
    """The site signing key is missing, unreadable or already exists."""
