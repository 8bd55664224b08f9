"""CLI start-up: ``factory --help`` and ``factory device show SERIAL`` against ``python -c pass``.

    .venv/bin/python benchmarks/cli.py [--runs 15] [--db sqlite|postgresql]

``python -c pass`` is the practical limit: an interpreter that starts and does nothing (with the
venv's site-packages, so the same path hooks load). Each command runs as a new process, the three
alternated round by round so that load drifting over the run hits them all alike; the table gives
the median and spread of each and its median excess over the limit, which is what the CLI itself
costs (the issue's target: under 0.3 s on an idle machine). ``device show`` reads a real device from
a fresh home (SQLite by default; ``--db postgresql`` needs FACTORY_DATABASE_URL pointing at an empty,
migrated PostgreSQL database).

Wall time on a busy machine is not start-up time, so the load average before and after is printed
and each command's CPU time (user + system, from the kernel's accounting of the child) beside it:
CPU time moves much less with load and is close to what the wall time is on an idle machine.
Bytecode is written and used as on an installed site (``PYTHONDONTWRITEBYTECODE`` is dropped for the
children and one untimed run of each command comes first): a checkout whose Python never caches
bytecode compiles every project module on every start.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
FACTORY = str(VENV_BIN / "factory") if (VENV_BIN / "factory").exists() else "factory"
SERIAL = "BENCH-CLI-1"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def prepare(home: Path, db: str) -> dict[str, str]:
    """A home with one device in custody, and the environment that points the CLI at it."""
    env = {**os.environ, "FACTORY_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if db == "postgresql" and not env.get("FACTORY_DATABASE_URL"):
        sys.exit("--db postgresql needs FACTORY_DATABASE_URL (an empty PostgreSQL database)")
    if db == "sqlite":
        env.pop("FACTORY_DATABASE_URL", None)
    for argv in (["db", "upgrade"], ["device", "receive", SERIAL, "--kind", "laptop", "--media", "nvme:BENCH-M1:512G"]):
        subprocess.run([FACTORY, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="rounds of the three commands (default 15)")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = prepare(Path(tmp) / "home", args.db)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "factory --help": [FACTORY, "--help"],
            f"factory device show {SERIAL}": [FACTORY, "device", "show", SERIAL],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for argv in commands.values():
            timed(argv, env)  # warm: bytecode written, files in the page cache
        load_before = os.getloadavg()
        for i in range(args.runs):
            order = list(commands.items())
            for name, argv in order[i % len(order) :] + order[: i % len(order)]:  # rotate who goes first
                times[name].append(timed(argv, env))
        load_after = os.getloadavg()
    report(times, args.runs, args.db, load_before[0], load_after[0])


def report(times: dict[str, list[tuple[float, float]]], runs: int, db: str, load0: float, load1: float) -> None:
    limit = [statistics.median(t[k] for t in times["python -c pass"]) for k in (0, 1)]
    header = f"{'command':<34} {'wall median':>11} {'min':>6} {'max':>6} {'over limit':>10}"
    print(f"{header}   {'CPU median':>10} {'over limit':>10}")
    for name, values in times.items():
        wall = [v[0] for v in values]
        cpu = statistics.median(v[1] for v in values)
        print(
            f"{name:<34} {statistics.median(wall):>11.3f} {min(wall):>6.3f} {max(wall):>6.3f} "
            f"{statistics.median(wall) - limit[0]:>10.3f}   {cpu:>10.3f} {cpu - limit[1]:>10.3f}"
        )
    print(f"seconds; {runs} alternated rounds on {db}; load average {load0:.2f} -> {load1:.2f} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
