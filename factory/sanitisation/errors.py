"""Typed errors of the sanitisation area; each carries a one-line reason for the board or the CLI."""

from __future__ import annotations

from factory.kernel.errors import Conflict, GuardRefused


class RemoteUnavailable(Conflict):
    """The service environment could not be reached or did not prove its identity; nothing was sent."""

    code = "remote_unavailable"


class WipeFailed(Conflict):
    """A stand-alone wipe (``factory wipe``) was refused or failed: no certificate was written."""

    code = "wipe_failed"


class MediumNotFound(Conflict):
    """A recorded medium is not (or not uniquely) among the remote's disks: nothing was erased."""

    code = "medium_not_found"

    def __init__(self, serial: str, reason: str) -> None:
        super().__init__(reason)
        self.serial = serial


class EraseFailed(Conflict):
    """Erasing a medium of an open round failed or was refused; the round closes with ``fail``."""

    code = "erase_failed"


class RoundLeft(GuardRefused):
    """The device left the erase round being certified (failed, restarted or moved on meanwhile)."""

    code = "round_left"
