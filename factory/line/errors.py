"""Typed errors of the bench line.

The technician-facing ones subclass the kernel's errors, so the API and the CLI report them
like any other (same HTTP status and problem code). ``LostOwnership`` deliberately does not: it
is not a user's mistake but a signal inside an agent, and the job runner must never take it for
a refused step (it catches ``FactoryError`` to fail a step with its reason).
"""

from __future__ import annotations

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
    like ``LostOwnership``, so not a ``FactoryError``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SimulationOnly(InvalidInput):
    """A simulation stand-in (the no-op provisioner) offered to a real line."""


class StepHeld(Exception):
    """A job step cannot run here and must not fail the device (no provisioner on this line): the
    runner ends the job held with the reason and the action. Internal to the runner."""

    def __init__(self, reason: str, action: str) -> None:
        super().__init__(reason)
        self.reason, self.action = reason, action
