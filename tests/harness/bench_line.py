"""A controller in-process on the simulated line's disks and udev events, for the line's tests:
the line's config (simulated or from a site file) and its provisioner are the test's to choose."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlmodel import col, select

from factory.intake.views import get_device
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.models.custody_entry import CustodyEntry
from factory.line.bench_config import LineConfig
from factory.line.controller import Controller
from factory.line.models import Job, Slot
from factory.line.provision_step import Provisioner
from factory.line.simulate import SimulatedLine
from imaging.engine import Progress, erase

SLOT = "bench-1/slot-1"


@dataclass
class Line:
    ctx: AppContext
    controller: Controller
    sim: SimulatedLine

    def job(self, slot: str = SLOT) -> Job:
        """The slot's latest job."""
        with session_scope(self.ctx.engine) as s:
            row = s.exec(
                select(Job)
                .join(Slot, col(Slot.id) == Job.slot_id)
                .where(Slot.code == slot)
                .order_by(col(Job.id).desc())
            ).first()
            assert row is not None, f"no job for {slot}"
            return row

    def wait_job(self, slot: str = SLOT, timeout: float = 30.0) -> Job:
        assert self.controller.wait_idle(timeout), "line did not go idle"
        return self.job(slot)

    def history(self, serial: str) -> list[str]:
        """The device's custody events, oldest first."""
        with session_scope(self.ctx.engine) as s:
            device = get_device(s, serial)
            rows = s.exec(
                select(CustodyEntry).where(CustodyEntry.device_id == device.id).order_by(col(CustodyEntry.seq))
            )
            return [e.event for e in rows.all()]


def running_line(
    ctx: AppContext,
    config: LineConfig,
    provisioner: Provisioner | None,
    *,
    disk_bytes: int,
    seed: int,
    observers: list[Callable[[int, Progress], None]] | None = None,
) -> Iterator[Line]:
    """Start a controller on ``config`` with the simulated slots as its hardware; stop it after."""
    holder: dict[str, SimulatedLine] = {}
    # A blocking observer holds the engine mid-pass only when the engine runs on the job's own
    # thread; otherwise the erase runs on in a worker process (the agent's default).
    controller = Controller(
        ctx,
        config,
        present=lambda: holder["sim"].present(),
        observers=observers,
        erase_fn=erase if observers else None,
        provisioner=provisioner,
    )
    holder["sim"] = sim = SimulatedLine(ctx, config, controller.submit, disk_bytes=disk_bytes, auto=False, seed=seed)
    controller.start()
    try:
        yield Line(ctx, controller, sim)
    finally:
        controller.stop(drain_seconds=5)
