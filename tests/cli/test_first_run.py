"""The first run explains itself and keeps its data private: the technician login stays on one line
at any terminal width, FACTORY_HOME and factory.db (with its -wal/-shm) are owner-only, options to
serve.sh keep the simulated line, and under systemd the service reports READY=1 and watchdog pings."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.ports import free_tcp_port
from harness.waiting import wait_until
from rich.console import Console
from sqlalchemy import text

from factory.cli import systemd
from factory.cli.serve_cmd import announce
from factory.kernel.db.engine import make_engine

REPO = Path(__file__).resolve().parents[2]
FACTORY = str(Path(sys.executable).with_name("factory"))


class NotifySocket:
    """A service manager's end of sd_notify: a datagram socket that collects what was sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def received(self) -> list[str]:
        try:
            while True:
                self.messages.extend(self.sock.recv(4096).decode().splitlines())
        except TimeoutError:
            return self.messages


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    server = NotifySocket(tmp_path / "notify.sock")
    yield server
    server.sock.close()


def test_login_line_is_never_wrapped_whatever_the_width() -> None:
    login = "technician login: sim-technician / " + "Zq9-x_" * 4
    for width in (12, 40, 80):
        out = io.StringIO()
        announce(Console(file=out, width=width, force_terminal=False), "board: http://127.0.0.1:8000/board", login)
        assert out.getvalue().splitlines() == ["board: http://127.0.0.1:8000/board", login]


def test_notify_sends_ready_then_pings_only_while_healthy(notify_socket: NotifySocket, monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    ready, checks = [False], []

    def healthy() -> bool:
        checks.append(len(checks) < 3)  # healthy three times, then hung
        return checks[-1]

    with systemd.service_lifecycle(ready=lambda: ready[0], healthy=healthy):
        ready[0] = True
        wait_until(lambda: len(checks) >= 6, message="six health checks")
    sent = notify_socket.received()
    assert sent[:2] == ["READY=1", f"MAINPID={os.getpid()}"]
    assert sent[2:] == ["WATCHDOG=1"] * 3 + ["STOPPING=1"]


def test_notify_is_silent_outside_systemd_and_for_another_pid(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_seconds() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_seconds() == 30.0


def test_database_file_wal_and_home_are_created_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    old_umask = os.umask(0o022)  # a usual login's umask: files would be 0644
    try:
        engine = make_engine(f"sqlite:///{home / 'factory.db'}")
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.commit()
            files = [home / "factory.db", home / "factory.db-wal", home / "factory.db-shm"]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        engine.dispose()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert modes == {"factory.db": 0o600, "factory.db-wal": 0o600, "factory.db-shm": 0o600}


def test_a_database_left_world_readable_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "factory.db"
    make_engine(f"sqlite:///{db}").dispose()
    db.chmod(0o644)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def _serve_env(tmp_path: Path, notify: NotifySocket) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORY_")}
    return env | {
        "FACTORY_HOME": str(tmp_path / "home"),
        "COLUMNS": "24",  # a narrow terminal: Rich would have wrapped the login here
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "400000",
    }


@pytest.mark.slow
def test_serve_sh_passes_options_through_keeps_the_simulated_line_and_tells_systemd(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    port = free_tcp_port()
    env = _serve_env(tmp_path, notify_socket)
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts/serve.sh"), "--port", str(port), "--disk-mib", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("technician login:"):
                break
        # Keep reading the log, or a full pipe would stall the server.
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
        assert re.fullmatch(r"technician login: sim-technician / [\w-]{16}", lines[-1]), lines
        assert any(line.startswith("simulated line: 2 bench(es) x 4 slot(s)") for line in lines), lines
        assert f"board: http://127.0.0.1:{port}/board" in lines
        wait_until(lambda: "WATCHDOG=1" in notify_socket.received(), timeout=60, message="a watchdog ping")
        assert notify_socket.messages[0] == "READY=1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert "STOPPING=1" in notify_socket.received()
    home = tmp_path / "home"
    for path, mode in ((home, 0o700), (home / "factory.db", 0o600), (home / "admin-token", 0o600)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


@pytest.mark.slow
def test_line_agent_reports_ready_and_pings_while_its_heartbeat_runs(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    env = _serve_env(tmp_path, notify_socket)
    subprocess.run([FACTORY, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([FACTORY, "keys", "init"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [FACTORY, "line", "run", "--simulate", "1x1", "--disk-mib", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: notify_socket.received().count("WATCHDOG=1") >= 2, timeout=60, message="two pings")
        assert notify_socket.messages[0] == "READY=1"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert notify_socket.received()[-1] == "STOPPING=1"
