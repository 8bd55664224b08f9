"""Typed errors of the tablets area; each carries a one-line reason for the board or the CLI."""

from __future__ import annotations

from factory.kernel.errors import Conflict, InvalidInput


class TabletNotReady(Conflict):
    """The tablet could not be identified (locked, untrusted, not reachable); nothing was opened."""

    code = "tablet_not_ready"

    def __init__(self, reason: str, action: str | None = None) -> None:
        super().__init__(reason if action is None else f"{reason}: {action}")
        self.action = action


class TabletMismatch(Conflict):
    """The tablet the tools read is not the device named (another serial, UDID or medium)."""

    code = "tablet_mismatch"


class TabletBenchUnavailable(InvalidInput):
    """A real bench lacks a tool or the device-management settings tablets need: it does not start."""

    code = "tablet_bench_unavailable"
