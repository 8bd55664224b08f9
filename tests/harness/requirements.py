"""Skip-or-fail for tests that need root, loop devices, FUSE, namespaces, sshd or a tool.

Off CI they skip with the stated reason; in CI (CI=true) they fail: CI never skips them.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` is false, except in CI where it is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (loop devices, FUSE, namespaces, sshd)")


def require_tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    require(path is not None, f"needs the '{name}' tool (installed by scripts/setup.sh)")
    assert path is not None
    return path
