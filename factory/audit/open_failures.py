"""Failures without a re-erase: devices whose latest erase round failed and that have not been
erased again (still ``sanitise_failed``), with the failure's reason from the ledger. An exception
until the device is re-erased (a new round) or witnessed destroyed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlmodel import Session, col, select

from factory.kernel.lifecycle.states import Event, State
from factory.kernel.models.custody_entry import CustodyEntry
from factory.kernel.models.device import Device


@dataclass(frozen=True)
class OpenFailure:
    device_serial: str
    failed_at: str
    seq: int
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def failures_without_reerase(session: Session, limit: int = 500) -> list[OpenFailure]:
    devices = session.exec(
        select(Device).where(Device.state == State.SANITISE_FAILED.value).order_by(col(Device.serial)).limit(limit)
    ).all()
    out = []
    for device in devices:
        entry = session.exec(
            select(CustodyEntry)
            .where(CustodyEntry.device_id == device.id, CustodyEntry.event == Event.FAIL.value)
            .order_by(col(CustodyEntry.seq).desc())
            .limit(1)
        ).first()
        evidence = orjson.loads(entry.evidence) if entry is not None else {}
        reason = evidence.get("reason") if isinstance(evidence, dict) else None
        out.append(
            OpenFailure(
                device.serial, entry.occurred_at if entry else "", entry.seq if entry else 0, reason and str(reason)
            )
        )
    return out
