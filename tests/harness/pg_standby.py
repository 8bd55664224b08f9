"""A PostgreSQL primary with a synchronous standby, both throwaway clusters from the installed binaries.

The primary runs with ``synchronous_standby_names = '*'`` and ``synchronous_commit = remote_apply``:
a commit returns only once the standby has replayed it, so anything a client saw committed is on
the standby if the primary dies the next moment. Those two settings are given on the primary's
command line, not in its postgresql.conf, so the standby (a ``pg_basebackup -R`` copy) does not
inherit them: once promoted it has no standby of its own and must not wait for one.

``kill_primary`` is SIGKILL of the postmaster and every backend (a host that vanished, not a clean
shutdown). Clusters run as the postgres system user when we are root (initdb refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from harness.pg import _pg_bin
from harness.waiting import wait_until

SYNCHRONOUS = "-c synchronous_standby_names=* -c synchronous_commit=remote_apply"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgPair:
    workdir: Path
    primary_port: int
    standby_port: int
    run_as: dict[str, int] = field(default_factory=dict)

    @property
    def primary_data(self) -> Path:
        return self.workdir / "primary"

    @property
    def standby_data(self) -> Path:
        return self.workdir / "standby"

    def dsn(self, port: int, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"

    def failover_url(self, dbname: str) -> str:
        """The application's URL: both hosts (libpq's lists, which pg_dump reads too); only a writable one will do."""
        hosts = f"host=127.0.0.1,127.0.0.1&port={self.primary_port},{self.standby_port}"
        return f"postgresql+psycopg://postgres@/{dbname}?{hosts}&target_session_attrs=read-write&connect_timeout=5"

    def run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, **self.run_as)  # type: ignore[arg-type]

    def start(self, data: Path, port: int, extra: str = "") -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {self.workdir} -c fsync=off {extra}"
        self.run(_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", f"{data}.log", "start")

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster and all its children, as a power cut would end them."""
        postmaster = int((self.primary_data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        for pid in [postmaster, *map(int, children)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not _port_answers(self.primary_port), timeout=30, message="the killed primary to stop")

    def promote_standby(self) -> None:
        self.run(_pg_bin("pg_ctl"), "-D", str(self.standby_data), "-w", "promote")

    def stop_all(self) -> None:
        for data in (self.primary_data, self.standby_data):
            if (data / "postmaster.pid").exists():
                subprocess.run(
                    [_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                    capture_output=True, **self.run_as,  # type: ignore[arg-type]
                )  # fmt: skip


def _port_answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _standby_in_sync(pair: PgPair) -> bool:
    with psycopg.connect(pair.dsn(pair.primary_port), connect_timeout=3) as conn:
        row = conn.execute("SELECT sync_state FROM pg_stat_replication").fetchone()
    return row is not None and row[0] == "sync"


@contextmanager
def primary_with_sync_standby() -> Iterator[PgPair]:
    """Start the pair and yield it once the standby streams synchronously; everything goes at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="df-pg-pair-"))
    pair = PgPair(workdir, _free_port(), _free_port())
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        pair.run_as = {"user": pw.pw_uid, "group": pw.pw_gid}
    try:
        pair.run(_pg_bin("initdb"), "-D", str(pair.primary_data), "-U", "postgres", "--auth=trust")
        pair.start(pair.primary_data, pair.primary_port, SYNCHRONOUS)
        # -R writes standby.signal and primary_conninfo; -X stream keeps the WAL the copy needs.
        pair.run(
            _pg_bin("pg_basebackup"), "-D", str(pair.standby_data), "-h", "127.0.0.1",
            "-p", str(pair.primary_port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        pair.start(pair.standby_data, pair.standby_port)
        wait_until(lambda: _standby_in_sync(pair), timeout=30, message="the standby to stream synchronously")
        yield pair
    finally:
        pair.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
