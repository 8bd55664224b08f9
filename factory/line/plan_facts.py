"""The facts the pipeline rules read besides the device: whether its officer's assistive
technology still needs personalising (custody's records) and where its recorded condition routes
it (only for a device coming back from a user: new stock and devices in the factory are not
re-routed by it)."""

from __future__ import annotations

from sqlmodel import Session

from factory.custody.views import personalisation_due
from factory.kernel.lifecycle.states import State
from factory.kernel.models.device import Device
from factory.line.device_condition import latest_condition
from factory.line.identify import RETURNED_STATES, Identification
from factory.line.pipeline_rules import TABLET_KINDS, Plan, PlanFacts, choose_plan


def plan_facts(session: Session, device: Device | None) -> PlanFacts:
    if device is None or device.id is None:
        return PlanFacts()
    # Laptops and desktops are personalised by Ansible; tablets get their AT through device management.
    personalise = (
        device.state == State.ALLOCATED
        and device.kind not in TABLET_KINDS
        and personalisation_due(session, device.id) is not None
    )
    condition = None
    if device.state in RETURNED_STATES or (device.state == State.RECEIVED and device.user_data_since_seq is not None):
        condition = latest_condition(session, device.id)
    return PlanFacts(
        personalise=personalise,
        condition_role=condition.role if condition else None,
        condition_why=condition.why if condition else None,
    )


def planned(session: Session, ident: Identification, default_kind: str) -> Plan:
    """The plan for what was identified in a slot (a slot's default kind for an unknown device)."""
    device = ident.device
    kind, role = (device.kind, device.role) if device else (default_kind, None)
    return choose_plan(ident, kind=kind, role=role, facts=plan_facts(session, device))
