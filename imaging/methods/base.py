"""What every erase method answers: can it run on this medium, at which level, and how."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass

from imaging.commands import CommandRunner
from imaging.errors import Cancelled
from imaging.probe import Probe
from imaging.result import CommandRecord, Level, Technique

UNSUPPORTED = "unsupported here: "
LEVEL_RANK = {Level.CLEAR: 1, Level.PURGE: 2, Level.DESTROY: 3}


@dataclass(frozen=True)
class Support:
    ok: bool
    reason: str = ""  # "unsupported here: <why>" when not ok; a caveat when ok
    level: Level | None = None

    @classmethod
    def yes(cls, level: Level, note: str = "") -> Support:
        return cls(True, note, level)

    @classmethod
    def no(cls, why: str) -> Support:
        return cls(False, UNSUPPORTED + why, None)

    @classmethod
    def command_set_refusal(
        cls, probe: Probe, transport: str, data: object | None, labels: tuple[str, str, str]
    ) -> Support | None:
        """The refusals every firmware method of one command set shares (None: it may go on).

        ``labels``: the command set's name, what its identify data is called, and what reads it
        (e.g. ("ATA", "ATA identify data", "hdparm -I")).
        """
        name, data_name, reader = labels
        if probe.transport != transport:
            return cls.no(f"not an {name} device")
        if data is None:
            detail = "; ".join(probe.firmware_notes) or f"{reader} was not read"
            return cls.no(f"{data_name} unavailable ({detail})")
        return None


class EraseMethod(ABC):
    name: str  # recorded on the result and certificate, e.g. "nvme-sanitize-crypto"
    choice: str  # the operator's explicit choice that selects it, e.g. "nvme-sanitize"
    technique: Technique

    @abstractmethod
    def supports(self, probe: Probe) -> Support:
        """Whether this method can run on ``probe`` and which NIST level it then achieves."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


@dataclass
class FirmwareContext:
    """What a firmware method needs while it runs: the command seam, polling and cancellation."""

    runner: CommandRunner
    poll_interval: float = 5.0
    poll_timeout: float = 24 * 3600.0
    cancel: threading.Event | None = None
    on_fraction: Callable[[float], None] | None = None

    def run(self, argv: list[str], timeout: float) -> CommandRecord:
        return self.runner.run(argv, timeout)

    def wait(self, what: str) -> None:
        """Sleep one poll interval; a cancel here cannot stop the drive, so the outcome is unknown."""
        cancel = self.cancel or threading.Event()
        if cancel.wait(self.poll_interval):
            raise Cancelled(f"cancelled while {what}: the drive may still be erasing, outcome unknown")

    def progress(self, fraction: float) -> None:
        if self.on_fraction is not None:
            self.on_fraction(fraction)


@dataclass(frozen=True)
class FirmwareExpectation:
    """What a read-back must find after a firmware erase: ``pattern`` (zeros/ones) or None for
    a vendor-defined result (zeros, or anything that differs from the pre-erase content)."""

    label: str
    pattern: str | None


class FirmwareMethod(EraseMethod):
    @abstractmethod
    def expectation(self, probe: Probe) -> FirmwareExpectation: ...

    @abstractmethod
    def execute(self, probe: Probe, ctx: FirmwareContext) -> tuple[str, ...]:
        """Run the erase to completion; return notes. Raise ``EraseFailure`` unless it provably
        succeeded (fail closed on any rejection, unknown state or timeout)."""


def sanitize_technique(action: str, known: Collection[str]) -> Technique:
    """What a SANITIZE action does to the medium ("crypto" or "block"); refuses an action the
    method has no command for."""
    if action not in known:
        raise ValueError(f"unknown sanitize action {action!r}")
    return Technique.CRYPTO_ERASE if action == "crypto" else Technique.BLOCK_ERASE


def tail(record: CommandRecord, limit: int = 300) -> str:
    """A short, single-line excerpt of a command's output for a failure reason."""
    text = " | ".join(line.strip() for line in (record.stderr + "\n" + record.stdout).splitlines() if line.strip())
    return text[:limit] or f"exit status {record.returncode}"
