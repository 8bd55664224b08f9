"""The condition evidence of a device (disk health, battery wear, age) and the route it calls for,
recorded when the service environment reports it (the enrolment) or a technician enters it.

Each record keeps what was read, as read, with the route and reasons decided under the site's
thresholds at that moment; the line's rules route a returned device by its latest record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, col, select

from factory.kernel import clock
from factory.kernel.clock import utc_now
from factory.kernel.models.device import Device
from factory.line.condition_rules import Condition, Decision, Thresholds, decide
from factory.line.models import DeviceCondition


@dataclass(frozen=True)
class RecordedCondition:
    route: str
    role: str | None  # the leaving role it calls for, if any
    why: str
    recorded_at: str


def record_condition(
    session: Session, device_id: int, condition: Condition, thresholds: Thresholds, *, actor: str
) -> Decision:
    """Decide the route under ``thresholds`` today and store it with the evidence."""
    decision = decide(condition, thresholds, clock.now().date())
    session.add(
        DeviceCondition(
            device_id=device_id,
            evidence=json.dumps(condition.as_evidence(), sort_keys=True),
            route=decision.route.label,
            reasons=json.dumps(list(decision.reasons)),
            recorded_by=actor,
            recorded_at=utc_now(),
        )
    )
    session.flush()
    return decision


def latest_condition(session: Session, device_id: int) -> RecordedCondition | None:
    row = session.exec(
        select(DeviceCondition).where(DeviceCondition.device_id == device_id).order_by(col(DeviceCondition.id).desc())
    ).first()
    if row is None:
        return None
    role = {"redistribution": "redistribution", "disposal": "disposal"}.get(row.route)
    why = f"{row.route}: {'; '.join(json.loads(row.reasons))}"
    return RecordedCondition(row.route, role, why, row.recorded_at)


def condition_of(session: Session, serial: str) -> RecordedCondition | None:
    """The latest recorded condition of the device with ``serial`` and the route it called for."""
    device_id = session.exec(select(Device.id).where(Device.serial == serial)).first()
    return latest_condition(session, device_id) if device_id is not None else None
