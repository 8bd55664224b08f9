"""Pipeline rules: from what a device is (identity, state, kind, intended role) to the steps
the line runs on it. One flat table, first match wins, so the policy reads in one place.

Returned -> sanitise -> provision; new stock -> provision; unknown -> quarantine for a
technician. A role that leaves the fleet (redistribution, disposal) stops after sanitising, with
the certificate naming that destination; so does a returned device whose recorded condition
(battery, age, disks: ``condition_rules.py``) routes it out of the fleet, with the reasons. An
allocated device whose officer's assistive technology has not passed its QA on it is
personalised. Anything the line cannot act on is held, with the reason and the action a
technician should take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from factory.kernel.lifecycle.states import State
from factory.line.identify import Identification, Identity
from imaging.certificate import Destination


class Step(StrEnum):
    BOOK_RETURN = "book return"
    SANITISE = "sanitise"
    PROVISION = "provision"
    QUARANTINE = "quarantine"
    PERSONALISE = "personalise"
    IDENTIFY_TABLET = "identify tablet"
    ENROL = "enrol"


# A tablet on a bench hub port (a tablet or a vehicle tablet) follows the same rules with its own
# steps (``tablet_plan``): the platform's tools identify it first (a locked or untrusted tablet holds
# the job with the action), the sanitise step is the platform reset, and provisioning is the
# device-management enrolment profile, not Ansible. A tablet's disk in a dock keeps the disk steps.
TABLET_KINDS = frozenset({"tablet", "vehicle-tablet"})
TABLET_STEPS: dict[Step, tuple[Step, ...]] = {
    Step.SANITISE: (Step.IDENTIFY_TABLET, Step.SANITISE),
    Step.PROVISION: (Step.ENROL,),
}
TABLET_STEP_NAMES: dict[Step, str] = {
    Step.SANITISE: "sanitise (platform reset)",
    Step.ENROL: "enrol (device management)",
}


PERSONALISE_STEP_NAME = "personalise for the officer (assistive technology)"

# Intended roles (Device.role) that leave the fleet after sanitising, and where to.
LEAVING_ROLES: dict[str, Destination] = {
    "redistribution": Destination.EXTERNAL_REUSE,
    "disposal": Destination.RECYCLING,
}


@dataclass(frozen=True)
class PlanFacts:
    """What the rules read besides the device itself (found by ``plan_facts.py``)."""

    personalise: bool = False  # allocated to an officer whose AT has not passed QA on it
    condition_role: str | None = None  # a LEAVING_ROLES role its recorded condition calls for
    condition_why: str | None = None  # the reasons, for the board and the job log


@dataclass(frozen=True)
class Plan:
    name: str
    steps: tuple[Step, ...]
    destination: Destination = Destination.INTERNAL_REUSE
    profile: str = ""  # provisioning profile: kind/role
    hold_reason: str | None = None  # set: no steps, a technician must act
    action: str | None = None
    why: str | None = None  # what routed it (its condition), shown with the job


@dataclass(frozen=True)
class Seen:
    """What a rule looks at: the identification, the role it is routed for, the other facts."""

    ident: Identification
    role: str | None
    facts: PlanFacts = field(default_factory=PlanFacts)


Match = Callable[[Seen], bool]


@dataclass(frozen=True)
class Rule:
    name: str
    matches: Match
    steps: tuple[Step, ...] = ()
    hold: str | None = None
    action: str | None = None


def _state(*states: str) -> Match:
    wanted = frozenset(states)
    return lambda seen: seen.ident.device is not None and seen.ident.device.state in wanted


def _leaving(seen: Seen) -> bool:
    return seen.role in LEAVING_ROLES


def _identity(identity: Identity) -> Match:
    return lambda seen: seen.ident.identity is identity


def _both(a: Match, b: Match) -> Match:
    return lambda seen: a(seen) and b(seen)


def _personalise(seen: Seen) -> bool:
    return seen.facts.personalise


S, P, R, Q, Z = Step.SANITISE, Step.PROVISION, Step.BOOK_RETURN, Step.QUARANTINE, Step.PERSONALISE

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("quarantine", _identity(Identity.UNKNOWN), (Q,),
         action="unknown device: identify it and triage it, or send it for witnessed destruction"),
    Rule("return-sanitise", _both(_state(State.ISSUED, State.INSTALLED), _leaving), (R, S)),
    Rule("return-sanitise-provision", _state(State.ISSUED, State.INSTALLED), (R, S, P)),
    Rule("sanitise", _both(_state(State.RETURNED, State.RECEIVED, State.SANITISE_FAILED), _leaving), (S,)),
    Rule("sanitise-provision", _identity(Identity.RETURNED), (S, P)),
    Rule("provision", _identity(Identity.NEW_STOCK), (P,)),
    Rule("sanitise-provision", _state(State.SANITISE_FAILED), (S, P)),
    Rule("provision", _both(_state(State.SANITISED), lambda seen: not _leaving(seen)), (P,)),
    Rule("provision", _state(State.PROVISION_FAILED), (P,)),
    Rule("personalise", _both(_state(State.ALLOCATED), _personalise), (Z,)),
    Rule("hold", _state(State.SANITISED), hold="sanitised for a role that leaves the fleet",
         action="add it to a redistribution or disposal batch"),
    Rule("hold", _state(State.READY, State.ALLOCATED), hold="already provisioned: nothing to do",
         action="remove it from the slot and return it to stock"),
    Rule("hold", _state(State.QUARANTINED), hold="quarantined: the line will not touch it",
         action="triage it first, then re-insert it"),
    Rule("hold", _state(State.SANITISING, State.PROVISIONING), hold="already in a job elsewhere",
         action="check the other job on the board; remove this device"),
    Rule("hold", lambda _seen: True, hold="the line cannot process a device in this state",
         action="report it to a supervisor: its custody record says it should not be here"),
)
# fmt: on


def choose_plan(ident: Identification, *, kind: str, role: str | None, facts: PlanFacts | None = None) -> Plan:
    """The first matching rule's plan. A returned device whose condition calls for leaving the
    fleet is routed as if its role said so (its own role is kept for the profile)."""
    facts = facts or PlanFacts()
    routed = facts.condition_role if role not in LEAVING_ROLES and facts.condition_role in LEAVING_ROLES else None
    seen = Seen(ident, routed or role, facts)
    rule = next(r for r in RULES if r.matches(seen))
    destination = LEAVING_ROLES.get(seen.role or "", Destination.INTERNAL_REUSE)
    profile = f"{kind}/{role or 'standard'}"
    why = facts.condition_why if routed else None
    rule = replace(rule, name=f"{rule.name} (by condition: {routed})") if routed else rule  # the board says so
    if rule.hold is not None:
        state = ident.device.state if ident.device is not None else "unknown"
        return Plan(rule.name, (), destination, profile, f"{rule.hold} (state '{state}')", rule.action, why)
    return Plan(rule.name, rule.steps, destination, profile, None, rule.action, why)


def tablet_plan(plan: Plan, platform: str) -> Plan:
    """The same rule's plan for a tablet on a hub port (a tablet's disk in a dock keeps the disk plan)."""
    if not plan.steps or plan.steps == (Step.QUARANTINE,):
        return plan
    steps = tuple(t for step in plan.steps for t in TABLET_STEPS.get(step, (step,)))
    if steps[0] is not Step.IDENTIFY_TABLET and Step.ENROL in steps:
        steps = (Step.IDENTIFY_TABLET, *steps)  # new stock too: the tools read it before enrolling
    return replace(plan, name=f"{platform} tablet {plan.name}", steps=steps)


def step_name(step: Step, steps: tuple[Step, ...], provision_name: str) -> str:
    """How the board names a step: a tablet pipeline's own names, the provisioner's name, or the step."""
    if Step.IDENTIFY_TABLET in steps and step in TABLET_STEP_NAMES:
        return TABLET_STEP_NAMES[step]
    if step is Step.PERSONALISE:
        return PERSONALISE_STEP_NAME
    return provision_name if step is Step.PROVISION else step.value
