"""Where provisioning plugs into the line.

The line calls a :class:`Provisioner` for the provision step. A line without one (no provisioning
settings) fails closed: its provision step runs nothing, the device stays where the steps before
left it (``sanitised``, or ``received`` for new stock) and the job is held with
:data:`NO_PROVISIONING` as its reason. The simulated line's no-op stand-in lives in
``simulate.py`` and the controller accepts it only on a simulated line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from imaging.engine import ProgressCallback

NO_PROVISIONING = "no provisioning settings: pass --provisioning FILE"
NO_PROVISIONING_ACTION = "restart the agent with --provisioning FILE, then take the device out and re-insert it"
# The board notice of an agent without provisioning settings, from its start.
NO_PROVISIONING_NOTICE = f"{NO_PROVISIONING}; devices stop before provisioning ('sanitised', or 'received' if new)"
# The provision step's name on a line without a provisioner (the board shows it from the start).
UNCONFIGURED_STEP = "provision (no provisioning settings)"


@dataclass(frozen=True)
class ProvisionRequest:
    job_id: int
    device_serial: str
    kind: str
    role: str | None
    profile: str  # kind/role, chosen by the pipeline rules
    slot: str
    cancel: threading.Event
    # A vehicle tablet: the fleet number of the vehicle it is allocated to or installed in.
    vehicle_fleet_number: str | None = None
    # Where a provisioner that moves bytes (the network image deploy) reports them: the job runner
    # shows it live on the board as it does an erase's. A provisioner without such a phase ignores it.
    progress: ProgressCallback | None = None


@dataclass(frozen=True)
class ProvisionOutcome:
    ok: bool
    detail: str
    noop: bool = False


class Provisioner(Protocol):
    name: str

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome: ...


@dataclass(frozen=True)
class PersonaliseRequest:
    """Apply an officer's assistive-technology profile to an allocated device and prove it works."""

    job_id: int
    device_serial: str
    staff_number: str
    needs: dict[str, Any]  # the officer's structured profile (custody's AtNeeds fields)
    cancel: threading.Event


@dataclass(frozen=True)
class PersonaliseOutcome:
    passed: bool  # the QA of every feature passed
    detail: str
    missing: tuple[str, ...] = ()  # what the QA found missing, one item each


class Personaliser(Protocol):
    def personalise(self, request: PersonaliseRequest) -> PersonaliseOutcome: ...


def personaliser(provisioner: Provisioner | None) -> Personaliser | None:
    """The line's provisioner, if it can also personalise (the Ansible one can)."""
    return provisioner if callable(getattr(provisioner, "personalise", None)) else None  # type: ignore[return-value]


def step_name(provisioner: Provisioner | None) -> str:
    """What the board calls the provision step of a line with this provisioner (or none)."""
    return provisioner.name if provisioner is not None else UNCONFIGURED_STEP


def simulation_only(provisioner: Provisioner | None) -> bool:
    """A stand-in that must never run on a real line (the simulated line's no-op)."""
    return bool(getattr(provisioner, "simulation_only", False))
