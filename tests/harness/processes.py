"""Stopping the helper processes tests start (simulators, guests, servers)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:  # type: ignore[type-arg]
    """SIGTERM, then SIGKILL when it has not exited within ``timeout``; the process is always reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
