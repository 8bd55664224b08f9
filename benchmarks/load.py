"""The API under load: many concurrent clients against uvicorn on loopback, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/load.py --clients 200 --seconds 60 --boards 50 --db sqlite postgresql

Each run makes a fresh database (migrated, a site key, a technician and an auditor token), serves
the real app with uvicorn on 127.0.0.1, and lets ``--clients`` clients send requests back to back
for ``--seconds``: about two reads (one device with its history, a page of devices, the board) for
every state change (receiving a new device, which appends one custody entry), while ``--boards``
bench boards keep their live streams open (each must deliver the board first). It reports the
status counts, p50/p99 latency and the load average, and then checks what must hold whatever the
load: no response of 500 or above other than a 503 (overload is refused fast, with Retry-After),
the ledger verifies, and it holds exactly one custody entry per accepted state change.

Bounded on purpose: loopback only, at most 500 clients and 600 seconds. Exit status 1 when a
check fails. ``tests/api/test_load.py`` runs the same driver with 60 clients for a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fair.py, also when a test loads this file
from fair import fresh_postgres

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only: this is a load generator
MAX_CLIENTS = 500
MAX_SECONDS = 600
SEED_DEVICES = 20
READS_PER_WRITE = 2


@dataclass
class Report:
    clients: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    transport_errors: Counter[str] = field(default_factory=Counter)
    accepted_writes: int = 0
    ledger_ok: bool = False
    ledger_entries: int = -1
    seeded_entries: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    boards: int = 0
    boards_streaming: int = 0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def server_errors(self) -> int:
        """Responses of 500 or above other than 503 (503 is the overload refusal)."""
        return sum(n for code, n in self.statuses.items() if code >= 500 and code != 503)

    def failures(self) -> list[str]:
        found = []
        if self.server_errors:
            found.append(f"{self.server_errors} responses >= 500 other than 503")
        if self.transport_errors:
            found.append(f"transport errors: {dict(self.transport_errors)}")
        if not self.ledger_ok:
            found.append("the ledger does not verify")
        expected = self.seeded_entries + self.accepted_writes
        if self.ledger_entries != expected:
            found.append(f"{self.ledger_entries} custody entries, expected {expected} (accepted changes + seed)")
        if self.boards_streaming != self.boards:
            found.append(f"{self.boards_streaming} of {self.boards} board streams delivered the board")
        return found

    def summary(self) -> str:
        total = sum(self.statuses.values())
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        la = " ".join(f"{x:.2f}" for x in self.load_average)
        return (
            f"{self.clients} clients, {self.seconds:.0f} s: {total} responses ({total / self.seconds:.0f}/s) "
            f"[{codes}], p50 {self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms, "
            f"accepted changes {self.accepted_writes}, ledger {'ok' if self.ledger_ok else 'BROKEN'} "
            f"with {self.ledger_entries} entries, {self.boards_streaming}/{self.boards} boards streaming, "
            f"load average {la}"
        )


# ------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def prepare_site(home: Path, database_url: str) -> dict[str, str]:
    """Migrate, make the site key and two users; return their tokens."""
    from factory.identity.service import add_user
    from factory.kernel.config import Settings
    from factory.kernel.db.engine import make_engine, session_scope
    from factory.kernel.db.migrate import upgrade
    from factory.kernel.site_keys import init_keys

    upgrade(database_url)
    init_keys(Settings(home=home, database_url=database_url, site_name="load-bench"))
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            return {role: add_user(session, f"load.{role}", role)[1] for role in ("technician", "auditor")}
    finally:
        engine.dispose()


@contextlib.contextmanager
def serve(home: Path, database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """uvicorn serving the app on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "FACTORY_HOME": str(home), "FACTORY_DATABASE_URL": database_url, **(extra_env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", HOST, "--port", str(port)]
    # Keep-alive longer than any pause between a client's requests: no close/reuse race.
    opts = ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "120"]
    proc = subprocess.Popen([*cmd, *opts], cwd=ROOT, env=env)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the server's own readiness: its health route answering
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not come up on {base}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ the clients


def _device(serial: str) -> dict[str, object]:
    return {
        "serial": serial,
        "kind": "laptop",
        "make": "HP",
        "media": [{"media_type": "nvme", "serial": f"{serial}-N"}],
    }


