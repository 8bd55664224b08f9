"""The QEMU guest harness fails loudly, with the guest's console, when the guest cannot come up."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from harness.qemu_guest import ONE_GUEST_AT_A_TIME, GuestBootError, build_guest_image, pattern_bytes, qemu_guest
from harness.requirements import require_root, require_tool

pytestmark = [pytest.mark.root, ONE_GUEST_AT_A_TIME]


def test_pattern_is_continuous_and_has_no_zero_byte() -> None:
    whole = pattern_bytes(0, 4096)
    assert 0 not in whole
    assert pattern_bytes(5, 100) == whole[5:105]
    assert pattern_bytes(4000, 96) == whole[4000:]


@pytest.mark.slow  # boots QEMU on a broken image
def test_boot_failure_reports_the_serial_console(tmp_path) -> None:
    require_root()
    require_tool("qemu-system-x86_64")
    image = build_guest_image()
    # An initramfs with nothing in it: the kernel finds no init and panics (panic=-1, -no-reboot).
    empty = tmp_path / "empty.cpio"
    empty.write_bytes(
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=b"", capture_output=True, check=True).stdout
    )
    broken = dataclasses.replace(image, initramfs=empty)
    with pytest.raises(GuestBootError) as caught:
        with qemu_guest(tmp_path / "guest", broken, boot_timeout=90):
            pytest.fail("a guest without init must not come up")
    message = str(caught.value)
    assert "QEMU exited" in message
    assert "Kernel panic" in message  # the console tail is part of the error
    assert not _processes_mentioning(str(tmp_path / "guest")), "QEMU was left running"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(proc.name))
    return found
