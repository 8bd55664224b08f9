"""A line's benches registered by a controller that was started and stopped at once (no loops
run), and jobs claimed on them by hand: the state a step or a heartbeat acts on, for tests that
drive one transaction at a time."""

from __future__ import annotations

import time

from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line import jobs, leases
from factory.line.bench_config import simulated_config
from factory.line.controller import Controller
from factory.line.models import Slot
from factory.line.slots import Attachment, attach
from imaging.engine import erase


def stopped_controller(ctx: AppContext, agent: str, layout: str = "1x1") -> Controller:
    controller = Controller(ctx, simulated_config(layout, agent=agent), erase_fn=erase)
    controller.start()
    controller.stop(drain_seconds=0)
    return controller


def claimed_job(ctx: AppContext, agent: str, run_id: str, position: int = 0, lease_seconds: float = 5) -> int:
    """An unknown device attached to the slot at ``position`` and its job claimed by ``run_id``."""
    with session_scope(ctx.engine) as s:
        slot = s.exec(select(Slot).order_by(Slot.position)).all()[position]  # type: ignore[arg-type]
        attach(s, slot, Attachment(f"UNK-{position}", "/dev/null", 1, time.time()))
        jobs.create_job(s, slot, provision_name="p", detected_epoch=None)
        [job_id] = leases.claim_jobs(
            s, agent=agent, run_id=run_id, bench_ids=[slot.bench_id], site="test-site", site_limit=8, limit=1,
            lease_seconds=lease_seconds,
        )  # fmt: skip
    return job_id
