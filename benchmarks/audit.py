"""Audit search at scale: certificate search by serial through the real API, on PostgreSQL.

    .venv/bin/python benchmarks/audit.py --certificates 1000000 --entries 10000000
    .venv/bin/python benchmarks/audit.py --reuse --duration 20      # measure again, no reload
    # what the figures below ran (the search reads no entries, so 2M load 5x faster than 10M):
    FACTORY_BENCH_AUDIT_DB=df_bench_audit_w6 .venv/bin/python benchmarks/audit.py --certificates 1000000 \
        --entries 2000000 --home /tmp/df-bench-audit-w6      # then the same with --reuse --duration 10
    .venv/bin/python benchmarks/audit.py --certificates 20000 --entries 200000 --duration 5  # a small check

1. Load: a dedicated database (``df_bench_audit``) migrated to head, then devices, media,
   certificates and custody entries bulk-loaded with COPY. Every entry carries a real chained
   hash (``factory.kernel.ledger.hashing``: the same function ``ledger verify`` uses), every certificate
   is a real signed envelope (~3.5 KB, RFC 8785 canonical bytes, Ed25519) naming the real hash of
   the custody entry that opened its erase round. Constraints and secondary indexes are dropped
   for the load and rebuilt after it (what a restore does); a sample of certificates is then
   verified with the project's own verifier and the ledger head is re-hashed.
   Hashing is sequential by nature (each entry names its predecessor's hash): one process hashes
   the chain while the server parses COPY on the other core; signing runs in the same loop.
2. Measure: ``uvicorn`` (1 worker, 127.0.0.1) serving ``api.app:create_app`` against that
   database, and beside it the reference: the project's bearer auth and role check in front of a
   constant in an *async* route (``benchmarks.audit_apps:auth_only_app``, ``/auth-only-async``),
   the practical limit for an async route that pays the same auth (the search route is async).
   ``wrk`` drives ``GET /api/certificates?device_serial=<serial>`` with a serial drawn per request
   from ``--serials`` distinct loaded serials (100k: a working set like production's, not a few
   cached pages) and a token drawn per request from ``--tokens`` auditor tokens (each verified
   token is remembered for ``FACTORY_TOKEN_CACHE_SECONDS``, docs/audit.md; with many tokens the
   cache misses as it would), and the reference with the same tokens.
   Method (benchmarks/fair.py): search and reference alternate, the order swapped each round, at
   least 3 rounds, at 1 connection (service latency: p50/p99) and at ``--connections``
   (throughput at saturation); ratio = search req/s / reference req/s, min / median / max, load
   average beside it. Beside each run, the server process's own CPU per request (``/proc``):
   its ratio (reference CPU / search CPU) varies less with the machine's load than req/s does,
   but leaves out PostgreSQL's share of the search (on the other core). A bare async FastAPI
   constant (no auth) is measured once for context.
   Targets: p99 <= 10 ms at 1 connection; req/s >= 0.6x the reference at 16 connections.
3. The database: ``df_bench_audit`` (or the name in ``FACTORY_BENCH_AUDIT_DB``, e.g. one per
   developer) is created by this benchmark with a marker comment; a run without ``--reuse`` drops
   it only when it carries that marker (left by an earlier run) and refuses any other database
   of that name.
All traffic stays on 127.0.0.1.

Measured 2026-12-06 on the shared 2-CPU machine under load 16-23 (other work running), 1M
certificates with 2M entries (``--entries 2000000``; the search reads no entries), 100k serials,
200 tokens, 10 s runs, 3 alternated rounds, search / auth-only async reference:
16 connections: before (one blocking SELECT on the loop) 0.16 / 0.18 / 0.23, now (async libpq
reader, concurrent searches batched) 0.44 / 0.47 / 0.72 (min / median / max). 1 connection: p50
7.9-15.4 ms -> 3.4-6.1 ms, p99 37-68 ms -> 29-46 ms, where the reference's own p99 was 26-80 ms:
at this load the tail is the scheduler's, and neither target (0.6x; p99 <= 10 ms) is met here.

Then the route's own overhead (a lean handler instead of FastAPI's dependency resolver, no query
model for a serial alone, page dicts instead of a dataclass per row, no empty socket read before
each wait): Python calls per search 1028 -> 696 (the reference: 467). Same 1M database, 8 s runs,
3 alternated rounds, 2 new/old pairs under load 2.5-5.4: 16 connections, req/s ratio now 0.60 /
0.69 / 0.79 and 0.54 / 0.59 / 0.62 (before 0.48 / 0.65 / 0.69 and 0.37 / 0.44 / 0.57); server
CPU ratio now 0.77 / 0.78 / 0.78 and 0.63 / 0.65 / 0.68 (before 0.57 / 0.58 / 0.72 and 0.45 /
0.46 / 0.59). 1 connection: p50 0.8-1.1 ms (one outlier 3.3 ms), p99 10.6-16.5 ms (median of the
medians 11.4 ms) beside the reference's own p99 of 8.2-14.3 ms in the same runs; in the quietest
run (load 2.5-3.6, the code before this change) the search's p99 was 3.8-5.4 ms and the
reference's 2.7-3.9 ms. The 0.6x target is met at the median at load 4-5; p99 <= 10 ms at 1
connection only when the machine is quieter (the tail follows the reference's: the scheduler's).
Measured 7 Dec 2026 on another host, the same code, nothing else running (load 1.2-1.4), 1M
certificates, 2M entries, 100k serials, 200 tokens, 10 s runs, 3 alternated rounds: 16 connections
req/s ratio 0.76 / 0.76 / 0.83, server CPU ratio 0.77 / 0.78 / 0.85; 1 connection p99 3.21 / 3.22 /
3.46 ms (the reference's 2.15-2.71 ms), req/s ratio 0.42 / 0.43 / 0.50. Both targets met here.
At 16 connections the search's p99 was 72-90 ms against the reference's 41-47 ms.
What remains between the search and the reference: the full app's three middlewares (request id,
access log and metrics; security headers; admission gate: about a fifth of the search's Python,
api/observability.py and api/middleware.py) and the database round trip (a send and a wake-up of
the server's backend per batch). GC is not a factor: 9600 searches at 16 in flight ran 8 young
collections (1.6 ms in all) and no full one. At 16 connections the search's p99 (100-250 ms) is
well above the reference's (23-60 ms); not a target, not explained yet.

Re-measured on a quiet machine (load 1.9 -> 1.4, nothing else running), the same database and
command (``--reuse --duration 10``), 3 alternated rounds: 16 connections, req/s ratio 0.70 / 0.77 /
0.92 and server CPU ratio 0.74 / 0.78 / 0.95; 1 connection, the search's p99 median 2.8 ms. Both
targets are met there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

# A sibling module: this file runs as a script (``python benchmarks/audit.py``), from its folder.
from audit_load import DB_NAME, SCRIPT, check_sample, db_url, dsn, fresh_database, load
from fair import MIN_ROUNDS, Figure, load_average

from factory.identity.service import add_user
from factory.kernel.config import Settings
from factory.kernel.db.engine import make_engine, session_scope
from factory.kernel.site_keys import init_keys

# ------------------------------------------------------------------ measuring


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """A server under test: where it listens and its process (one uvicorn worker: the server itself)."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the server's process has used so far (Linux ``/proc``)."""
        after_name = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def server(app: str, env: dict[str, str], factory: bool) -> Iterator[Served]:
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--no-access-log", "--log-level", "warning"] + (["--factory"] if factory else [])  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not start")
        yield Served(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_SCRIPT = """
local serials = {%s}
local tokens = {%s}
local path = "%s"
math.randomseed(%d)
request = function()
  local p = path
  if #serials > 0 then p = p .. serials[math.random(#serials)] end
  return wrk.format("GET", p, {["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]})
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local fmt = 'WRKJSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n'
  io.write(string.format(fmt,
    summary.requests, summary.duration, errors, latency:percentile(50), latency:percentile(99)))
end
"""


def _quoted(values: list[str]) -> str:
    return ",".join(f'"{v}"' for v in values)


def wrk(
    served: Served, path: str, serials: list[str], tokens: list[str], connections: int, duration: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (_quoted(serials), _quoted(tokens or [""]), path, random.randrange(1 << 30)))
        script = f.name
    cpu_before = served.cpu_seconds()
    try:
        out = subprocess.run(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", script,
             served.url],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script)
    cpu = served.cpu_seconds() - cpu_before
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line[len("WRKJSON ") :])
    if data["errors"]:
        raise RuntimeError(
            f"{path}: {data['errors']} of {data['requests']} requests failed; the numbers would mean nothing"
        )
    seconds = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "errors": data["errors"],
        "req_per_s": round(data["requests"] / seconds, 1),
        "p50_ms": round(data["p50_us"] / 1000, 2),
        "p99_ms": round(data["p99_us"] / 1000, 2),
        # The server process's own CPU per request (not the database's): steadier than req/s on a
        # shared machine, since time other work takes from the server is not counted.
        "server_cpu_us": round(cpu / max(data["requests"], 1) * 1e6, 1),
    }


