"""Overwrite with a fixed or random pattern through normal writes: NIST Clear on any medium."""

from __future__ import annotations

from imaging.methods.base import EraseMethod, Support
from imaging.probe import Probe
from imaging.result import Level, Technique

FLASH_NOTE = "flash medium: overwrite cannot reach remapped or over-provisioned cells (Clear only)"


class OverwriteMethod(EraseMethod):
    technique = Technique.OVERWRITE

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.name = f"overwrite-{pattern}"
        self.choice = pattern

    def supports(self, probe: Probe) -> Support:
        if probe.size_bytes <= 0:
            return Support.no("target has no addressable bytes")
        return Support.yes(Level.CLEAR, FLASH_NOTE if probe.solid_state else "")
