"""Audit search at scale: certificate search by serial through the real API, on PostgreSQL.

    .venv/bin/python benchmarks/audit.py --certificates 1000000 --entries 10000000
    .venv/bin/python benchmarks/audit.py --reuse --duration 20      # measure again, no reload

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
   database, and the same for a bare FastAPI app with one ``/bare`` endpoint returning a constant
   (sync, like most of the API's endpoints; ``/bare-async`` too), and for the project's bearer
   auth and role check in front of a constant (``/auth-only``), which splits the gap between the
   two. The search route itself is async and serves one device's certificates on the event
   loop, with verified tokens remembered for ``FACTORY_TOKEN_CACHE_SECONDS`` (docs/audit.md).
   ``wrk`` drives ``GET /api/certificates?device_serial=<random loaded serial>`` with an auditor
   token (a fresh random serial per request), and ``GET /bare``. Two runs each: 1 connection
   (service latency: p50/p99) and ``--connections`` connections (throughput at saturation).
   Targets: p99 <= 10 ms for search by serial; req/s >= 0.5x the bare endpoint.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

# A sibling module: this file runs as a script (``python benchmarks/audit.py``), from its folder.
from audit_load import DB_NAME, SCRIPT, check_sample, db_url, dsn, fresh_database, load

from factory.identity.service import add_user
from factory.kernel.config import Settings
from factory.kernel.db.engine import make_engine, session_scope
from factory.kernel.site_keys import init_keys

# ------------------------------------------------------------------ measuring


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(app: str, env: dict[str, str], factory: bool) -> Iterator[str]:
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
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_SCRIPT = """
local serials = {%s}
local token = "%s"
local path = "%s"
math.randomseed(%d)
request = function()
  local p = path
  if #serials > 0 then p = p .. serials[math.random(#serials)] end
  return wrk.format("GET", p, {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local fmt = 'WRKJSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n'
  io.write(string.format(fmt,
    summary.requests, summary.duration, errors, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(base: str, path: str, serials: list[str], token: str, connections: int, duration: int) -> dict[str, float]:
    listed = ",".join(f'"{s}"' for s in serials)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (listed, token, path, random.randrange(1 << 30)))
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", script, base],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script)
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
    }


def measure(settings: Settings, devices: int, connections: int, duration: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load (apt-get install wrk)")
    with session_scope(make_engine(db_url(DB_NAME))) as s:
        name = f"bench-auditor-{os.getpid()}"
        _, token = add_user(s, name, "auditor")
    rng = random.Random(7)
    serials = [f"SN{rng.randrange(1, devices + 1):09d}" for _ in range(2000)]
    env = {
        "FACTORY_HOME": str(settings.home),
        "FACTORY_DATABASE_URL": db_url(DB_NAME),
        "FACTORY_SITE": settings.site_name,
    }
    results: dict[str, Any] = {}
    with server("api.app:create_app", env, factory=True) as base:
        _smoke(base, serials[0], token)
        wrk(base, "/api/certificates?device_serial=", serials, token, 4, 3)  # warm-up: pool, caches
        results["search_c1"] = wrk(base, "/api/certificates?device_serial=", serials, token, 1, duration)
        results[f"search_c{connections}"] = wrk(
            base, "/api/certificates?device_serial=", serials, token, connections, duration
        )
    with server("benchmarks.audit_apps:auth_only_app", env, factory=True) as base:
        wrk(base, "/auth-only", [], token, 4, 2)
        results["auth_only_c1"] = wrk(base, "/auth-only", [], token, 1, duration)
        results[f"auth_only_c{connections}"] = wrk(base, "/auth-only", [], token, connections, duration)
    with server("benchmarks.audit_apps:bare_app", {}, factory=False) as base:
        for path in ("/bare", "/bare-async"):
            key = path.strip("/").replace("-", "_")
            wrk(base, path, [], "", 4, 2)
            results[f"{key}_c1"] = wrk(base, path, [], "", 1, duration)
            results[f"{key}_c{connections}"] = wrk(base, path, [], "", connections, duration)
    sat = results[f"search_c{connections}"]["req_per_s"]
    results["ratio_vs_bare_sync"] = round(sat / results[f"bare_c{connections}"]["req_per_s"], 3)
    results["ratio_vs_bare_async"] = round(sat / results[f"bare_async_c{connections}"]["req_per_s"], 3)
    results["p99_target_met"] = results["search_c1"]["p99_ms"] <= 10.0
    results["ratio_target_met"] = results["ratio_vs_bare_sync"] >= 0.5
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
    report["measure"] = measure(settings, args.certificates, args.connections, args.duration)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
