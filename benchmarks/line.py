"""The bench line under load, and a crash soak.

    .venv/bin/python benchmarks/line.py run [--layout 6x8] [--seconds 60] [--disk-mib 16] [--database-url URL]
    .venv/bin/python benchmarks/line.py soak [--kills 100] [--layout 1x4] [--database-url URL]

``run``: 48 simulated slots (6 benches x 8) on one host, in one agent, on a fresh FACTORY_HOME
(SQLite unless --database-url). Devices arrive continuously (returned, new stock, unknown) and
are erased for real by the engine. Reports, from the job rows:

* detection-to-job-start latency (the event reaching the controller -> the job's first step
  claimed), p50/p95/max; target p95 < 1 s;
* controller overhead per device beyond the work itself: (job end - detection) minus the time
  spent inside the engine's erase and the provisioner, p50/p95/mean; target <= 200 ms.

Fairness notes. The simulated line runs inside the agent's process: its arrivals (booking each
device in at goods-in, writing its disk file) compete with the controller for the CPU, the GIL and
SQLite's write lock, which a real goods-in desk would not; that makes the numbers conservative and
is left so. (It used to rebuild each returned disk's 16 MiB of data per arrival, holding the GIL
for milliseconds each time; the data is now built once per run.) "Engine time" is the wall time
the controller spends inside the erase call, which by default runs in a worker process at lower
CPU priority: on a saturated CPU the erases get slower rather than the controller, and the engine
time printed shows it. Other work on the host shows in both; the load average is printed.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "line"))

from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade
from factory.kernel.site_keys import init_keys
from factory.line.models import Job
from factory.line.service import LineAgentProcess, SimulationOptions, audit_line, simulated_config


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


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="line-bench-"))
    try:
        ctx = _context(home, args.database_url)
        config = simulated_config(args.layout, agent="bench-agent")
        agent = LineAgentProcess(
            ctx,
            config,
            simulation=SimulationOptions(
                disk_bytes=args.disk_mib * 2**20, seed=args.seed, gap=(0.05, args.gap), dwell=(0.05, 0.2)
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
        with Session(ctx.engine) as s:
            done = s.exec(
                select(Job).where(
                    col(Job.status).in_(["succeeded", "held"]),
                    col(Job.detected_epoch).is_not(None),
                    col(Job.ended_epoch).is_not(None),
                )
            ).all()
        latency = [j.started_epoch - j.detected_epoch for j in done if j.started_epoch and j.detected_epoch]
        overhead = [(j.ended_epoch - j.detected_epoch) - j.work_seconds for j in done]  # type: ignore[operator]
        wipes = [j for j in done if "sanitise" in j.pipeline]
        wipe_overhead = [(j.ended_epoch - j.detected_epoch) - j.work_seconds for j in wipes]  # type: ignore[operator]
        wipe_work = [j.work_seconds for j in wipes]
        problems = audit_line(ctx.engine, ctx.settings)
        print(f"layout {args.layout} ({config.slot_count} slots), {args.disk_mib} MiB disks, {elapsed:.0f} s, "
              f"database {ctx.engine.dialect.name}")  # fmt: skip
        print(f"devices completed: {len(done)} ({len(wipes)} erased and certified), {len(done) / elapsed * 60:.0f}/min")
        print(f"detection -> job start: p50 {pct(latency, .5) * 1000:.0f} ms, p95 {pct(latency, .95) * 1000:.0f} ms, "
              f"max {max(latency, default=float('nan')) * 1000:.0f} ms   (target p95 < 1000 ms)")  # fmt: skip
        print(f"controller overhead per device (all): p50 {pct(overhead, .5) * 1000:.0f} ms, "
              f"p95 {pct(overhead, .95) * 1000:.0f} ms, mean {statistics.fmean(overhead) * 1000:.0f} ms")  # fmt: skip
        if wipes:
            print(f"controller overhead per erased device: p50 {pct(wipe_overhead, .5) * 1000:.0f} ms, "
                  f"p95 {pct(wipe_overhead, .95) * 1000:.0f} ms, mean {statistics.fmean(wipe_overhead) * 1000:.0f} ms"
                  f"   (target <= 200 ms; engine time per erase: p50 {pct(wipe_work, .5) * 1000:.0f} ms)")  # fmt: skip
        print(f"audit: {'clean' if not problems else problems[:5]}")
        print(f"host load average (1 min): {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
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
