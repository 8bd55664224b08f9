"""Typed errors of the bench line.

The technician-facing ones subclass the kernel's errors, so the API and the CLI report them
like any other (same HTTP status and problem code). ``LostOwnership`` deliberately does not: it
is not a user's mistake but a signal inside an agent, and the job runner must never take it for
a refused step (it catches ``FactoryError`` to fail a step with its reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from factory.kernel.errors import Conflict, InvalidInput, NotFound


class LostOwnership(Exception):
    """This agent no longer owns the job (reconciled elsewhere, or cancelled outright)."""


class JobNotFound(NotFound):
    """No job with that id (or it has no device where one is needed)."""


class JobNotActionable(Conflict):
    """The job is in a status (or its slot in a state) that does not allow the action."""


class UnknownStopKind(InvalidInput):
    """A stop request that is neither a cancel nor an abort."""


class StepFailed(Exception):
    """A job step failed with a reason for the board (the medium failed, the device left its
    slot, the provisioner said no); the runner fails the job with it. Internal to the runner,
    like ``LostOwnership``, so not a ``FactoryError``. A step that knows what to do next gives the
    ``action`` (else the runner's default for the step), and ``evidence`` for the failed round's
    entry (a tablet's failed reset: its stage, kind, last exchange)."""

    def __init__(self, reason: str, action: str | None = None, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.action = reason, action
        self.evidence: dict[str, Any] = dict(evidence or {})


class SimulationOnly(InvalidInput):
    """A simulation stand-in (the no-op provisioner) offered to a real line."""


class StepHeld(Exception):
    """A job step cannot run here and must not fail the device (no provisioner on this line): the
    runner ends the job held with the reason and the action. Internal to the runner."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason, self.action = reason, action
