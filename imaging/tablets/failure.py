"""Why a tablet's platform reset failed, typed for the custody record and the board.

A failed reset never yields a certificate; the device goes to ``sanitise_failed``, whose exits are
a new round or witnessed destruction. What the record keeps of it: the stage (``plan``: nothing was
sent; ``reset``: the method failed; ``after the reset``: the tablet did not show it was reset), the
kind, the reason, the last tool call or service exchange (its status), the service's own status
where one was used, and the technician's next action, which follows from the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imaging.errors import EraseFailure, PlanError
from imaging.result import CommandRecord
from imaging.tablets.identity import ANDROID, IPADOS, TabletProbe

REFUSED = "refused"
NOT_ACKNOWLEDGED = "not acknowledged"
TIMED_OUT = "timed out"
LOCKED = "locked"
NOT_ENCRYPTED = "not encrypted"
ENCRYPTION_UNKNOWN = "encryption state unknown"
NO_METHOD = "no method"
NOT_CONFIRMED = "not confirmed after the reset"
FAILED = "failed"

_FIRST: dict[str, str] = {
    REFUSED: "check its enrolment and pending commands in the device-management console, then re-sanitise",
    NOT_ACKNOWLEDGED: "re-sanitise (the wipe is sent again)",
    TIMED_OUT: "the wipe may still run: leave it on the bench until it restarts, then re-sanitise",
    LOCKED: "clear the lock (Lost Mode, passcode) in the device-management console, then re-sanitise",
    NO_METHOD: "enrol it in the device-management service (or the site's device-owner app), then re-sanitise",
    NOT_CONFIRMED: "it did not show it was reset: re-sanitise",
    # Read before the tablet said (still starting: vold sets ro.crypto.state once it has run);
    # only a tablet that says it is not encrypted is sent straight to destruction.
    ENCRYPTION_UNKNOWN: "let it finish starting up and unlock it, then re-sanitise",
    FAILED: "re-sanitise",
}
# Every kind leaves both exits of sanitise_failed open; an unencrypted tablet has only one that sanitises.
ACTIONS: dict[str, str] = {
    **{kind: f"{first}, or send it for witnessed destruction" for kind, first in _FIRST.items()},
    NOT_ENCRYPTED: "a reset of unencrypted data is no sanitisation: send it for witnessed destruction",
}


class ResetFailed(EraseFailure):
    """A method's failure with its ``kind`` and, where a service was used, its last status."""

    def __init__(
        self, reason: str, kind: str, *, residual: tuple[str, ...] = (), service: dict[str, Any] | None = None
    ) -> None:
        super().__init__(reason, residual=residual)
        self.kind = kind
        self.service = service


@dataclass(frozen=True)
class ResetFailure:
    stage: str  # "plan", "reset" or "after the reset"
    kind: str
    reason: str
    command: dict[str, Any] | None = None  # the last tool call or service exchange and its status
    service: dict[str, Any] | None = None  # the service's command id and status, where one was used

    @property
    def action(self) -> str:
        return ACTIONS[self.kind]

    def evidence(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "kind": self.kind,
            "reason": self.reason,
            "command": self.command,
            "service": self.service,
            "action": self.action,
        }


def last_exchange(records: Sequence[CommandRecord]) -> dict[str, Any] | None:
    """The last call's argv and exit status (a service request by its method and URL: no body)."""
    if not records:
        return None
    last = records[-1]
    argv = list(last.argv[:3]) if last.argv[:1] == ("https",) else list(last.argv)
    return {"argv": argv, "returncode": last.returncode}


def from_method(error: EraseFailure, records: Sequence[CommandRecord]) -> ResetFailure:
    kind = error.kind if isinstance(error, ResetFailed) else FAILED
    service = error.service if isinstance(error, ResetFailed) else None
    return ResetFailure("reset", kind, error.reason, last_exchange(records), service)


def from_plan(probe: TabletProbe, error: PlanError) -> ResetFailure:
    """Nothing was sent: the tablet was not encrypted or did not say whether it was (a crypto erase is
    refused either way), or no method serves it."""
    kind = NO_METHOD
    if probe.platform in (IPADOS, ANDROID) and probe.encrypted is not True:
        kind = NOT_ENCRYPTED if probe.encrypted is False else ENCRYPTION_UNKNOWN
    return ResetFailure("plan", kind, str(error), last_exchange(probe.commands))


__all__ = ["ACTIONS", "ResetFailed", "ResetFailure", "from_method", "from_plan", "last_exchange"]
