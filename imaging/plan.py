"""Choose an erase method per NIST SP 800-88 from what the medium can do, not what was asked.

Purge where the medium supports it, else Clear by overwrite (a random pattern with a recorded key,
verified by read-back, unless zeros are asked for); a requested level no method can reach is a
``PlanError`` before anything is written.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from imaging.errors import PlanError
from imaging.methods import DEFAULT_OVERWRITE, EraseMethod, OverwriteMethod, methods_for_choice
from imaging.methods.base import LEVEL_RANK
from imaging.nvme_info import SanitizeState
from imaging.probe import Probe
from imaging.result import Level

METHOD_CHOICES = (
    "auto",
    "zeros",
    "ones",
    "random",
    "nvme-sanitize",
    "nvme-format",
    "ata-secure-erase",
    "ata-sanitize",
)
MAX_PASSES = 7


@dataclass(frozen=True)
class Plan:
    method: EraseMethod
    level_requested: Level
    level: Level  # what the chosen method achieves on this medium
    passes: int
    considered: tuple[tuple[str, str], ...]  # (method, why it was not chosen)
    notes: tuple[str, ...]

    @property
    def is_overwrite(self) -> bool:
        return isinstance(self.method, OverwriteMethod)


def make_plan(
    probe: Probe,
    level: Level,
    method: str = "auto",
    passes: int = 1,
    exclude: Collection[str] = (),
    overwrite: str = DEFAULT_OVERWRITE,
) -> Plan:
    """The first method that reaches ``level``; ``exclude`` names methods the drive already refused;
    ``overwrite`` is the pattern of ``auto``'s overwrite (random unless a caller can only write zeros)."""
    level = Level(level)
    if method not in METHOD_CHOICES:
        raise PlanError(f"unknown method {method!r}; choose one of {', '.join(METHOD_CHOICES)}")
    if level is Level.DESTROY:
        raise PlanError("destroy is physical destruction: no erase method achieves it")
    if not 1 <= passes <= MAX_PASSES:
        raise PlanError(f"passes must be between 1 and {MAX_PASSES}, got {passes}")
    if probe.sanitize_log is not None and probe.sanitize_log.state is SanitizeState.IN_PROGRESS:
        pct = 100.0 * probe.sanitize_log.progress_fraction
        raise PlanError(
            f"{probe.path}: an NVMe sanitize is already in progress ({pct:.0f}%); "
            "it must be polled to completion before this medium is planned"
        )
    considered: list[tuple[str, str]] = []
    for candidate in methods_for_choice(method, overwrite):
        if candidate.name in exclude:
            considered.append((candidate.name, "refused by the drive earlier in this erase"))
            continue
        support = candidate.supports(probe)
        if not support.ok or support.level is None:
            considered.append((candidate.name, support.reason))
            continue
        if LEVEL_RANK[support.level] < LEVEL_RANK[level]:
            considered.append((candidate.name, f"achieves {support.level} only on this medium"))
            continue
        notes = [support.reason] if support.reason else []
        if passes > 1 and not isinstance(candidate, OverwriteMethod):
            if method != "auto":
                raise PlanError(f"{candidate.name} is a single firmware operation: passes do not apply")
            notes.append(f"passes={passes} ignored: {candidate.name} is a firmware operation")
        if isinstance(candidate, OverwriteMethod) and probe.hpa is not None and probe.hpa.hidden_sectors:
            notes.append(f"HPA hides {probe.hpa.hidden_sectors} sectors: native max is restored before the overwrite")
        return Plan(
            method=candidate,
            level_requested=level,
            level=support.level,
            passes=passes if isinstance(candidate, OverwriteMethod) else 1,
            considered=tuple(considered),
            notes=tuple(notes),
        )
    reasons = "; ".join(f"{name}: {why}" for name, why in considered)
    raise PlanError(f"cannot achieve {level} on {probe.path} ({probe.media_type}) with {method}: {reasons}")
