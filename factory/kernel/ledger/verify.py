"""Recompute every custody log from the rows alone: each chain, Merkle tree, signed head and cosignature.

Each site's log is verified on its own (its entries in ``log_seq`` order from its own genesis,
its tree, its heads, and the other sites' cosignatures of it, each checked against the site key
list); the report for the whole database joins them, with one report per log in ``logs``.

Rows are read with a plain DB-API cursor (server-side on PostgreSQL) in batches of a power-of-two
size and checked a batch at a time (``verify_rows``): each entry's canonical bytes rebuilt from
its stored columns and hashed twice, SHA-256 for ``entry_hash`` (the chain) and as a Merkle leaf,
and the batch's subtrees; a batch with anything unusual is re-checked row by row, which names the
first broken entry. The tree's right edge gives the root at the size of every signed head,
compared with what the head signed. Large logs are split into ranges of a power-of-two size:
this process verifies the first and light worker processes (``verify_worker``, which do not
import the application) the others, as many as CPUs other processes leave free (``free_cpus``),
each returning its range's subtree hashes, which are joined in order. The first broken entry in
sequence order is reported either way; entries after the latest signed head are reported as the
*unsigned tail*. The walks keep the ``sanitised`` and ``start_sanitise`` entries, so the
certificate-row check that follows need not read the entries again.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, text

from factory.kernel.db.engine import read_scope
from factory.kernel.key_registry import KeyNotValid, Keyring
from factory.kernel.ledger import merkle
from factory.kernel.ledger.certificates import check_certificate_rows
from factory.kernel.ledger.cosign import cosignature_problem, stored_cosignatures
from factory.kernel.ledger.heads import TreeHead, stored_heads
from factory.kernel.ledger.logs import log_names
from factory.kernel.ledger.tree import TreeMissing, root_at, tree_size
from factory.kernel.ledger.verify_rows import BATCH, RangeResult, RowWalk, row_batches
from factory.kernel.ledger.verify_worker import RangeJob, log_select, open_cursor, range_select

__all__ = ["BATCH", "PARALLEL_THRESHOLD", "LedgerReport", "free_cpus", "verify_ledger"]
# Below this many entries one process is faster even with a CPU free: a worker costs its start,
# connection and answer (measured 0.08-0.5 s at load 15 on 2 CPUs) and saves half the rows (one
# process: 6-27 us per entry by load), so it pays from ~15k-40k entries; set above that.
PARALLEL_THRESHOLD = 50_000


@dataclass(frozen=True)
class LedgerReport:
    ok: bool
    entries: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    reason: str | None = None
    signed_size: int = 0  # entries covered by the latest signed tree head that verified
    heads_checked: int = 0
    root_hash: str | None = None  # the Merkle root over every entry
    log: str | None = None  # the log reported on (None: every log, joined)
    cosignatures_checked: int = 0
    logs: tuple[LedgerReport, ...] = ()  # one report per log (for the joined report)

    @property
    def unsigned_tail(self) -> int:
        """Entries after the latest signed head: verified as a chain, but not yet committed to."""
        return max(self.entries - self.signed_size, 0)

    def failed_anchor(self, reason: str, seq: int) -> LedgerReport:
        """The chain itself verifies, but a signed head it once had is gone or different."""
        return replace(self, ok=False, broken_seq=seq, reason=reason)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
            "signed_size": self.signed_size,
            "unsigned_tail": self.unsigned_tail,
            "heads_checked": self.heads_checked,
            "root_hash": self.root_hash,
            "log": self.log,
            "cosignatures_checked": self.cosignatures_checked,
            "logs": [r.as_dict() for r in self.logs],
        }


def free_cpus() -> int:
    """CPUs this process may use that other processes leave free (affinity mask less their load); at least 1.

    The others' load is the lower of two estimates: the 1-minute load average, which lags and counts
    this process's own recent work (a verify right after another, or inside a busy benchmark loop,
    would see its own CPU as taken and never start a worker), and the tasks runnable right now less
    this one (the kernel's count, /proc/loadavg's fourth field, the least of a few samples: it
    jumps with tasks that run for a moment, such as a database backend finishing the count verify
    just asked for; a process that keeps a CPU busy is runnable in every sample).
    """
    return max(1, round(len(os.sched_getaffinity(0)) - min(os.getloadavg()[0], _runnable_others())))


def _runnable_others(samples: int = 5) -> float:
    """Runnable tasks other than this process now (the least of ``samples`` reads 2 ms apart); where
    the kernel does not say (not Linux), the load average."""
    counts = []
    try:
        for _ in range(samples):
            with open("/proc/loadavg", encoding="ascii") as stat:
                counts.append(int(stat.read().split()[3].split("/")[0]) - 1)  # "running/total": this one included
            time.sleep(0.002)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    return float(min(counts))


def _check_range(
    engine: Engine,
    log: str,
    bounds: tuple[int, int | None],
    sizes: frozenset[int],
    progress: Callable[[int], None] | None = None,
) -> RangeResult:
    """``log``'s entries from position ``lo`` (to ``hi``, exclusive) in this process; from 1 the
    link to the log's genesis is checked too."""
    (lo, hi), dialect = bounds, engine.dialect.name
    raw = engine.raw_connection()
    try:
        if hi is None:
            select, params = log_select(dialect), (log,)
        else:
            select, params = range_select(dialect), (log, lo, hi)  # type: ignore[assignment]
        walk = RowWalk(lo, log if lo == 1 else None, sizes)
        return walk.run(row_batches(open_cursor(raw.dbapi_connection, dialect), select, params), progress)
    finally:
        raw.close()


