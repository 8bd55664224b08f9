"""Typed errors of the sanitisation engine.

Errors raised *before anything is written* (refusals, planning) propagate to the caller as
exceptions. Failures *during* an erase never escape ``engine.erase``: they become a failed
``EraseResult`` (fail closed), carried internally as ``EraseFailure``.
"""

from __future__ import annotations


class ImagingError(Exception):
    """Base of every error the imaging package raises on purpose."""


class ProbeError(ImagingError):
    """The target could not be identified (missing path, not a block device or regular file)."""


class TargetRefused(ImagingError):
    """The target must not be erased; raised before anything is opened for writing."""


class TargetMounted(TargetRefused):
    """The target, or one of its partitions, is mounted."""


class TargetInUse(TargetRefused):
    """The target is held by another device (dm, md, loop), used as swap, or opened exclusively."""


class SystemDiskRefused(TargetRefused):
    """The target holds the running system (/ or /boot)."""


class PlanError(ImagingError):
    """No method can achieve the requested level on this medium; nothing was written."""


class UnexpectedCommand(ImagingError):
    """A replay runner was asked for a command its scenario does not contain."""


class EraseFailure(ImagingError):
    """An erase or verification failed; becomes ``EraseResult(ok=False)``."""

    def __init__(self, reason: str, offset: int | None = None, residual: tuple[str, ...] = ()) -> None:
        super().__init__(reason if offset is None else f"{reason} (offset {offset})")
        self.reason = reason
        self.offset = offset
        self.residual = residual  # risks left behind (a password still set, a sanitize still running)


class DeviceVanished(EraseFailure):
    """The device disappeared, was detached or changed size while being erased."""


class ReadOnlyTarget(EraseFailure):
    """The kernel refuses writes to the target."""


class Cancelled(EraseFailure):
    """The operator cancelled the erase; the medium is in an unknown, partly erased state."""


class FirmwareRejected(EraseFailure):
    """The drive refused a firmware erase outright and provably started nothing (e.g. NVMe Invalid
    Command Opcode, a SECURITY SET PASSWORD that left security disabled): the medium is unchanged."""