async def _client(n: int, http: httpx.AsyncClient, tokens: dict[str, str], stop: float, report: Report) -> None:
    tech = {"Authorization": f"Bearer {tokens['technician']}"}
    i = 0
    while time.monotonic() < stop:
        i += 1
        kind = i % (READS_PER_WRITE + 1)
        if kind == 0:
            method, url, body = "POST", "/api/devices", _device(f"LOAD-{n}-{i}")
        elif kind == 1:
            method, url, body = "GET", f"/api/devices/SEED-{(n + i) % SEED_DEVICES}", None
        else:
            method, url, body = "GET", ("/api/devices?limit=20" if n % 2 else "/api/board"), None
        started = time.monotonic()
        try:
            r = await http.request(method, url, json=body, headers=tech)
        except httpx.TransportError as exc:
            report.transport_errors[type(exc).__name__] += 1
            continue
        report.latencies.append(time.monotonic() - started)
        report.statuses[r.status_code] += 1
        if method == "POST" and r.status_code == 201:
            report.accepted_writes += 1
        elif r.status_code == 503:
            # Overloaded: the server says when to come back (bounded so the run keeps its pace).
            await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))


async def _board(http: httpx.AsyncClient, tokens: dict[str, str], report: Report, streaming: asyncio.Event) -> None:
    """One bench board's live stream, open until cancelled; counted once it delivers the board."""
    headers = {"Authorization": f"Bearer {tokens['technician']}"}
    async with http.stream("GET", "/api/board/events", headers=headers) as r:
        async for line in r.aiter_lines():
            if line.startswith("event: board"):
                report.boards_streaming += 1
                if report.boards_streaming == report.boards:
                    streaming.set()
                break
        async for _line in r.aiter_lines():
            pass


async def _open_boards(http: httpx.AsyncClient, tokens: dict[str, str], report: Report) -> list[asyncio.Task[None]]:
    streaming = asyncio.Event()
    boards = [asyncio.create_task(_board(http, tokens, report, streaming)) for _ in range(report.boards)]
    if boards:
        await asyncio.wait_for(streaming.wait(), 60)
    return boards


async def _seed(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    tech = {"Authorization": f"Bearer {tokens['technician']}"}
    for i in range(SEED_DEVICES):
        r = await http.post("/api/devices", json=_device(f"SEED-{i}"), headers=tech)
        r.raise_for_status()


async def run_load(base: str, tokens: dict[str, str], clients: int, seconds: float, boards: int = 0) -> Report:
    """Seed devices, open ``boards`` live board streams, run the clients (while the boards stay
    open), then check the ledger through the API."""
    if not 1 <= clients <= MAX_CLIENTS or not 0 < seconds <= MAX_SECONDS or not 0 <= boards <= MAX_CLIENTS:
        raise ValueError(f"clients and boards must be up to {MAX_CLIENTS}, seconds up to {MAX_SECONDS}")
    if httpx.URL(base).host != HOST:
        raise ValueError("loopback only")
    report = Report(clients, seconds, boards=boards)
    limits = httpx.Limits(max_connections=clients + boards + 1, max_keepalive_connections=clients + boards + 1)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        await _seed(http, tokens)
        report.seeded_entries = SEED_DEVICES
        streams = await _open_boards(http, tokens, report)
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(n, http, tokens, stop, report) for n in range(clients)))
        report.load_average = os.getloadavg()
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        r = await http.get("/api/ledger/verify", headers={"Authorization": f"Bearer {tokens['auditor']}"})
        body = r.json()
        report.ledger_ok, report.ledger_entries = bool(body.get("ok")), int(body.get("entries", -1))
    return report


# ------------------------------------------------------------------ databases and main


@contextlib.contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'factory.db'}"
        return
    with fresh_postgres("df_bench_load") as url:
        yield url


def bench(kind: str, clients: int, seconds: float, boards: int) -> Report:
    with tempfile.TemporaryDirectory(prefix="df-load-") as tmp, fresh_database(kind, Path(tmp)) as url:
        home = Path(tmp) / "home"
        tokens = prepare_site(home, url)
        with serve(home, url) as base:
            return asyncio.run(run_load(base, tokens, clients, seconds, boards))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--boards", type=int, default=50, help="bench boards' live streams kept open meanwhile")
    parser.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = parser.parse_args()
    failed = False
    for kind in args.db:
        report = bench(kind, args.clients, args.seconds, args.boards)
        print(f"{kind}: {report.summary()}")
        for problem in report.failures():
            failed = True
            print(f"{kind}: FAIL {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