def _tokens(count: int) -> list[str]:
    tokens = []
    with session_scope(make_engine(db_url(DB_NAME))) as s:
        for i in range(count):
            tokens.append(add_user(s, f"bench-auditor-{os.getpid()}-{i}", "auditor")[1])
    return tokens


def _alternated(
    runs: dict[str, Callable[[], dict[str, float]]], rounds: int
) -> tuple[Figure, Figure, dict[str, list[dict[str, float]]]]:
    """Search (project) and the async auth-only endpoint (reference) alternately, the order swapped
    each round. Two Figures: seconds per request, so its ratio is search req/s / reference req/s;
    and the server process's CPU per request, whose ratio is reference CPU / search CPU (what the
    req/s ratio would be if the server's core were the only limit and nothing else ran)."""
    (ref_name, ref), (name, project) = runs.items()
    figure = Figure(name, ref_name, load_before=load_average())
    cpu = Figure(f"{name} server CPU per request", ref_name, load_before=figure.load_before)
    raw: dict[str, list[dict[str, float]]] = {ref_name: [], name: []}
    for i in range(max(rounds, MIN_ROUNDS)):
        for is_ref in (i % 2 == 0, i % 2 == 1):
            result = (ref if is_ref else project)()
            raw[ref_name if is_ref else name].append(result)
            (figure.reference if is_ref else figure.project).append(1 / result["req_per_s"])
            (cpu.reference if is_ref else cpu.project).append(result["server_cpu_us"] / 1e6)
    figure.load_after = cpu.load_after = load_average()
    print(figure.summary(), flush=True)
    print(cpu.summary(), flush=True)
    return figure, cpu, raw


