"""The bench line under load, and a crash soak.

    .venv/bin/python benchmarks/line.py run [--layout 6x8] [--seconds 60] [--disk-mib 16] [--database-url URL]
    .venv/bin/python benchmarks/line.py soak [--kills 100] [--layout 1x4] [--database-url URL]

``run``: 48 simulated slots (6 benches x 8) on one host, in one agent, on a fresh FACTORY_HOME
(SQLite unless --database-url). Devices arrive continuously (returned, new stock, unknown) and
are erased for real by the engine. Reports, from the job rows:

* detection-to-job-start latency (the event reaching the controller -> the job's first step
  claimed), p50/p95/max; target p95 < 1 s;
* controller overhead per device, counted from the controller's view: (job end - detection)
  minus the time the work itself takes. "The work itself" is the reference: the engine erasing
  one disk of the same size with the line's level and verify mode, alone, in this process (no
  worker hand-off), timed ``--reference-runs`` times before the line starts and as many after it
  stops, under whatever else loads the host; its median is the practical limit per medium. So
  detection to start, step hand-offs, the certify and custody commits, and any time an erase
  spends waiting for a CPU or the worker pipe are all overhead. The simulated provisioner is a
  no-op and counts nothing as work. Every finished job counts, whatever its outcome (succeeded,
  held, failed, cancelled, aborted); a job's work is never counted above what it really spent
  (a stopped erase counts what it ran). p50/p95/mean; target p95 <= 100 ms at 48 slots.
  The engine-wall figure (job end - detection - wall time inside the erase call, which hides CPU
  waiting inside the erase) is printed beside it for comparison with older notes.

Fairness notes. The simulated line runs inside the agent's process: its arrivals (booking each
device in at goods-in, writing its disk file) compete with the controller for the CPU, the GIL and
SQLite's write lock, which a real goods-in desk would not; that makes the numbers conservative and
is left so. Other work on the host shows in both the line and the reference; the load average is
printed beside the figures.

``soak``: kill -9 the agent process at random points ``--kills`` times, auditing the evidence
after every kill (ledger, states vs custody, no certificate for an incomplete wipe, erased disks
really zero) and once more after a clean final run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "line"))

from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade
from factory.kernel.site_keys import init_keys
from factory.line.bench_config import LineConfig
from factory.line.models import FINISHED_JOB_STATUSES, Job
from factory.line.service import LineAgentProcess, SimulationOptions, audit_line, simulated_config
from factory.line.simulate import DATA_PATTERN
from imaging.engine import erase
from imaging.result import Level


def _context(home: Path, url: str | None) -> AppContext:
    url = url or f"sqlite:///{home / 'factory.db'}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    ctx = AppContext(Settings(home=home, database_url=url, site_name="bench-site"))
    init_keys(ctx.settings)
    upgrade(url)
    return ctx


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def reference_erase(home: Path, config: LineConfig, disk_bytes: int, runs: int) -> list[float]:
    """Seconds the engine alone takes to erase one simulated disk (filled like a returned one)."""
    disk = home / "reference-disk.img"
    times = []
    for _ in range(runs):
        disk.write_bytes(DATA_PATTERN * (disk_bytes // len(DATA_PATTERN)) + bytes(disk_bytes % len(DATA_PATTERN)))
        start = time.perf_counter()
        result = erase(str(disk), level=Level.CLEAR, verify=config.verify_mode)
        times.append(time.perf_counter() - start)
        if not result.ok:
            raise RuntimeError(f"reference erase failed: {result.failure_reason}")
    disk.unlink()
    return times


def _ms(values: list[float]) -> str:
    if not values:
        return "no jobs"
    return (f"p50 {pct(values, .5) * 1000:.0f} ms, p95 {pct(values, .95) * 1000:.0f} ms, "
            f"mean {statistics.fmean(values) * 1000:.0f} ms, n={len(values)}")  # fmt: skip


def _report(jobs: list[Job], ref_s: float) -> None:
    latency = [j.started_epoch - j.detected_epoch for j in jobs if j.started_epoch and j.detected_epoch]
    erased = [j for j in jobs if "sanitise" in j.pipeline]
    outcomes = Counter(j.status for j in jobs)

    def overhead(j: Job) -> float:
        limit = ref_s if "sanitise" in j.pipeline else 0.0
        return (j.ended_epoch - j.detected_epoch) - min(j.work_seconds, limit)  # type: ignore[operator]

    print(f"finished jobs: {len(jobs)} ({dict(outcomes)}), {len(erased)} with an erase")
    print(f"detection -> job start: {_ms(latency)}   (target p95 < 1000 ms)")
    print(f"controller overhead per device, all jobs: {_ms([overhead(j) for j in jobs])}")
    print(f"controller overhead per erased device: {_ms([overhead(j) for j in erased])}   (target p95 <= 100 ms)")
    wall = [(j.ended_epoch - j.detected_epoch) - j.work_seconds for j in erased]  # type: ignore[operator]
    print(f"  for comparison, minus the wall time inside the erase call: {_ms(wall)}")
    print(f"  wall time inside the erase call: {_ms([j.work_seconds for j in erased])}")


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="line-bench-"))
    try:
        ctx = _context(home, args.database_url)
        config = simulated_config(args.layout, agent="bench-agent")
        disk_bytes = args.disk_mib * 2**20
        load_ref = os.getloadavg()[0]
        ref = reference_erase(home, config, disk_bytes, args.reference_runs)
        agent = LineAgentProcess(
            ctx,
            config,
            simulation=SimulationOptions(
                disk_bytes=disk_bytes, seed=args.seed, gap=(0.05, args.gap), dwell=(0.05, 0.2)
            ),
        )
        load_before = os.getloadavg()[0]
        agent.start()
        t0 = time.monotonic()
        try:
            time.sleep(args.seconds)
        finally:
            agent.stop(drain_seconds=60)
        elapsed = time.monotonic() - t0
        load_after = os.getloadavg()[0]
        ref += reference_erase(home, config, disk_bytes, args.reference_runs)
        with Session(ctx.engine) as s:
            jobs = list(s.exec(select(Job).where(
                col(Job.status).in_(sorted(FINISHED_JOB_STATUSES)),
                col(Job.detected_epoch).is_not(None),
                col(Job.ended_epoch).is_not(None),
            )).all())  # fmt: skip
            unfinished = len(s.exec(select(Job).where(col(Job.status).not_in(sorted(FINISHED_JOB_STATUSES)))).all())
        problems = audit_line(ctx.engine, ctx.settings)
        print(f"layout {args.layout} ({config.slot_count} slots), {args.disk_mib} MiB disks, {elapsed:.0f} s, "
              f"database {ctx.engine.dialect.name}, verify {config.verify_mode.value}")  # fmt: skip
        lo, mid, hi = (x * 1000 for x in (min(ref), statistics.median(ref), max(ref)))
        print(f"reference: the engine alone erases one disk in median {mid:.0f} ms "
              f"(min {lo:.0f}, max {hi:.0f}, {len(ref)} runs; load {load_ref:.1f})")  # fmt: skip
        print(f"{len(jobs) / elapsed * 60:.0f} devices/min; {unfinished} jobs unfinished after the drain")
        _report(jobs, statistics.median(ref))
        print(f"audit: {'clean' if not problems else problems[:5]}")
        print(f"host load average (1 min): {load_before:.1f} at start, {load_after:.1f} at end, "
              f"{len(os.sched_getaffinity(0))} CPUs")  # fmt: skip
        return 0 if not problems else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


def soak(args: argparse.Namespace) -> int:
    from line_support import erased_disk_problems, kill9, start_agent, wait_started

    home = Path(tempfile.mkdtemp(prefix="line-soak-"))
    rng = random.Random(args.seed)
    common = ("--simulate", args.layout, "--agent", "soak", "--disk-mib", str(args.disk_mib), "--gap", "0.4",
              "--dwell", "0.3", "--pull-rate", "0.1")  # fmt: skip
    try:
        ctx = _context(home, args.database_url)
        url = ctx.settings.database_url
        for n in range(args.kills):
            proc = start_agent(home, url, *common, "--seed", str(n))
            try:
                wait_started(proc)
                time.sleep(rng.uniform(0.05, 2.0))
            finally:
                kill9(proc)
            problems = audit_line(ctx.engine, ctx.settings)
            with Session(ctx.engine) as s:
                problems += erased_disk_problems(s, home)
            if problems:
                print(f"kill {n + 1}: INCONSISTENT: {problems}")
                return 1
            print(f"kill {n + 1}/{args.kills}: consistent", flush=True)
        proc = start_agent(home, url, *common, "--duration", "3", "--max-devices", "0")
        wait_started(proc)
        proc.wait(timeout=120)
        kill9(proc)
        problems = audit_line(ctx.engine, ctx.settings)
        with Session(ctx.engine) as s:
            jobs = s.exec(select(Job)).all()
        interrupted = sum(j.status == "interrupted" for j in jobs)
        print(f"{args.kills} kills, {len(jobs)} jobs, {interrupted} interrupted by a kill; final audit: "
              f"{'clean' if not problems else problems}")  # fmt: skip
        return 0 if not problems else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--layout", default="6x8")
    r.add_argument("--seconds", type=float, default=60.0)
    r.add_argument("--disk-mib", type=int, default=16)
    r.add_argument("--gap", type=float, default=1.0, help="longest pause before a slot is refilled (s)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--reference-runs", type=int, default=5, help="engine-alone erases before and after the line")
    r.add_argument("--database-url", default=os.environ.get("LINE_BENCH_DATABASE_URL"))
    s = sub.add_parser("soak")
    s.add_argument("--kills", type=int, default=100)
    s.add_argument("--layout", default="1x4")
    s.add_argument("--disk-mib", type=int, default=24, help="big enough that most kills land mid-wipe")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--database-url", default=os.environ.get("LINE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    return run(args) if args.cmd == "run" else soak(args)


if __name__ == "__main__":
    sys.exit(main())
