"""A PostgreSQL server for the suite: the local one on 127.0.0.1:5432 when it answers,
otherwise a throwaway cluster started from the installed binaries (initdb + pg_ctl).

Both also listen on a Unix socket, which a process inside a network namespace (the bench network's
controller) reaches where the host's loopback is out of its sight: ``over_unix_socket``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

LOCAL_SOCKET_DIR = "/var/run/postgresql"  # Debian's packaged server
_socket_dirs: dict[int, str] = {}  # port -> the directory holding that server's .s.PGSQL.<port>


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
    _socket_dirs[port] = workdir
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


def over_unix_socket(url: str) -> str:
    """The same database by the server's Unix socket: a libpq URL with ``host`` set to the socket's
    directory (network namespaces do not separate the file system, so a socket is reachable from
    inside one). :raises RuntimeError: no socket is known for that server."""
    parts = urlsplit(url)
    port = parts.port or 5432
    directory = _socket_dirs.get(port, LOCAL_SOCKET_DIR)
    if not (Path(directory) / f".s.PGSQL.{port}").exists():
        raise RuntimeError(f"no Unix socket for the PostgreSQL server on port {port} in {directory}")
    user = f"{parts.username}@" if parts.username else ""
    query = "&".join(q for q in (parts.query, f"host={directory}&port={port}") if q)
    return urlunsplit((parts.scheme, user, parts.path, query, ""))
