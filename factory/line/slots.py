"""Benches and slots: registering what an agent drives, and one device per slot.

Occupancy is what the port reports (serial, device node, size), recorded under a fresh
attachment id per insertion. A second device in an occupied slot is refused with an error the
board shows until one of the two is taken out.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Select, bindparam
from sqlmodel import Session, select

from factory.kernel.clock import utc_now
from factory.kernel.db.shared_statements import built_once
from factory.kernel.errors import Conflict, NotFound
from factory.line.bench_config import LineConfig
from factory.line.models import Bench, LineAgent, Slot
from factory.line.tablet_slots import restarting_for_reset


def locked(session: Session, stmt: Select) -> Select:
    """Row-lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers).

    FOR NO KEY UPDATE, not FOR UPDATE: it excludes every other locker and writer of the row as
    before, but not the FOR KEY SHARE that PostgreSQL's foreign-key checks take on the rows a row
    names. A runner updating its job a second time in one transaction has the job's keys checked
    (slot, bench, device); a slot held FOR UPDATE by the controller, waiting for that job, made the
    two deadlock (tests/line/test_row_locks.py). No line transaction changes a locked row's key."""
    return locked_on(stmt, postgres=session.get_bind().dialect.name == "postgresql")


def locked_on(stmt: Select, *, postgres: bool) -> Select:
    """``locked`` for a statement built once per database kind, before any session exists."""
    return (stmt.with_for_update(key_share=True) if postgres else stmt).execution_options(populate_existing=True)


def lock_slot(session: Session, code: str) -> Slot:
    postgres = session.get_bind().dialect.name == "postgresql"
    slot = session.exec(_slot_by_code(postgres), params={"slot_code": code}).first()  # type: ignore[call-overload]
    if slot is None:
        raise NotFound(f"no slot {code}")
    return slot


@built_once
def _slot_by_code(postgres: bool) -> Select:
    """Built once (every event locks its slot): a fresh statement's construction and cache key cost
    more CPU than its round trip, on the interpreter lock every runner shares."""
    return locked_on(select(Slot).where(Slot.code == bindparam("slot_code")), postgres=postgres)


def register_benches(session: Session, config: LineConfig, *, site: str, run_id: str, now: float) -> list[Bench]:
    """Create or update the agent's benches and slots and take them over.

    A bench driven by another agent whose lease is still valid is refused: two controllers on
    one bench would both act on its slots.
    """
    taken: list[Bench] = []
    for spec in config.benches:
        bench = session.exec(locked(session, select(Bench).where(Bench.name == spec.name))).first()  # type: ignore[call-overload]
        if bench is None:
            bench = Bench(name=spec.name, site=site, max_jobs=spec.max_jobs, created_at=utc_now())
        elif bench.agent not in (None, config.agent):
            owner = session.get(LineAgent, bench.agent)
            if owner is not None and owner.lease_expires_at > now:
                raise Conflict(
                    f"{spec.name} is driven by agent '{bench.agent}' on {owner.host or 'another host'} "
                    f"(lease valid for {owner.lease_expires_at - now:.1f} s more)"
                )
        bench.agent, bench.site, bench.max_jobs = config.agent, site, spec.max_jobs
        session.add(bench)
        session.flush()
        existing = {s.position: s for s in session.exec(select(Slot).where(Slot.bench_id == bench.id)).all()}
        for s in spec.slots:
            slot = existing.get(s.position) or Slot(
                code=s.code, bench_id=bench.id or 0, position=s.position, updated_at=utc_now()
            )
            slot.port_kind, slot.default_kind = s.port_kind, s.default_kind
            session.add(slot)
        taken.append(bench)
    session.flush()
    return taken


class AttachResult(StrEnum):
    ATTACHED = "attached"  # a new insertion
    SAME = "same"  # the device already recorded in the slot was seen again (re-enumeration)
    CONFLICT = "conflict"  # a second device in an occupied slot


@dataclass(frozen=True)
class Attachment:
    serial: str | None
    node: str | None
    size: int | None
    detected_at: float


def attach(session: Session, slot: Slot, seen: Attachment) -> AttachResult:
    now = utc_now()
    if slot.attachment_id is not None:
        if slot.attached_serial == seen.serial:
            slot.attached_node, slot.attached_size, slot.updated_at = seen.node, seen.size, now
            session.add(slot)
            return AttachResult.SAME
        slot.error = (
            f"second device {seen.serial or '(no serial)'} attached to occupied slot {slot.code} "
            f"(holds {slot.attached_serial or '(no serial)'}): remove it; re-insert it when the slot is free"
        )
        slot.updated_at = now
        session.add(slot)
        return AttachResult.CONFLICT
    slot.attachment_id = str(uuid.uuid4())
    slot.attached_serial, slot.attached_node, slot.attached_size = seen.serial, seen.node, seen.size
    slot.attached_at, slot.attached_epoch = now, seen.detected_at
    slot.device_id, slot.error, slot.updated_at = None, None, now
    session.add(slot)
    return AttachResult.ATTACHED


def detach(session: Session, slot: Slot, serial: str | None) -> bool:
    """Record a removal; False if it was the refused second device or a tablet restarting for its
    reset (the occupant stays)."""
    now = utc_now()
    if slot.attachment_id is not None and serial is not None and slot.attached_serial not in (None, serial):
        slot.error, slot.updated_at = None, now
        session.add(slot)
        return False
    if restarting_for_reset(session, slot):  # the tablet's platform reset restarts it: it comes back
        return False
    free(session, slot)
    return True


def free(session: Session, slot: Slot) -> None:
    slot.attachment_id = slot.attached_serial = slot.attached_node = slot.attached_at = None
    slot.attached_size = slot.device_id = None
    slot.attached_epoch = slot.attached_mac = slot.reboot_until = slot.link_down_at = None
    slot.error, slot.updated_at = None, utc_now()
    session.add(slot)


def epoch() -> float:
    return time.time()
