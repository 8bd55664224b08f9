"""Errors of the two SSH drivers: ``ssh`` (bench preflight, bounded shell commands) and
``remote_commands`` (storage tools and dd over SSH in the service environment).

Each driver keeps its own base (``SshError``, ``RemoteCommandError``) so a caller catches what its
driver raises; the two failures both drivers can meet, a refused host-key pin and a command that
ran out of time, are one class each and belong to both hierarchies, so one ``except`` catches them
from either driver.
"""

from __future__ import annotations


class SshError(Exception):
    """Base of every SSH driver error; ``str(err)`` is a one-line reason."""


class Unreachable(SshError):
    """No SSH service answered (refused, timed out, connection dropped)."""


class AuthFailed(SshError):
    """The device refused our client key."""


class InvalidPin(SshError, ValueError):
    """The pinned host key is not an OpenSSH public key line."""


class RemoteCommandError(Exception):
    """Base of every error the remote command runner raises on purpose."""


class RemoteConnectError(RemoteCommandError):
    """The service environment could not be reached, or the SSH session failed."""


class RemoteAuthError(RemoteConnectError):
    """The server refused the client key, or the key file could not be loaded."""


class RemoteReadError(RemoteCommandError):
    """A read-back failed or returned a different number of bytes than asked for."""


class RemoteWriteError(RemoteCommandError):
    """An overwrite failed or did not write every byte it was asked to."""


class HostKeyMismatch(RemoteConnectError, SshError):
    """The device offered a host key other than the pinned one; nothing was sent to it."""

    def __init__(self, address: str, expected: str, offered: str) -> None:
        super().__init__(f"host key mismatch for {address}: pinned {expected}, offered {offered}")
        self.address = address
        self.expected = expected
        self.offered = offered


class RemoteTimeout(RemoteCommandError, SshError):
    """A remote command or transfer did not finish in time (it was abandoned, its channel closed)."""
