"""Shared plumbing for the line tests: agent subprocesses and the physical checks on sim disks."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from sqlmodel import Session, col
from sqlmodel import select as sql_select

from factory.kernel.models.certificate import Certificate
from factory.kernel.models.device import Device, StorageMedium
from harness.disks import expected_bytes

REPO = Path(__file__).resolve().parents[2]
ERASED_STATES = ("sanitised", "provisioning", "ready", "provision_failed")


def agent_env(home: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FACTORY_HOME=str(home), FACTORY_DATABASE_URL=database_url, PYTHONPATH=str(REPO))
    env["FACTORY_ORGANISATION"] = "Test Constabulary"  # a real line refuses the placeholder name
    return env


def start_agent(home: Path, database_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "factory.cli.line_cmd", "run", *args],
        cwd=REPO,
        env=agent_env(home, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_started(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """Block until the agent printed its start line (reconciliation done)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("agent "):
                return line
            if not line and proc.poll() is not None:
                break
    stderr = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(f"agent did not start (rc={proc.poll()}): {stderr[-2000:]}")


def kill9(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def disks_by_serial(home: Path) -> dict[str, Path]:
    return {p.stem: p for p in (home / "sim").glob("bench-*/slot-*/*.img")}


def holds_certified_pattern(session: Session, medium_serial: str, disk: Path) -> bool:
    """The disk holds, byte for byte, the pattern its latest certificate records (a random one
    regenerated from the recorded key): the line's default overwrite is random, not zeros."""
    certificate = session.exec(
        sql_select(Certificate)
        .where(Certificate.medium_serial == medium_serial)
        .order_by(col(Certificate.erase_round_seq).desc())
    ).first()
    if certificate is None:
        return False
    done = orjson.loads(certificate.envelope)["certificate"]["sanitisation"]
    data = np.frombuffer(disk.read_bytes(), dtype=np.uint8)
    return bool(np.array_equal(data, expected_bytes(done["pattern"], done["pattern_seed_hex"], 0, data.size)))


def erased_disk_problems(session: Session, home: Path) -> list[str]:
    """Every disk still in a slot whose device the evidence says was erased really holds the pattern
    its certificate records."""
    disks = disks_by_serial(home)
    problems = []
    rows = session.exec(
        sql_select(Device, StorageMedium)
        .join(StorageMedium, StorageMedium.device_id == Device.id)  # type: ignore[arg-type]
        .where(Device.state.in_(ERASED_STATES), Device.user_data_since_seq.is_not(None))  # type: ignore[union-attr]
    ).all()
    for device, medium in rows:
        path = disks.get(medium.serial)
        if path is None:
            continue
        if not holds_certified_pattern(session, medium.serial, path):
            problems.append(f"{device.serial} is '{device.state}' but disk {medium.serial} still holds data")
    return problems
