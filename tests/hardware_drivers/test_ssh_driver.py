"""paramiko driver against real sshd targets: pinning, preflight facts, timeouts, typed errors."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.ports import free_tcp_port
from harness.sshd import SshdTarget, make_client_key, one_sshd_target
from harness.waiting import wait_until

from hardware_drivers.ssh import (
    AuthFailed,
    HostKeyMismatch,
    InvalidPin,
    PinnedHostKey,
    RemoteTimeout,
    Unreachable,
    connect,
    preflight,
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("ssh-driver"), prefix="drv")


def _other_key(tmp_path: Path) -> str:
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def test_preflight_reports_identity_of_the_device(target: SshdTarget) -> None:
    with connect("127.0.0.1", target.port, "root", target.client_key, target.host_key_pub, timeout=10) as session:
        facts = preflight(session, timeout=10, target_root=str(target.root))

    assert facts.host_key_fingerprint == PinnedHostKey.parse(target.host_key_pub).fingerprint
    assert facts.hostname == target.name  # its own UTS namespace
    # The VM has no DMI serial, so the imaging stage's fallback file is used.
    assert (facts.serial, facts.serial_source) == (target.serial, "fallback")
    assert facts.macs == tuple(sorted(target.macs))
    assert facts.disks, "the target's block devices should be listed"
    assert all(d.size_bytes > 0 for d in facts.disks if d.name.startswith(("vd", "sd", "nvme")))


def test_fingerprint_matches_ssh_keygen(target: SshdTarget) -> None:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(target.host_key.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert PinnedHostKey.parse(target.host_key_pub).fingerprint == out.split()[1]


def test_wrong_pin_is_refused_before_authentication(target: SshdTarget, tmp_path: Path) -> None:
    before = target.log_path.read_text()
    with pytest.raises(HostKeyMismatch) as err:
        connect("127.0.0.1", target.port, "root", target.client_key, _other_key(tmp_path), timeout=5)
    assert err.value.offered == PinnedHostKey.parse(target.host_key_pub).fingerprint
    assert "host key mismatch" in str(err.value)
    wait_until(lambda: "[preauth]" in target.log_path.read_text()[len(before) :], 10,
               message="sshd to log the end of the refused connection")  # fmt: skip
    # The client hung up after key exchange: sshd never saw a public key offered.
    assert "Accepted publickey" not in target.log_path.read_text()[len(before) :]


def test_run_returns_rc_stdout_stderr(target: SshdTarget) -> None:
    with connect("127.0.0.1", target.port, "root", target.client_key, target.host_key_pub) as s:
        result = s.run("echo out; echo err >&2; exit 3", timeout=10)
    assert (result.rc, result.stdout) == (3, "out\n")
    # The login shell's rc files may add their own noise to stderr first.
    assert result.stderr.endswith("err\n")
    assert not result.ok


def test_run_times_out(target: SshdTarget) -> None:
    with connect("127.0.0.1", target.port, "root", target.client_key, target.host_key_pub) as s:
        started = time.monotonic()
        with pytest.raises(RemoteTimeout, match=r"exceeded 0\.5s"):
            s.run("sleep 5", timeout=0.5)
        assert time.monotonic() - started < 3
        # The session is still usable after an abandoned command.
        assert s.run("true", timeout=10).ok


def test_auth_failure_is_typed(target: SshdTarget, tmp_path: Path) -> None:
    stranger = make_client_key(tmp_path / "stranger")
    with pytest.raises(AuthFailed):
        connect("127.0.0.1", target.port, "root", stranger, target.host_key_pub, timeout=5)


def test_closed_port_is_unreachable(target: SshdTarget) -> None:
    with pytest.raises(Unreachable):
        connect("127.0.0.1", free_tcp_port(), "root", target.client_key, target.host_key_pub, timeout=2)


@pytest.mark.parametrize(
    "line",
    ["", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 not-base64!", "ssh-ed25519 AAAAB3NzaC1yc2E="],
)
def test_bad_pins_are_rejected(line: str) -> None:
    with pytest.raises(InvalidPin):
        PinnedHostKey.parse(line)
