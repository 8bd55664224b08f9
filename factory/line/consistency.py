"""Consistency audit of the line against the evidence: run after a crash, or any time.

Each check names what it found wrong; an empty list means:

* the custody ledger verifies;
* every device's state and custodian are those of its latest custody entry;
* every certificate verifies, belongs to an erase round of its device that was opened by a
  ``start_sanitise`` entry and closed by a ``sanitised`` entry with no other round in between
  (so no certificate exists for an interrupted or incomplete wipe);
* a device in progress (sanitising / provisioning) has a running job;
* no slot has two active jobs and no device sits in two slots.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device
from factory.kernel.site_keys import site_keys
from factory.line.models import ACTIVE_JOB_STATUSES, Job, JobStatus, Slot

IN_PROGRESS = ("sanitising", "provisioning")


def audit_line(engine: Engine, settings: Settings) -> list[str]:
    problems: list[str] = []
    report = verify_ledger(engine)
    if not report.ok:
        problems.append(f"ledger does not verify at seq {report.broken_seq}: {report.reason}")
    verifier = site_keys(settings).verifier()
    with Session(engine) as s:
        entries: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
        for device_id, seq, event, to_state, custodian in s.execute(
            text("SELECT device_id, seq, event, to_state, to_custodian FROM custody_entry ORDER BY seq")
        ):
            entries[device_id].append((seq, event, to_state, custodian))
        for device in s.exec(select(Device)).all():
            history = entries.get(device.id or 0, [])
            if not history:
                problems.append(f"device {device.serial} has no custody history")
                continue
            _, _, last_state, last_custodian = history[-1]
            if device.state != last_state or device.custodian != last_custodian:
                problems.append(
                    f"device {device.serial} is '{device.state}'/{device.custodian} but its custody says "
                    f"'{last_state}'/{last_custodian}"
                )
        for cert in s.exec(select(Certificate)).all():
            problems.extend(_check_certificate(cert, entries.get(cert.device_id, []), verifier))
        running = {j.device_id for j in s.exec(select(Job).where(Job.status == JobStatus.RUNNING)).all()}
        for device in s.exec(select(Device).where(col(Device.state).in_(IN_PROGRESS))).all():
            if device.id not in running:
                problems.append(f"device {device.serial} is '{device.state}' but no job is running for it")
        active: dict[int, int] = defaultdict(int)
        for job in s.exec(select(Job).where(col(Job.status).in_(ACTIVE_JOB_STATUSES))).all():
            active[job.slot_id] += 1
        problems.extend(f"slot id {slot_id} has {n} active jobs" for slot_id, n in active.items() if n > 1)
        holders: dict[int, list[str]] = defaultdict(list)
        for slot in s.exec(select(Slot).where(col(Slot.device_id).is_not(None))).all():
            holders[slot.device_id or 0].append(slot.code)
        problems.extend(f"device id {d} is in {len(c)} slots: {', '.join(c)}" for d, c in holders.items() if len(c) > 1)
    return problems


def _check_certificate(cert: Certificate, history: list[tuple[int, str, str, str]], verifier: object) -> list[str]:
    problems = []
    try:
        verifier(cert.envelope)  # type: ignore[operator]
    except Exception as exc:
        problems.append(f"certificate {cert.id} does not verify: {exc}")
    opened = [seq for seq, event, _, _ in history if seq == cert.erase_round_seq and event == Event.START_SANITISE]
    if not opened:
        problems.append(f"certificate {cert.id} names erase round {cert.erase_round_seq}, not a start_sanitise entry")
        return problems
    after = [(seq, event) for seq, event, _, _ in history if seq > cert.erase_round_seq]
    closing = next((event for _, event in after if event in (Event.SANITISED, Event.FAIL, Event.START_SANITISE)), None)
    if closing != Event.SANITISED:
        problems.append(
            f"certificate {cert.id} ({cert.device_serial}/{cert.medium_serial}) is from erase round "
            f"{cert.erase_round_seq}, which never completed (next: {closing or 'nothing'})"
        )
    return problems