def measure(settings: Settings, devices: int, args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load (apt-get install wrk)")
    tokens = _tokens(args.tokens)
    rng = random.Random(7)
    serials = [f"SN{n:09d}" for n in rng.sample(range(1, devices + 1), min(devices, args.serials))]
    env = {
        "FACTORY_HOME": str(settings.home),
        "FACTORY_DATABASE_URL": db_url(DB_NAME),
        "FACTORY_SITE": settings.site_name,
    }
    results: dict[str, Any] = {"distinct_serials": len(serials), "tokens": len(tokens)}
    search, ref = "/api/certificates?device_serial=", "/auth-only-async"
    with (
        server("api.app:create_app", env, factory=True) as api,
        server("benchmarks.audit_apps:auth_only_app", env, factory=True) as auth,
    ):
        _smoke(api.url, serials[0], tokens[0])
        wrk(api, search, serials, tokens, 4, 3)  # warm-up: pool, caches
        wrk(auth, ref, [], tokens, 4, 2)
        for c in (1, args.connections):
            figure, cpu, raw = _alternated(
                {
                    f"auth-only async c{c}": lambda c=c: wrk(auth, ref, [], tokens, c, args.duration),
                    f"search by serial c{c}": lambda c=c: wrk(api, search, serials, tokens, c, args.duration),
                },
                args.rounds,
            )
            results[f"c{c}"] = {**figure.as_dict(), "server_cpu": cpu.as_dict(), "runs": raw}
    with server("benchmarks.audit_apps:bare_app", {}, factory=False) as base:
        wrk(base, "/bare-async", [], [], 4, 2)
        results[f"bare_async_c{args.connections}_for_context"] = wrk(
            base, "/bare-async", [], [], args.connections, args.duration
        )
    p99 = [r["p99_ms"] for r in results["c1"]["runs"]["search by serial c1"]]
    results["search_c1_p99_ms_median"] = statistics.median(p99)
    results["p99_target_met"] = results["search_c1_p99_ms_median"] <= 10.0
    results["ratio_target_met"] = results[f"c{args.connections}"]["ratio_median"] >= 0.6
    return results


def _smoke(base: str, serial: str, token: str) -> None:
    import httpx

    r = httpx.get(f"{base}/api/certificates", params={"device_serial": serial},
                  headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    r.raise_for_status()
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["device_serial"] == serial, r.text


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=1_000_000, help="one device and medium each")
    parser.add_argument("--entries", type=int, default=10_000_000, help="custody entries (<= 10 per certificate)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for the throughput runs")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (at least 3)")
    parser.add_argument("--serials", type=int, default=100_000, help="distinct serials searched (at most all)")
    parser.add_argument("--tokens", type=int, default=200, help="auditor tokens, one picked per request")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "df-bench-audit-home")
    parser.add_argument("--reuse", action="store_true", help="measure the database loaded by an earlier run")
    args = parser.parse_args()
    per_device = args.entries // args.certificates
    if not 2 <= per_device <= len(SCRIPT) or args.entries % args.certificates:
        raise SystemExit(f"--entries must be 2..{len(SCRIPT)} times --certificates")
    settings = Settings(home=args.home, database_url=db_url(DB_NAME), site_name="bench-site")
    report: dict[str, Any] = {"certificates": args.certificates, "entries": args.entries}
    if not args.reuse:
        if args.home.exists():
            shutil.rmtree(args.home)
        init_keys(settings)
        url = fresh_database()
        print(f"loading {args.certificates:,} certificates and {args.entries:,} entries ...", file=sys.stderr)
        report["load"] = load(url, settings, args.certificates, per_device)
        report["check"] = check_sample(url, settings)
    with psycopg.connect(dsn(DB_NAME)) as conn:
        report["database_size"] = conn.execute("SELECT pg_size_pretty(pg_database_size(%s))", (DB_NAME,)).fetchone()[0]  # type: ignore[index]
    report["measure"] = measure(settings, args.certificates, args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
