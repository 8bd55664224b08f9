"""Fair timing for the benchmarks: the project and its reference alternate on the same target.

Every benchmark here reports ratios measured in one run, the same way (the method of the shared
``ratio`` tool, copied so the project does not depend on anything outside it):

* the reference (the practical limit) and the project alternate, A B B A A B ..., so caches,
  allocation and load drifting over the run hit both alike; nothing runs first on a fresh target;
* at least 3 rounds; each round gives one ratio (reference time / project time: above 1 the
  project is faster) and the report is min / median / max of those ratios plus the best time of each;
* the 1-minute load average is read before and after every figure and printed beside it: on a
  shared machine a figure without its load is not a figure.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MIN_ROUNDS = 3
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("factory", "imaging", "hardware_drivers", "api")
PG_ADMIN = os.environ.get("FACTORY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class NotEmpty(Exception):
    """The database given already holds a factory: its rows and keys would skew the run."""


def add_database_options(parser: argparse.ArgumentParser, url_variable: str) -> None:
    made = "postgresql: a database made for the run on FACTORY_BENCH_PG's server, dropped after"
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite", help=made)
    parser.add_argument("--database-url", default=os.environ.get(url_variable),
                        help=f"an empty database to run on instead, kept after (default: ${url_variable})")  # fmt: skip


@contextmanager
def run_database(home: Path, args: argparse.Namespace, prefix: str) -> Iterator[str]:
    """The run's database (``add_database_options``): SQLite in the run's FACTORY_HOME, a
    PostgreSQL database made for the run and dropped after, or one given by URL, which must be
    empty: a run on another run's devices and keys reports on both. A given one is never dropped."""
    from sqlalchemy import create_engine, inspect

    if args.database_url:
        url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url)
        try:
            if inspect(engine).get_table_names():
                raise NotEmpty(f"{args.database_url} is not empty: give an empty database, or --db postgresql")
        finally:
            engine.dispose()
        yield url
    elif args.db == "postgresql":
        with fresh_postgres(prefix) as url:
            yield url
    else:
        yield f"sqlite:///{home / 'factory.db'}"


@contextmanager
def fresh_postgres(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on ``FACTORY_BENCH_PG``'s server for one run (its SQLAlchemy
    URL), dropped when the run ends. CREATE fails if the name is taken, so a benchmark never reuses
    a database, nor drops one it did not create."""
    import psycopg  # only benchmarks on PostgreSQL need it

    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def compile_project() -> None:
    """Write the bytecode of the project's packages before a benchmark times a ``factory`` command,
    as an installed site has it (pip compiles a wheel's modules when it installs them).

    These machines set ``PYTHONDONTWRITEBYTECODE``, under which Python never caches what it compiles:
    every ``factory`` process (and every worker it spawns) compiled every project module it imported
    on every start, 0.1-0.2 s of a run that no installed site pays. The variable only stops writing;
    bytecode written here is read by every process after."""
    for package in PROJECT_PACKAGES:
        compileall.compile_dir(PROJECT_ROOT / package, quiet=1)


@contextmanager
def huge_pages_for_everyone() -> Iterator[str]:
    """Transparent huge pages for every process while the block of a benchmark runs (restored after);
    yields what the references run with, to print beside the figures.

    The project's O_DIRECT buffers ask for huge pages (``imaging.patterns.aligned_buffer``): an 8 MiB
    request from 2 MiB pages goes to the device as 2-7 requests, from 4 KiB pages as about 14. dd has
    no such option, and with the kernel's default ("madvise") its buffer is 4 KiB pages, which made
    it half as fast as it can be (4 GiB write + read: 1501 MB/s against 3596 with huge pages): not
    the practical limit. "always" gives dd's buffer huge pages as well. Without root, or where the
    kernel has no such setting, nothing changes and the figures say so.
    """
    try:
        before = THP_SETTING.read_text().split("[", 1)[1].split("]", 1)[0]
        THP_SETTING.write_text("always")
    except (OSError, IndexError):
        yield "references on the kernel's default pages (transparent huge pages could not be set)"
        return
    try:
        yield f"transparent huge pages 'always' for the run, so dd's buffers get them too (was '{before}')"
    finally:
        THP_SETTING.write_text(before)


def load_average() -> float:
    return os.getloadavg()[0]


def cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def free_cpus() -> int:
    """CPUs not already busy, by the 1-minute load average; at least 1."""
    return max(1, round(cpus() - load_average()))


@dataclass
class Figure:
    """One alternated comparison: seconds per round of each side and the load around it."""

    name: str
    reference_name: str
    reference: list[float] = field(default_factory=list)
    project: list[float] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0

    def ratios(self) -> list[float]:
        return sorted(r / p for r, p in zip(self.reference, self.project, strict=True))

    def summary(self) -> str:
        r = self.ratios()
        return (
            f"{self.name} vs {self.reference_name}: ratio min {r[0]:.2f} median {statistics.median(r):.2f} "
            f"max {r[-1]:.2f}  (best s: {min(self.project):.3f} vs {min(self.reference):.3f}; "
            f"{len(r)} alternated rounds; load {self.load_before:.1f} -> {self.load_after:.1f} on {cpus()} CPUs)"
        )

    def as_dict(self) -> dict[str, object]:
        r = self.ratios()
        return {
            "figure": self.name,
            "reference": self.reference_name,
            "ratio_min": round(r[0], 3),
            "ratio_median": round(statistics.median(r), 3),
            "ratio_max": round(r[-1], 3),
            "project_s": [round(x, 4) for x in self.project],
            "reference_s": [round(x, 4) for x in self.reference],
            "load": [round(self.load_before, 2), round(self.load_after, 2)],
            "cpus": cpus(),
        }


def timed(fn: Callable[[], object], setup: Callable[[], object] | None = None) -> float:
    """Seconds ``fn`` takes; ``setup`` runs first, untimed (e.g. dropping a file's page cache)."""
    if setup is not None:
        setup()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    name: str,
    reference_name: str,
    reference: Callable[[], object],
    project: Callable[[], object],
    rounds: int = MIN_ROUNDS,
    setup: Callable[[], object] | None = None,
) -> Figure:
    """Run reference and project alternately (A B, B A, A B, ...) for ``rounds`` rounds."""
    return compare(reference_name, reference, {name: project}, rounds, setup)[0]


def compare(
    reference_name: str,
    reference: Callable[[], object],
    projects: dict[str, Callable[[], object]],
    rounds: int = MIN_ROUNDS,
    setup: Callable[[], object] | None = None,
) -> list[Figure]:
    """Several project runs against one reference: each round runs the reference and every project
    once, in an order rotated round by round (nobody always goes first or last), and each project's
    ratio for the round is taken against that round's reference time."""
    figures = {name: Figure(name, reference_name, load_before=load_average()) for name in projects}
    sides: list[tuple[str | None, Callable[[], object]]] = [(None, reference), *projects.items()]
    for i in range(max(rounds, MIN_ROUNDS)):
        shift = i % len(sides)
        ref_s = 0.0
        for label, fn in sides[shift:] + sides[:shift]:
            seconds = timed(fn, setup)
            if label is None:
                ref_s = seconds
            else:
                figures[label].project.append(seconds)
        for figure in figures.values():
            figure.reference.append(ref_s)
    load = load_average()
    for figure in figures.values():
        figure.load_after = load
        print(figure.summary(), flush=True)
    return list(figures.values())
