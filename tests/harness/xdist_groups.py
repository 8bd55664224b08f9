"""``--dist loadgroup`` whose groups take effect under pytest 9.2.

pytest-xdist 3.8 puts a test in its ``xdist_group`` by appending ``@group`` to ``item._nodeid`` on
the worker; pytest 9.2 derives ``item.nodeid`` from its structured id instead, so the suffix never
reaches the scheduler and every test is scheduled on its own (two QEMU guests then boot at once).
This scheduler reads the one group we rely on from the module itself: a test module whose
``pytestmark`` carries ``harness.qemu_guest.ONE_GUEST_AT_A_TIME`` runs, whole, on one worker, after
the other such modules. The scheduler runs in the controlling process, which collects nothing and
sees only node ids, hence the module's text rather than its marks.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from xdist.scheduler import LoadGroupScheduling

GUEST_GROUP = "qemu-guests"
GUEST_MARK_NAME = "ONE_GUEST_AT_A_TIME"


@functools.cache
def boots_guests(module: Path) -> bool:
    """The module marks itself as booting QEMU guests (its ``pytestmark`` names the mark)."""
    try:
        text = module.read_text()
    except OSError:
        return False
    return any(line.startswith("pytestmark") and GUEST_MARK_NAME in line for line in text.splitlines())


class ModuleGroupScheduling(LoadGroupScheduling):
    """loadgroup, with the guest-booting modules in one group."""

    def _split_scope(self, nodeid: str) -> str:
        if boots_guests(self.config.rootpath / nodeid.split("::", 1)[0]):
            return GUEST_GROUP
        return super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadGroupScheduling | None:
    if config.getvalue("dist") != "loadgroup":
        return None  # xdist's own scheduler for the mode asked for
    return ModuleGroupScheduling(config, log)  # type: ignore[arg-type]
