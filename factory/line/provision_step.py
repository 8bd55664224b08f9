"""Where provisioning plugs into the line.

The line calls a :class:`Provisioner` for the provision step; until the provisioning runner is
wired in, :class:`NoOpProvisioner` stands in under a name that says so on the board and in the
custody evidence, so nobody mistakes a no-op for a provisioned build.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProvisionRequest:
    job_id: int
    device_serial: str
    kind: str
    role: str | None
    profile: str  # kind/role, chosen by the pipeline rules
    slot: str
    cancel: threading.Event


@dataclass(frozen=True)
class ProvisionOutcome:
    ok: bool
    detail: str
    noop: bool = False


class Provisioner(Protocol):
    name: str

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome: ...


class NoOpProvisioner:
    name = "provision (not yet implemented: no-op)"

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        if request.cancel.is_set():
            return ProvisionOutcome(False, "cancelled before provisioning")
        return ProvisionOutcome(True, f"no-op: profile {request.profile} not applied", noop=True)