def verify_ledger(
    engine: Engine,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    keyring: Keyring | None = None,
    witnessed: Sequence[TreeHead] = (),
    log: str | None = None,
) -> LedgerReport:
    """Verify every log (or only ``log``): each chain, tree and signed head (signatures too, given a
    ``keyring``) and the other sites' cosignatures of it (checked against the ``keyring`` too).

    ``witnessed`` are heads kept outside the database (a witness's or an auditor's copy): checked
    like the stored ones of their log, so deleting a head from the database does not hide a rewrite.
    """
    with read_scope(engine) as conn:
        names = [log] if log is not None else log_names(conn)
    done = 0

    def counted(n: int) -> None:
        if progress is not None:
            progress(done + n)

    reports, seen = [], RangeResult(0, None, None, None)
    for name in names:
        report = verify_log(engine, name, counted, workers, keyring, [h for h in witnessed if h.log == name], seen)
        reports.append(report)
        done += report.entries
    joined = _join_reports(reports, log)
    if not joined.ok:
        return joined
    # The walks read every entry of every log: their sanitised and start_sanitise entries, unless some entry is in none.
    return _check_certificates(
        engine, joined, _certificate_entries(engine, seen, joined.entries) if log is None else None
    )


def _certificate_entries(
    engine: Engine, seen: RangeResult, walked: int
) -> tuple[list[tuple[Any, Any, Any]], dict[Any, Any]] | None:
    """What the walks kept for the certificate check, if they read every entry (else None: selected again)."""
    with read_scope(engine) as conn:
        total = conn.execute(text("SELECT count(*) FROM custody_entry")).scalar_one()
    if total != walked or any(type(seq) is not int for seq, _, _ in seen.sanitised):
        return None
    return sorted(seen.sanitised, key=itemgetter(0)), dict(seen.opened)


def _join_reports(reports: list[LedgerReport], log: str | None) -> LedgerReport:
    """One report for every log: the single log's own when there is one, else the sums."""
    if len(reports) == 1:
        return replace(reports[0], logs=tuple(reports))
    broken = next((r for r in reports if not r.ok), None)
    return LedgerReport(
        ok=broken is None,
        entries=sum(r.entries for r in reports),
        head_seq=None,
        head_hash=None,
        broken_seq=broken.broken_seq if broken else None,
        reason=f"log {broken.log!r}: {broken.reason}" if broken else None,
        signed_size=sum(r.signed_size for r in reports),
        heads_checked=sum(r.heads_checked for r in reports),
        log=log,
        cosignatures_checked=sum(r.cosignatures_checked for r in reports),
        logs=tuple(reports),
    )


def _check_certificates(
    engine: Engine, report: LedgerReport, entries: tuple[list[tuple[Any, Any, Any]], dict[Any, Any]] | None
) -> LedgerReport:
    problems = check_certificate_rows(engine, entries)
    if not problems:
        return report
    first = problems[0]
    named = f" (named by custody entry {first.seq})" if first.seq is not None else ""
    more = f"; {len(problems) - 1} more certificate problem(s)" if len(problems) > 1 else ""
    reason = f"certificate {first.certificate_id}{named}: {first.reason}{more}"
    return replace(report, ok=False, broken_seq=first.seq, reason=reason)


