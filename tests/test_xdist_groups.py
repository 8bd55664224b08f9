"""The slow pass's guarantee that QEMU guests boot one at a time: every module that boots one
is in the scheduler's one group, and nothing else is."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.xdist_groups import GUEST_GROUP, ModuleGroupScheduling, boots_guests

REPO = Path(__file__).resolve().parents[1]
GUEST_BOOTERS = ("booted_guest(", "qemu_guest(", "build_guest_image(", "netboot_laptop")


def _modules_that_boot_guests() -> set[str]:
    found = set()
    for module in (REPO / "tests").rglob("test_*.py"):
        if module.resolve() != Path(__file__).resolve() and any(c in module.read_text() for c in GUEST_BOOTERS):
            found.add(str(module.relative_to(REPO)))
    return found


def test_every_module_that_boots_a_guest_is_in_the_group() -> None:
    booting = _modules_that_boot_guests()
    assert booting, "no module boots a guest: the search above is out of date"
    assert {m for m in booting if not boots_guests(REPO / m)} == set()


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("tests/sanitisation/test_remote_erase.py::test_nvme_remote_erase_clears_by_format_and_certifies", GUEST_GROUP),
        ("tests/netboot/test_netboot_e2e.py::test_a[postgresql]", GUEST_GROUP),
        ("tests/line/test_claim_limits.py::test_a[sqlite]", "tests/line/test_claim_limits.py::test_a[sqlite]"),
    ],
)
def test_the_scheduler_puts_guest_modules_in_one_scope_and_others_on_their_own(
    pytestconfig: pytest.Config, nodeid: str, scope: str
) -> None:
    scheduler = object.__new__(ModuleGroupScheduling)  # its __init__ wants a live xdist session
    scheduler.config = pytestconfig
    assert scheduler._split_scope(nodeid) == scope
