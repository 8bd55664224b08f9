"""Erases in worker processes (the agent's default): results, refusals, cancellation, a worker
dying mid-task, and no worker outliving a killed agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.disks import assert_every_byte
from harness.waiting import wait_until

from factory.line.erase_workers import EraseWorkers
from imaging.engine import Progress
from imaging.errors import EraseFailure, ProbeError
from imaging.result import Level, VerifyMode

REPO = Path(__file__).resolve().parents[2]
DISK = 4 * 2**20


@pytest.fixture
def workers() -> Iterator[EraseWorkers]:
    pool = EraseWorkers(2)
    pool.start()
    try:
        yield pool
    finally:
        pool.close()


def _disk(tmp_path: Path, name: str = "disk.img") -> Path:
    path = tmp_path / name
    path.write_bytes(b"OFFICER DATA " * (DISK // 13) + b"x" * (DISK % 13))
    return path


def test_erase_in_a_worker_overwrites_the_disk_and_reports_progress_on_the_callers_thread(
    workers: EraseWorkers, tmp_path: Path
) -> None:
    disk = _disk(tmp_path)
    seen: list[tuple[str, str]] = []

    def progress(p: Progress) -> None:
        seen.append((p.phase, threading.current_thread().name))

    result = workers(str(disk), level=Level.CLEAR, verify=VerifyMode.SAMPLE, progress=progress)
    assert result.ok and result.verification is not None and result.verification.passed
    assert disk.stat().st_size == DISK and (result.method, result.pattern) == ("overwrite-random", "random")
    assert_every_byte(str(disk), DISK, "random", result.pattern_seed_hex)
    assert {phase for phase, _ in seen} >= {"write", "verify"}
    assert {name for _, name in seen} == {threading.current_thread().name}
    assert all(pid != os.getpid() for pid in workers.pids)


def test_a_refusal_before_writing_is_raised_in_the_caller(workers: EraseWorkers, tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match=r"missing\.img"):
        workers(str(tmp_path / "missing.img"), level=Level.CLEAR, verify=VerifyMode.SAMPLE)


def test_a_cancelled_erase_fails_closed(workers: EraseWorkers, tmp_path: Path) -> None:
    disk = _disk(tmp_path)
    cancel = threading.Event()
    cancel.set()
    result = workers(str(disk), level=Level.CLEAR, verify=VerifyMode.SAMPLE, cancel=cancel)
    assert not result.ok
    assert result.failure_reason and "cancelled" in result.failure_reason


def test_a_worker_that_dies_with_an_erase_pending_fails_it_and_is_replaced(
    workers: EraseWorkers, tmp_path: Path
) -> None:
    disk = _disk(tmp_path)
    victims = workers.pids
    for pid in victims:  # frozen: whichever worker gets the erase holds it without starting it
        os.kill(pid, signal.SIGSTOP)
    outcome: list[BaseException | object] = []

    def call() -> None:
        try:
            outcome.append(workers(str(disk), level=Level.CLEAR, verify=VerifyMode.SAMPLE))
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    # Sent, not merely assigned: killed before the send, the erase would go to a fresh worker.
    wait_until(lambda: workers.in_flight > 0, 20, 0.01, message="the erase to be sent to a frozen worker")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    caller.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], EraseFailure), outcome
    assert "outcome unknown" in str(outcome[0])
    assert disk.read_bytes().count(0) == 0, "a frozen worker wrote nothing"
    # Both victims are replaced. Wait for it: an idle victim's death is noticed by its reader, and
    # an erase handed to a worker that died unnoticed fails closed ("outcome unknown") by design.
    wait_until(lambda: not set(workers.pids) & set(victims), 20, 0.01, message="both dead workers to be replaced")
    result = workers(str(disk), level=Level.CLEAR, verify=VerifyMode.SAMPLE)
    assert result.ok


AGENT = textwrap.dedent(
    """
    import sys, time
    from factory.line.erase_workers import EraseWorkers
    pool = EraseWorkers(2)
    pool.start()
    print(" ".join(map(str, pool.pids)), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead, merely not yet reaped
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_exit_when_their_agent_is_killed() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    agent = subprocess.Popen([sys.executable, "-c", AGENT], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None
        pids = [int(p) for p in agent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        agent.send_signal(signal.SIGKILL)  # the agent only, not its process group
        agent.wait(timeout=10)
        wait_until(lambda: not any(_alive(p) for p in pids), 20, message="the erase workers to exit with their agent")
        assert not any(_alive(p) for p in pids), "an erase worker outlived its agent"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