def verify_log(
    engine: Engine,
    log: str,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    keyring: Keyring | None = None,
    witnessed: Sequence[TreeHead] = (),
    seen: RangeResult | None = None,
) -> LedgerReport:
    """Verify one site's log: its chain from its genesis, its tree, its heads and its cosignatures.
    ``seen``: gathers the entries the certificate check needs (``RangeResult.keep_certificate_entries``)."""
    with read_scope(engine) as conn:
        total, last = conn.execute(
            text("SELECT count(*), max(log_seq) FROM custody_entry WHERE log = :log"), {"log": log}
        ).one()
        heads = [*stored_heads(conn, log), *witnessed]
        cosigs = stored_cosignatures(conn, log)
    sizes = frozenset(h.tree_size for h in [*heads, *cosigs] if h.tree_size > 0)
    if total < PARALLEL_THRESHOLD or engine.url.database in (None, "", ":memory:"):
        workers = 1  # one process is faster (see PARALLEL_THRESHOLD); a memory database has no file to share
    elif workers is None:
        workers = free_cpus()
    if workers < 2:
        part = _check_range(engine, log, (1, None), sizes, progress)
        roots = {s: _fold(nodes) for s, nodes in part.at_sizes.items()}
        report, parts = replace(_report(part, _fold(part.nodes)), log=log), [part]
    else:
        report, roots, parts = _verify_parallel(engine, log, int(last), workers, progress, sizes)
    for part in parts if seen is not None else ():
        seen.sanitised += part.sanitised
        seen.opened += part.opened
    if not report.ok:
        return report
    report = _check_tree_and_heads(engine, report, heads, roots, keyring)
    problem = cosignature_problem(cosigs, roots, report.entries, keyring) if report.ok else None
    return _head_failure(report, problem) if problem else replace(report, cosignatures_checked=len(cosigs))


def _fold(nodes: list[bytes]) -> bytes:
    return merkle.Frontier(0).root() if not nodes else merkle.fold(nodes)


def _check_tree_and_heads(
    engine: Engine, report: LedgerReport, heads: list[TreeHead], roots: dict[int, bytes], keyring: Keyring | None
) -> LedgerReport:
    """The stored tree must match the entries, and every head the root at its size."""
    with read_scope(engine) as session:
        stored = tree_size(session, report.log)
        if stored >= report.entries > 0:
            try:
                if root_at(session, report.entries, report.log).hex() != report.root_hash:
                    return _head_failure(report, "the stored Merkle tree differs from the entries")
            except TreeMissing as exc:
                return _head_failure(report, f"the stored Merkle tree is incomplete ({exc})")
    signed = 0
    for head in heads:
        where = f"signed tree head of size {head.tree_size} ({head.signed_at})"
        if head.tree_size > report.entries:
            return _head_failure(report, f"ledger truncated: {where}, but the log holds {report.entries} entries")
        expected = roots.get(head.tree_size, merkle.EMPTY_ROOT).hex()
        if head.root_hash != expected:
            return _head_failure(
                report, f"ledger rewritten: {where} has root {head.root_hash}, the entries give {expected}"
            )
        if keyring is not None:
            try:
                head.check_signature(keyring)
            except KeyNotValid as exc:
                return _head_failure(report, f"{where}: {exc}")
        signed = max(signed, head.tree_size)
    return replace(report, signed_size=signed, heads_checked=len(heads))


def _head_failure(report: LedgerReport, reason: str) -> LedgerReport:
    return replace(report, ok=False, reason=reason)


