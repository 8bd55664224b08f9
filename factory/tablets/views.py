"""What the custody record says about a tablet's sanitisation: before, during, after, and blockers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from factory.intake.views import get_device
from factory.kernel.lifecycle.guards import REDISTRIBUTION_BLOCKERS
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.custody_entry import CustodyEntry


@dataclass(frozen=True)
class TabletRound:
    """The latest erase round of a tablet as recorded: evidence before, and the closing entry."""

    opened_seq: int
    before: dict[str, Any]  # the identity and state the tools read
    closed_event: str | None  # "sanitised", "fail", or None while it runs
    closing: dict[str, Any]  # wipe command, acknowledgement, after checks, blockers or the reason
    redistribution_blockers: tuple[str, ...]

    @property
    def certified(self) -> bool:
        return self.closed_event == Event.SANITISED.value


def latest_tablet_round(session: Session, serial: str) -> TabletRound | None:
    """The device's latest erase round with tablet evidence, or None if it never had one."""
    device = get_device(session, serial)
    rows = session.exec(
        select(CustodyEntry)
        .where(CustodyEntry.device_id == device.id)
        .where(col(CustodyEntry.event).in_([Event.START_SANITISE.value, Event.SANITISED.value, Event.FAIL.value]))
        .order_by(col(CustodyEntry.seq).desc())
    ).all()
    later: list[CustodyEntry] = []
    for row in rows:  # newest first: the round's closing entry is the oldest one after its opening
        if row.event != Event.START_SANITISE.value:
            later.append(row)
            continue
        before = json.loads(row.evidence)
        if "tablet" not in before:
            return None
        closed = later[-1] if later else None
        evidence = json.loads(closed.evidence) if closed is not None else {}
        blockers = tuple(str(b) for b in evidence.get(REDISTRIBUTION_BLOCKERS, ()))
        return TabletRound(row.seq, before["tablet"], closed.event if closed else None, evidence, blockers)
    return None
