"""Typed errors of identity (subclasses of the kernel's, so the API and CLI map them unchanged).

Every authentication failure is an ``Unauthenticated`` (401) with one reason; the subclasses say
which check refused, for code and tests, without telling a caller more than the reason does.
"""

from __future__ import annotations

from factory.kernel.errors import Conflict, FactoryError, InvalidInput, NotFound, Unauthenticated

__all__ = [
    "DirectoryAccountDisabled",
    "DirectoryUnavailable",
    "InvalidInput",
    "InvalidToken",
    "LoginRefused",
    "NoMappedGroup",
    "SessionRefused",
    "Throttled",
    "Unauthenticated",
    "UnknownToken",
    "UnknownUser",
    "UserExists",
]


class UnknownUser(NotFound):
    """No user has this name."""


class UserExists(Conflict):
    """A user with this name already exists."""


class InvalidToken(Unauthenticated):
    """The API token is unknown, revoked, or its user is disabled."""


class LoginRefused(Unauthenticated):
    """Wrong name or password (one reason for both, so names cannot be probed)."""


class SessionRefused(Unauthenticated):
    """The browser session cookie is unknown, ended, expired or idle too long."""


class DirectoryAccountDisabled(LoginRefused):
    """The directory marks the account disabled (AD's ACCOUNTDISABLE, ppolicy's lock), or AD refused
    the bind for the account's state (disabled, locked out, expired, password expired or to be
    changed: ``data 533/775/701/532/773``), which the reason then names."""


class NoMappedGroup(LoginRefused):
    """The directory vouched for the password, but none of the user's groups grants a role here."""


class DirectoryUnavailable(Unauthenticated, status=503, code="directory_unavailable"):
    """The directory cannot be reached or is misconfigured: directory accounts cannot sign in now."""


class Throttled(FactoryError, status=429, code="throttled"):
    """Too many failed sign-ins or PINs: refused for ``retry_after`` seconds, or (None) until an
    admin unlocks the account or address. Refused before any password or PIN is checked."""

    def __init__(self, reason: str, retry_after: int | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UnknownToken(NotFound):
    """No API token or browser session has this id."""
