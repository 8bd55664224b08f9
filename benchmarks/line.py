"""The bench line under load, and a crash soak.

    .venv/bin/python benchmarks/line.py run [--layout 6x8] [--seconds 60] [--disk-mib 16] [--tablets]
        [--db sqlite|postgresql | --database-url URL]
    .venv/bin/python benchmarks/line.py soak [--kills 100] [--layout 1x4] [--db ... | --database-url URL]

The database: SQLite in the run's fresh FACTORY_HOME (the default); ``--db postgresql``, a
database made for the run on ``FACTORY_BENCH_PG``'s server and dropped after; or ``--database-url``,
which must be empty (refused otherwise: a run on another run's devices and keys reports on both,
and its certificates fail the audit) and is kept.

``run``: 48 simulated slots (6 benches x 8) on one host, in one agent, on a fresh FACTORY_HOME
(SQLite unless --database-url). Devices arrive continuously (returned, new stock, unknown) and
are erased for real by the engine. Reports, from the job rows:

* detection-to-job-start latency (the event reaching the controller -> the job's first step
  claimed), p50/p95/max; target p95 < 1 s;
* controller overhead per device, counted from the controller's view: from detection to the
  commit of the job's last transaction (the certify and custody commits included: the bus hears of
  the end after that commit, ``TimedBus``), minus the time the work itself takes. "The work
  itself" is the practical limit: the engine alone doing the same erases at the same concurrency.
  After the line stops, every erase it ran is replayed on a disk filled the same way, started at
  the same offset from the first, in as many worker processes of the same niceness, with no
  controller, database or arrivals (``replay_erases``); device i's work is the smaller of its own
  erase call and its replayed erase. So detection to start, step hand-offs, the certify and custody
  commits, and any time an erase waits for a CPU the controller took are overhead; waiting behind
  the other 47 erases, which the engine alone meets too, is not. The figure against one disk
  erased with nothing else running (median of ``--reference-runs`` before and after the line) is
  printed beside it: that one counts waiting behind the other erases as overhead as well. Every
  finished job counts, whatever its outcome (succeeded, held, failed, cancelled, aborted); a job
  that never erased counts all its time. p50/p95/p99/mean; target p95 <= 100 ms at 48 slots.

  How the erase's share is attributed. Pairing device i's line erase with its own replayed erase
  charges device i with the noise of that pairing: 48 erases sharing 2 CPUs finish in an order
  neither run can reproduce, so one run's erase of a device is seconds longer than the other's
  either way, and taking the smaller of the two keeps only the cases where the line's was longer.
  The headline figure therefore charges each erased device with its own time outside the erase
  call (detection to start, hand-offs, the certify and custody commits, all measured per device)
  plus the line's *mean* excess of erase-call time over the replay (zero when the line's erases
  were on average no slower): the CPU the controller takes from the erases, shared by them all.
  The per-device pairing figure is printed beside it, with its noise.
* the controller's CPU per finished job: CPU seconds of the agent's process (controller, job
  runners, bus; the simulated arrivals too, which a real line would not carry; not the erase
  workers, which are child processes) over the line's run, divided by the jobs finished. Unlike
  the wall-clock figures it hardly moves with the host's load.
  Tablets are left out unless ``--tablets``: their stand-in reset has no engine to compare with.

Offered load (``--gap``). Each slot is refilled after a pause of up to ``--gap`` seconds. At the
default (1 s) the 48 slots offer more work than 2 CPUs carry: each 16 MiB erase costs the engine
about 0.25-0.34 CPU-s (its worker processes' own CPU time, the same in the line and in the replay),
so ~5 erases/s already take ~1.5 CPUs, and the controller's ~45-70 ms of CPU per job takes the
rest. The line is then a saturated queue: every erase waits seconds behind the others and the
figure is that queue, not the controller's hand-offs. The replay, run without the controller,
sits just under saturation and is itself bistable (the same erases replayed took 0.65 s in one
run and 9 s in another). ``--gap 20`` offers ~270-290 devices/min, which the machine carries; the
controller's own overhead is read there. Both are reported.

Measured figures, run by run, are in docs/benchmarks.md ("Line"). The latest (7 Dec 2026, next
session, alternated with the code before, 9 pairs on PostgreSQL): outside the erase call p95 median
160 ms (142-343) against 233 (170-350) before; controller CPU median 57 ms per job against 68;
headline p95 183-1094 ms (target p95 <= 100 ms not met on PostgreSQL). SQLite, 2 pairs at load 2.4-4:
outside the erase call p95 112 / 92 ms against 125 / 109; headline 169 / 206 ms (met in all eight
runs of the day before, at load 1.4-2.6). Later that day, on a host that does the same work in half
the CPU (24-29 ms per job), the same code met the target on both: PostgreSQL headline p95 46-70 ms
in 6 runs, SQLite 25-33 ms in 3 (load 0.6-1.8). Which host a run lands on moves it more than any
change since; compare alternated runs on one host only. On a fourth host (38-44 ms of CPU per job),
2 runs each: SQLite headline p95 146 and 47 ms (outside the erase call 59 and 47), PostgreSQL 118
and 96 ms (outside 103 and 96), load 1.3-2.3.

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
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # harness/
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair import NotEmpty, add_database_options, cpus, run_database
from sqlmodel import Session, col, select

from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.migrate import upgrade
from factory.kernel.site_keys import init_keys
from factory.line.bench_config import LineConfig
from factory.line.bus import LineBus
from factory.line.erase_workers import EraseWorkers
from factory.line.models import FINISHED_JOB_STATUSES, Job
from factory.line.pipeline_rules import Step
from factory.line.service import LineAgentProcess, SimulationOptions, audit_line, simulated_config
from factory.line.simulate import DATA_PATTERN
from imaging.engine import erase


def _context(home: Path, url: str) -> AppContext:
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


def _returned_disk(path: Path, disk_bytes: int) -> None:
    """A disk filled like a returned device's (the only devices the line erases)."""
    path.write_bytes(DATA_PATTERN * (disk_bytes // len(DATA_PATTERN)) + bytes(disk_bytes % len(DATA_PATTERN)))


def reference_erase(home: Path, config: LineConfig, disk_bytes: int, runs: int) -> list[float]:
    """Seconds the engine alone takes to erase one disk with nothing else erasing (for comparison)."""
    disk = home / "reference-disk.img"
    times = []
    for _ in range(runs):
        _returned_disk(disk, disk_bytes)
        start = time.perf_counter()
        result = erase(str(disk), level=config.erase_level, verify=config.verify_mode)
        times.append(time.perf_counter() - start)
        if not result.ok:
            raise RuntimeError(f"reference erase failed: {result.failure_reason}")
    disk.unlink()
    return times


def replay_erases(home: Path, config: LineConfig, disk_bytes: int, starts: list[float]) -> list[float]:
    """The engine alone at the line's own concurrency: every erase the line ran, again, on a disk
    filled the same way, started at the same offset from the first, in as many worker processes
    (same niceness, same pipe) as the line had, with no controller, database or arrivals; the
    wall time of each, in the order of ``starts``."""
    disks = [home / f"replay-{n}.img" for n in range(len(starts))]
    for disk in disks:
        _returned_disk(disk, disk_bytes)
    workers = EraseWorkers(config.erase_processes)
    workers.start()
    times = [0.0] * len(starts)
    first, t0 = min(starts, default=0.0), time.monotonic()

    def one(n: int) -> None:
        time.sleep(max(0.0, (starts[n] - first) - (time.monotonic() - t0)))
        began = time.perf_counter()
        result = workers(str(disks[n]), level=config.erase_level, verify=config.verify_mode)
        times[n] = time.perf_counter() - began
        if not result.ok:
            raise RuntimeError(f"replayed erase failed: {result.failure_reason}")

    try:
        threads = [threading.Thread(target=one, args=(n,)) for n in range(len(starts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        workers.close()
        for disk in disks:
            disk.unlink(missing_ok=True)
    return times


class TimedBus(LineBus):
    """The agent's bus, noting when each job's end committed and when its erase step began.

    A runner announces its job's end after its last commit, and the controller a job held as it
    was created; the job row's ``ended_epoch`` is stamped inside that last transaction, before the
    certify and custody commits, so it would leave them out."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: dict[int, float] = {}
        self.erase_began: dict[int, float] = {}  # monotonic, for the replay's offsets

    def publish(self, kind: str, **data: Any) -> None:
        super().publish(kind, **data)
        if kind == "job" and "step" not in data:
            self.ended[int(data["job"])] = time.time()
        elif kind == "job" and data["step"] == Step.SANITISE.value:
            self.erase_began[int(data["job"])] = time.monotonic()


def _ms(values: list[float]) -> str:
    if not values:
        return "no jobs"
    p50, p95, p99 = (pct(values, q) * 1000 for q in (0.5, 0.95, 0.99))
    mean = statistics.fmean(values) * 1000
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, mean {mean:.0f} ms, n={len(values)}"


def _report(jobs: list[Job], bus: TimedBus, replayed: dict[int, float], alone: float) -> None:
    """Overheads from detection to the job's last commit, minus the work the engine alone needs."""
    latency = [j.started_epoch - j.detected_epoch for j in jobs if j.started_epoch and j.detected_epoch]
    erased = [j for j in jobs if j.id in replayed]
    outcomes = Counter(j.status for j in jobs)

    def span(j: Job) -> float:
        return max(bus.ended.get(j.id or 0, 0.0), j.ended_epoch or 0.0) - (j.detected_epoch or 0.0)

    def overhead(j: Job, limit: dict[int, float] | float) -> float:
        engine = limit.get(j.id or 0, 0.0) if isinstance(limit, dict) else (limit if j.id in replayed else 0.0)
        return span(j) - min(j.work_seconds or 0.0, engine)

    # The CPU the controller took from the erases, shared evenly (see the module docstring).
    in_line = [j.work_seconds or 0.0 for j in erased]
    excess = max(0.0, statistics.fmean(in_line) - statistics.fmean(replayed.values())) if erased else 0.0

    def shared(j: Job) -> float:
        return span(j) - (j.work_seconds or 0.0) + (excess if j.id in replayed else 0.0)

    print(f"finished jobs: {len(jobs)} ({dict(outcomes)}), {len(erased)} with an erase")
    print(f"detection -> job start: {_ms(latency)}   (target p95 < 1000 ms)")
    print(f"controller overhead per device, all jobs: {_ms([shared(j) for j in jobs])}")
    print(f"controller overhead per erased device: {_ms([shared(j) for j in erased])}   "
          f"(target p95 <= 100 ms; with the erases' mean excess over the replay, {excess * 1000:.0f} ms)")  # fmt: skip
    print(f"  paired per device with its own replayed erase (the pairing's noise included): "
          f"{_ms([overhead(j, replayed) for j in erased])}")  # fmt: skip
    print(f"  against the engine alone erasing one disk at a time instead (waiting behind the other erases "
          f"counted as overhead too): {_ms([overhead(j, alone) for j in erased])}")  # fmt: skip
    print(f"  time outside the erase call: {_ms([span(j) - (j.work_seconds or 0.0) for j in erased])}")
    print(f"  wall time inside the erase call: {_ms([j.work_seconds or 0.0 for j in erased])}")
    print(f"  the engine alone, same erases at the same times: {_ms(list(replayed.values()))}")


def _finished_jobs(ctx: AppContext) -> tuple[list[Job], Counter[str]]:
    with Session(ctx.engine) as s:
        jobs = list(s.exec(select(Job).where(
            col(Job.status).in_(sorted(FINISHED_JOB_STATUSES)),
            col(Job.detected_epoch).is_not(None),
            col(Job.ended_epoch).is_not(None),
        )).all())  # fmt: skip
        left = s.exec(select(Job.status).where(col(Job.status).not_in(sorted(FINISHED_JOB_STATUSES)))).all()
    return jobs, Counter(left)


def _run_line(ctx: AppContext, config: LineConfig, args: argparse.Namespace, bus: TimedBus) -> tuple[float, float]:
    """Run the line; return its wall seconds and the CPU seconds of this process meanwhile."""
    options = SimulationOptions(
        disk_bytes=args.disk_mib * 2**20, seed=args.seed, gap=(0.05, args.gap), dwell=(0.05, 0.2), tablets=args.tablets
    )
    agent = LineAgentProcess(ctx, config, simulation=options, bus=bus)
    cpu0 = time.process_time()
    agent.start()
    t0 = time.monotonic()
    try:
        time.sleep(args.seconds)
    finally:
        agent.stop(drain_seconds=60)
    return time.monotonic() - t0, time.process_time() - cpu0


def run(args: argparse.Namespace) -> int:
    home = Path(tempfile.mkdtemp(prefix="line-bench-"))
    try:
        with run_database(home, args, "df_bench_line") as url:
            ctx = _context(home, url)
            try:
                return _run_on(home, ctx, args)
            finally:
                ctx.engine.dispose()  # before a database made for the run is dropped
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run_on(home: Path, ctx: AppContext, args: argparse.Namespace) -> int:
    config = simulated_config(args.layout, agent="bench-agent")
    disk_bytes = args.disk_mib * 2**20
    load = [os.getloadavg()[0]]
    alone = reference_erase(home, config, disk_bytes, args.reference_runs)
    bus = TimedBus()
    load.append(os.getloadavg()[0])
    elapsed, cpu = _run_line(ctx, config, args, bus)
    load.append(os.getloadavg()[0])
    jobs, unfinished = _finished_jobs(ctx)
    order = sorted((began, job_id) for job_id, began in bus.erase_began.items() if job_id in {j.id for j in jobs})
    replay = replay_erases(home, config, disk_bytes, [began for began, _ in order])
    load.append(os.getloadavg()[0])
    alone += reference_erase(home, config, disk_bytes, args.reference_runs)
    problems = audit_line(ctx.engine, ctx.settings)
    print(f"layout {args.layout} ({config.slot_count} slots), {args.disk_mib} MiB disks, {elapsed:.0f} s, "
          f"database {ctx.engine.dialect.name}, verify {config.verify_mode.value}, "
          f"{config.erase_processes} erase processes, tablets {'on' if args.tablets else 'off'}")  # fmt: skip
    lo, mid, hi = (x * 1000 for x in (min(alone), statistics.median(alone), max(alone)))
    print(f"the engine alone erases one disk in median {mid:.0f} ms (min {lo:.0f}, max {hi:.0f}, "
          f"{len(alone)} runs, before and after)")  # fmt: skip
    # A job still queued was attached as the line stopped: an agent stopping claims nothing
    # more, and its next start does. A job still running after the drain would be a fault.
    print(f"{len(jobs) / elapsed * 60:.0f} devices/min; after the drain {unfinished['running']} jobs running, "
          f"{unfinished['queued']} queued (attached as the line stopped; its next start claims them)")  # fmt: skip
    print(f"the controller's CPU per finished job: {cpu / max(1, len(jobs)) * 1000:.1f} ms "
          f"({cpu:.1f} CPU-s over {len(jobs)} jobs, simulated arrivals included)")  # fmt: skip
    _report(jobs, bus, {job_id: s for (_, job_id), s in zip(order, replay, strict=True)}, statistics.median(alone))
    print(f"audit: {'clean' if not problems else problems[:5]}")
    print(f"host load average (1 min): {load[0]:.1f} before the engine alone, {load[1]:.1f} at the line's "
          f"start, {load[2]:.1f} at its end, {load[3]:.1f} after the replay; {cpus()} CPUs")  # fmt: skip
    return 0 if not problems else 1


def soak(args: argparse.Namespace) -> int:
    from harness.line_agent import erased_disk_problems, kill9, start_agent, wait_started

    home = Path(tempfile.mkdtemp(prefix="line-soak-"))
    rng = random.Random(args.seed)
    common = ("--simulate", args.layout, "--agent", "soak", "--disk-mib", str(args.disk_mib), "--gap", "0.4",
              "--dwell", "0.3", "--pull-rate", "0.1")  # fmt: skip
    try:
        with run_database(home, args, "df_bench_line") as url:
            ctx = _context(home, url)
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
    r.add_argument("--reference-runs", type=int, default=5, help="one-disk engine-alone erases before and after")
    r.add_argument("--tablets", action="store_true", help="tablets too (their stand-in reset has no engine reference)")
    add_database_options(r, "LINE_BENCH_DATABASE_URL")
    s = sub.add_parser("soak")
    s.add_argument("--kills", type=int, default=100)
    s.add_argument("--layout", default="1x4")
    s.add_argument("--disk-mib", type=int, default=24, help="big enough that most kills land mid-wipe")
    s.add_argument("--seed", type=int, default=1)
    add_database_options(s, "LINE_BENCH_DATABASE_URL")
    args = parser.parse_args()
    try:
        return run(args) if args.cmd == "run" else soak(args)
    except NotEmpty as exc:
        print(f"line.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
