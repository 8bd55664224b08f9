"""Pipeline rules: from what a device is (identity, state, kind, intended role) to the steps
the line runs on it. One flat table, first match wins, so the policy reads in one place.

Returned -> sanitise -> provision; new stock -> provision; unknown -> quarantine for a
technician. A role that leaves the fleet (redistribution, disposal) stops after sanitising, with
the certificate naming that destination. Anything the line cannot act on is held, with the
reason and the action a technician should take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from factory.kernel.lifecycle.states import State
from factory.line.identify import Identification, Identity
from imaging.certificate import Destination


class Step(StrEnum):
    BOOK_RETURN = "book return"
    SANITISE = "sanitise"
    PROVISION = "provision"
    QUARANTINE = "quarantine"
    IDENTIFY_TABLET = "identify tablet"
    ENROL = "enrol"


# Tablets and vehicle tablets follow the same rules with their own steps: the platform's tools
# identify them first (a locked or untrusted tablet holds the job with the action), the sanitise
# step is the platform reset, and provisioning is the device-management enrolment profile, not Ansible.
TABLET_KINDS = frozenset({"tablet", "vehicle-tablet"})
TABLET_STEPS: dict[Step, tuple[Step, ...]] = {
    Step.SANITISE: (Step.IDENTIFY_TABLET, Step.SANITISE),
    Step.PROVISION: (Step.ENROL,),
}
TABLET_STEP_NAMES: dict[Step, str] = {
    Step.SANITISE: "sanitise (platform reset)",
    Step.ENROL: "enrol (device management)",
}


# Intended roles (Device.role) that leave the fleet after sanitising, and where to.
LEAVING_ROLES: dict[str, Destination] = {
    "redistribution": Destination.EXTERNAL_REUSE,
    "disposal": Destination.RECYCLING,
}


@dataclass(frozen=True)
class Plan:
    name: str
    steps: tuple[Step, ...]
    destination: Destination = Destination.INTERNAL_REUSE
    profile: str = ""  # provisioning profile: kind/role
    hold_reason: str | None = None  # set: no steps, a technician must act
    action: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    matches: Callable[[Identification, str | None], bool]
    steps: tuple[Step, ...] = ()
    hold: str | None = None
    action: str | None = None


def _state(*states: str) -> Callable[[Identification, str | None], bool]:
    wanted = frozenset(states)
    return lambda ident, _role: ident.device is not None and ident.device.state in wanted


def _leaving(ident: Identification, role: str | None) -> bool:
    return role in LEAVING_ROLES


def _both(
    a: Callable[[Identification, str | None], bool], b: Callable[[Identification, str | None], bool]
) -> Callable[[Identification, str | None], bool]:
    return lambda ident, role: a(ident, role) and b(ident, role)


S, P, R, Q = Step.SANITISE, Step.PROVISION, Step.BOOK_RETURN, Step.QUARANTINE

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("quarantine", lambda i, _r: i.identity is Identity.UNKNOWN, (Q,),
         action="unknown device: identify it and triage it, or send it for witnessed destruction"),
    Rule("return-sanitise", _both(_state(State.ISSUED, State.INSTALLED), _leaving), (R, S)),
    Rule("return-sanitise-provision", _state(State.ISSUED, State.INSTALLED), (R, S, P)),
    Rule("sanitise", _both(_state(State.RETURNED, State.RECEIVED, State.SANITISE_FAILED), _leaving), (S,)),
    Rule("sanitise-provision", lambda i, _r: i.identity is Identity.RETURNED, (S, P)),
    Rule("provision", lambda i, _r: i.identity is Identity.NEW_STOCK, (P,)),
    Rule("sanitise-provision", _state(State.SANITISE_FAILED), (S, P)),
    Rule("provision", _both(_state(State.SANITISED), lambda i, r: not _leaving(i, r)), (P,)),
    Rule("provision", _state(State.PROVISION_FAILED), (P,)),
    Rule("hold", _state(State.SANITISED), hold="sanitised for a role that leaves the fleet",
         action="add it to a redistribution or disposal batch"),
    Rule("hold", _state(State.READY, State.ALLOCATED), hold="already provisioned: nothing to do",
         action="remove it from the slot and return it to stock"),
    Rule("hold", _state(State.QUARANTINED), hold="quarantined: the line will not touch it",
         action="triage it first, then re-insert it"),
    Rule("hold", _state(State.SANITISING, State.PROVISIONING), hold="already in a job elsewhere",
         action="check the other job on the board; remove this device"),
    Rule("hold", lambda _i, _r: True, hold="the line cannot process a device in this state",
         action="report it to a supervisor: its custody record says it should not be here"),
)
# fmt: on


def choose_plan(ident: Identification, *, kind: str, role: str | None) -> Plan:
    rule = next(r for r in RULES if r.matches(ident, role))
    destination = LEAVING_ROLES.get(role or "", Destination.INTERNAL_REUSE)
    profile = f"{kind}/{role or 'standard'}"
    if rule.hold is not None:
        state = ident.device.state if ident.device is not None else "unknown"
        return Plan(rule.name, (), destination, profile, f"{rule.hold} (state '{state}')", rule.action)
    if kind in TABLET_KINDS and rule.steps != (Step.QUARANTINE,):
        steps = tuple(t for step in rule.steps for t in TABLET_STEPS.get(step, (step,)))
        if steps and steps[0] is not Step.IDENTIFY_TABLET and Step.ENROL in steps:
            steps = (Step.IDENTIFY_TABLET, *steps)  # new stock too: the tools read it before enrolling
        return Plan(f"{kind} {rule.name}", steps, destination, profile, None, rule.action)
    return Plan(rule.name, rule.steps, destination, profile, None, rule.action)


def step_name(step: Step, kind: str, provision_name: str) -> str:
    """How the board names a step: the provisioner's name, a tablet's own step names, or the step."""
    if kind in TABLET_KINDS and step in TABLET_STEP_NAMES:
        return TABLET_STEP_NAMES[step]
    return provision_name if step is Step.PROVISION else step.value
