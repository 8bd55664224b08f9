"""Imaging test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.requirements import require, require_root, require_tool


@pytest.fixture
def fuse_ready() -> None:
    """Skip (fail on CI) unless the fault-injecting FUSE image can run: root, losetup, fusermount, fusepy."""
    require_root()
    require_tool("losetup")
    require_tool("fusermount")
    require(Path("/dev/fuse").exists(), "needs /dev/fuse")
    pytest.importorskip("fuse", reason="needs fusepy")
