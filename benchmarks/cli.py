"""CLI start-up: ``factory --help`` and ``factory device show SERIAL`` against ``python -c pass``.

    .venv/bin/python benchmarks/cli.py [--runs 15] [--db sqlite|postgresql]

``python -c pass`` is the practical limit: an interpreter that starts and does nothing (with the
venv's site-packages, so the same path hooks load). Each command runs as a new process, the three
alternated round by round so that load drifting over the run hits them all alike; the table gives
the median and spread of each and its median excess over the limit, which is what the CLI itself
costs (the issue's target: under 0.3 s on an idle machine). ``device show`` reads a real device from
a fresh home (SQLite by default; ``--db postgresql`` needs FACTORY_DATABASE_URL pointing at an empty,
migrated PostgreSQL database). The load average before and after is printed: figures taken on a
busy machine are not start-up figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
FACTORY = str(VENV_BIN / "factory") if (VENV_BIN / "factory").exists() else "factory"
SERIAL = "BENCH-CLI-1"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return elapsed


def prepare(home: Path, db: str) -> dict[str, str]:
    """A home with one device in custody, and the environment that points the CLI at it."""
    env = {**os.environ, "FACTORY_HOME": str(home)}
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
        times: dict[str, list[float]] = {name: [] for name in commands}
        load_before = os.getloadavg()
        for i in range(args.runs):
            order = list(commands.items())
            for name, argv in order[i % len(order) :] + order[: i % len(order)]:  # rotate who goes first
                times[name].append(timed(argv, env))
        load_after = os.getloadavg()
    limit = statistics.median(times["python -c pass"])
    print(f"{'command':<34} {'median s':>9} {'min s':>7} {'max s':>7} {'over limit s':>13}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<34} {median:>9.3f} {min(values):>7.3f} {max(values):>7.3f} {median - limit:>13.3f}")
    print(
        f"{args.runs} alternated rounds on {args.db}; load average {load_before[0]:.2f} -> {load_after[0]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
