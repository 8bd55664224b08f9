"""A provisioner that moves bytes (the network image deploy) shows its progress live on the board,
as an erase does: in the agent's own process at once, and for boards in other processes through the
heartbeat's write to the job row.

The provisioner here streams a real file into another in pieces through the request's progress
callback, as ``NetbootImageDeploy`` streams the golden image to a laptop's disk and reads it back
(that path runs end to end in tests/netboot/test_netboot_e2e.py). It pauses halfway through its
read-back until the test has looked at the board, so what is checked is a running job, not luck.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from harness.bench_line import SLOT, running_line
from harness.waiting import wait_until
from sqlmodel import select

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.bench_config import load_line_config
from factory.line.identify import Identity
from factory.line.models import Job
from factory.line.provision_step import ProvisionOutcome, ProvisionRequest
from factory.line.views import board_snapshot
from imaging.engine import PhaseReporter

DISK = 2 * 2**20
IMAGE = 8 * 2**20
PIECE = 2**20


@dataclass
class StreamingCopy:
    """Copies an image to a target in pieces (write), then reads the target back (verify)."""

    source: Path
    target: Path
    name: str = "provision (streaming copy)"
    halfway: threading.Event = field(default_factory=threading.Event)
    go_on: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        total = self.source.stat().st_size
        write = PhaseReporter(request.progress, "write", 1, 1, total)
        with self.source.open("rb") as src, self.target.open("wb") as dst:
            while piece := src.read(PIECE):
                dst.write(piece)
                write(dst.tell())
        verify = PhaseReporter(request.progress, "verify", 1, 1, total)
        with self.target.open("rb") as back:
            while back.read(PIECE):
                verify(back.tell())
                if back.tell() * 2 >= total and not self.halfway.is_set():
                    self.halfway.set()
                    self.go_on.wait(60)
        return ProvisionOutcome(True, f"copied {total} bytes and read them back")


def _job_row_showing(ctx: AppContext, job_id: int, step: str) -> Job | None:
    """The job's row once it shows ``step`` (as a board in another process reads it), else None."""
    with session_scope(ctx.engine) as s:
        job = s.exec(select(Job).where(Job.id == job_id)).one()
        s.expunge(job)
        return job if job.current_step == step else None


def _running_job_on_board(board: dict) -> dict:  # type: ignore[type-arg]
    (job,) = [slot["job"] for bench in board["benches"] for slot in bench["slots"] if slot["code"] == SLOT]
    return job  # type: ignore[no-any-return]


def test_a_provisioners_byte_progress_is_live_on_the_board(ctx: AppContext, tmp_path: Path) -> None:
    source = tmp_path / "golden.img"
    source.write_bytes(bytes(range(256)) * (IMAGE // 256))
    copy = StreamingCopy(source, tmp_path / "disk.img")
    site = tmp_path / "site.toml"  # a real (not simulated) line whose one dock is the simulated port
    site.write_text(
        'agent = "progress-agent"\nerase_processes = 0\nheartbeat_seconds = 0.2\n'
        '[[bench]]\nname = "bench-1"\nslots = [{position = 1}]\n'
        '[port_map]\nudev = [{id_path = "sim-bench-1-port-1", slot = "bench-1/slot-1"}]\n'
    )
    config = load_line_config(site)
    for line in running_line(ctx, config, copy, disk_bytes=DISK, seed=3):
        line.sim.arrive(SLOT, Identity.NEW_STOCK, role="response")
        try:
            assert copy.halfway.wait(60), "the provisioner never reached its read-back"
            with session_scope(ctx.engine) as s:
                live = _running_job_on_board(board_snapshot(s, live=line.controller.bus.live_progress()))
            assert live["current_step"] == f"{copy.name} (verify)"
            assert 0 < live["progress"] < 1
            # Another process's board reads the job row, which the heartbeat keeps up to date.
            row = wait_until(
                partial(_job_row_showing, ctx, live["id"], f"{copy.name} (verify)"),
                timeout=30,
                message="the heartbeat writing the provision step's progress",
            )
            assert 0 < row.progress < 1
        finally:
            copy.go_on.set()
        job = line.wait_job(timeout=60)
        assert job.status == "succeeded", job.reason
        assert job.progress == 1.0
    assert (tmp_path / "disk.img").read_bytes() == source.read_bytes()