def _verify_parallel(
    engine: Engine, log: str, max_seq: int, workers: int, progress: Callable[[int], None] | None, sizes: frozenset[int]
) -> tuple[LedgerReport, dict[int, bytes], list[RangeResult]]:
    """``log``'s positions 1 to ``max_seq`` in ranges: the first here, the others by workers."""
    # Ranges of a power-of-two length starting at its multiples: each is whole subtrees of the log's tree.
    step = 1 << max(-(-max_seq // workers) - 1, 1).bit_length()
    ranges = [(lo, min(lo + step, max_seq + 1)) for lo in range(1, max_seq + 1, step)]
    local = [frozenset(s - lo + 1 for s in sizes if lo <= s < hi) for lo, hi in ranges]
    started = [_start_worker(engine, log, lo, hi, at) for (lo, hi), at in zip(ranges[1:], local[1:], strict=True)]
    try:
        parts = [_check_range(engine, log, ranges[0], local[0]), *(_result_of(p) for p in started)]
    finally:
        for process in started:  # a worker still running after a failure here is not needed
            if process.poll() is None:
                process.kill()
    edge, roots = merkle.Frontier(), {}  # type: dict[int, bytes]
    # The first range checked its own link to the log's genesis.
    count, prev_hash, version = 0, parts[0].first_prev_hash, 0
    for (lo, hi), part in zip(ranges, parts, strict=True):
        failed = _join_failure(part, (log, lo, hi), RangeResult(count, None, None, prev_hash), version, engine)
        if failed is not None:
            return replace(_report(failed, None), log=log), {}, parts
        for at, nodes in part.at_sizes.items():
            roots[lo - 1 + at] = merkle.fold([*edge.nodes, *nodes])
        edge.absorb(part.count, part.nodes)
        count += part.count
        prev_hash, version = part.last_hash or prev_hash, part.last_version or version
        if progress is not None:
            progress(count)
    joined = _report(RangeResult(count, None, count or None, prev_hash if count else None), edge.root())
    return replace(joined, log=log), roots, parts


def _start_worker(engine: Engine, log: str, lo: int, hi: int, sizes: frozenset[int]) -> subprocess.Popen[bytes]:
    """A light worker process (it imports ``verify_worker``, not the application) for one range."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        target = str(engine.url.database)
    else:  # a libpq URI psycopg connects with directly
        target = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "factory.kernel.ledger.verify_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    with process.stdin as job:  # type: ignore[union-attr]
        pickle.dump(RangeJob(dialect, target, log, lo, hi, sizes), job)
    return process


def _result_of(process: subprocess.Popen[bytes]) -> RangeResult:
    with process.stdout as answer:  # type: ignore[union-attr]
        out = answer.read()
    if process.wait() != 0:
        raise RuntimeError(f"ledger verify worker failed (exit {process.returncode})")
    result = pickle.loads(out)  # our own child's answer, over a pipe only we hold
    if not isinstance(result, RangeResult):
        raise RuntimeError(f"ledger verify worker answered {type(result).__name__}")
    return result


def _join_failure(
    part: RangeResult, bounds: tuple[str, int, int], before: RangeResult, version: int, engine: Engine
) -> RangeResult | None:
    """The first problem at or inside a worker's range (of one log), reported as the serial walk would have."""
    log, lo, hi = bounds
    # The range's first row, checked in the serial walk's order: its link, then its version, then the rest.
    if part.first_prev_hash is not None and part.first_prev_hash != before.last_hash:
        return replace(before, broken_seq=lo, reason="prev_hash differs from the previous entry_hash")
    if part.first_version and part.first_version < version:
        return replace(
            before, broken_seq=lo, reason=f"hash_version {part.first_version} after entries of version {version}"
        )
    within = RangeResult(before.count + part.count, None, None, part.last_hash or before.last_hash)
    if part.broken_seq is not None:
        return replace(within, broken_seq=part.broken_seq, reason=part.reason)
    if part.last_seq != hi - 1:  # the range's last entries are missing: name the next one, as the serial walk does
        with read_scope(engine) as conn:
            found = conn.execute(
                text("SELECT min(log_seq) FROM custody_entry WHERE log = :log AND log_seq >= :hi"),
                {"log": log, "hi": int(hi)},
            ).scalar()
        missing = lo if part.last_seq is None else part.last_seq + 1
        return replace(within, broken_seq=missing, reason=f"missing or renumbered (the next entry found is {found})")
    return None


def _report(part: RangeResult, root: bytes | None) -> LedgerReport:
    head_hash = part.last_hash if part.count else None
    root_hex = root.hex() if root is not None and part.count else None
    if part.broken_seq is None:
        return LedgerReport(True, part.count, part.count or None, head_hash, root_hash=root_hex)
    return LedgerReport(
        ok=False,
        entries=part.count,
        head_seq=part.count or None,
        head_hash=head_hash,
        broken_seq=part.broken_seq,
        reason=f"custody entry {part.broken_seq}: {part.reason}",
    )
