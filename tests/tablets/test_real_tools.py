"""The real tools (Debian adb, libimobiledevice-utils, mmc-utils) through the real command seam.

No tablet is attached to a CI machine, so what the tools really print here is the "no device"
answer: each must become a held identification with the reason, never an identity or an erase.
The tools are required: off CI these tests skip with the reason, in CI they fail (as umockdev's do).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from harness.requirements import require_tool

from imaging.commands import RecordingRunner, SubprocessRunner
from imaging.tablets.identity import probe_android, probe_ipad, probe_windows


@pytest.fixture
def adb_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private adb server port, and the server it starts stopped afterwards."""
    adb = require_tool("adb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", port)
    yield port
    SubprocessRunner().run([adb, "kill-server"], 30)


def test_real_idevice_tools_without_an_ipad() -> None:
    require_tool("idevicepair")
    require_tool("ideviceinfo")
    runner = RecordingRunner(SubprocessRunner())
    probe = probe_ipad(runner, "00008103-001A2B3C4D5E001E")
    assert probe.problem == "the iPad is not reachable over usbmux"
    [record] = runner.records
    assert record.returncode != 0 and "No device found" in record.stdout + record.stderr


def test_real_adb_without_an_android_tablet(adb_port: str) -> None:
    runner = RecordingRunner(SubprocessRunner())
    probe = probe_android(runner, "R52N50ABCDE")
    assert probe.problem == "adb does not list the tablet"
    [record] = runner.records
    assert record.returncode == 0 and record.stdout.startswith("List of devices attached")


def test_real_mmc_on_something_that_is_not_an_emmc() -> None:
    require_tool("mmc")
    runner = RecordingRunner(SubprocessRunner())
    probe = probe_windows(runner, "/dev/null", None)
    assert probe.problem is not None and "Could not read EXT_CSD from /dev/null" in probe.problem
    assert probe.emmc is None
