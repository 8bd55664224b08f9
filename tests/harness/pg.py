"""A PostgreSQL server for the suite: the local one on 127.0.0.1:5432 when it answers,
otherwise a throwaway cluster started from the installed binaries (initdb + pg_ctl)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _admin_ok(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL binary '{name}' not found (install the postgresql package)")
    return found


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin DSN (database 'postgres') of a server that accepts CREATE DATABASE."""
    local = os.environ.get("FACTORY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    if os.environ.get("FACTORY_TEST_PG_THROWAWAY") != "1" and _port_open("127.0.0.1", 5432) and _admin_ok(local):
        yield local
        return
    yield from _throwaway()


def _throwaway() -> Iterator[str]:
    workdir = tempfile.mkdtemp(prefix="df-pg-")
    data = os.path.join(workdir, "data")
    user_args: list[str] = []
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres system user
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", *user_args],
        check=True, capture_output=True, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off"
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", data, "-o", opts, "-w", "-l", os.path.join(workdir, "log"), "start"],
        check=True, capture_output=True, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [_pg_bin("pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
            **run_as,  # type: ignore[arg-type]
        )
        shutil.rmtree(workdir, ignore_errors=True)
