"""Quarantine triage: a technician looks at a held device and releases it back into the factory
(``triage``: quarantined -> received) with what they found. Destruction is the other way out
(destruction.py)."""

from __future__ import annotations

from sqlmodel import Session

from factory.custody.outcome import Outcome
from factory.intake.views import get_device
from factory.kernel.errors import InvalidInput
from factory.kernel.lifecycle.states import Event
from factory.kernel.lifecycle.transition import TransitionRequest, change_state
from factory.kernel.models.device import Device


def triage(session: Session, *, serial: str, finding: str, actor: str) -> Outcome[Device]:
    """Release a quarantined device into the factory's intake with the technician's finding.

    :raises NotFound: no such device.
    :raises InvalidInput: no finding.
    :raises InvalidTransition: the device is not quarantined.
    """
    device = get_device(session, serial)
    text = (finding or "").strip()
    if not text:
        raise InvalidInput("triage records what was found (e.g. 'identified as force laptop, label replaced')")
    request = TransitionRequest(device.id or 0, Event.TRIAGE, evidence={"finding": text[:500]})
    entries = change_state(session, [request], actor=actor)
    return Outcome(device, entries)
