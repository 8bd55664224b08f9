"""SshCommandRunner pieces that need no guest: dd status parsing, host-key pinning, refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hardware_drivers import ssh
from hardware_drivers.remote_commands import (
    HostKeyMismatch,
    PinnedHostKey,
    RemoteCommandRecord,
    RemoteConnectError,
    RemoteWriteError,
    SshCommandRunner,
    SshTarget,
    dd_bytes_written,
)
from imaging.result import CommandRecord

COREUTILS_STATUS = "64+0 records in\n64+0 records out\n67108864 bytes (67 MB, 64 MiB) copied, 0.598 s, 112 MB/s\n"
BUSYBOX_STATUS = "64+0 records in\n64+0 records out\n"


def _public_line(key: ed25519.Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _private_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "client"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    return path


def test_dd_bytes_from_coreutils_status() -> None:
    assert dd_bytes_written(COREUTILS_STATUS, 1 << 20) == 64 << 20


def test_dd_bytes_from_busybox_full_records() -> None:
    assert dd_bytes_written(BUSYBOX_STATUS, 1 << 20) == 64 << 20


def test_dd_partial_records_without_byte_count_are_refused() -> None:
    with pytest.raises(RemoteWriteError, match="partial record"):
        dd_bytes_written("64+1 records in\n64+1 records out\n", 1 << 20)


def test_dd_without_status_is_refused() -> None:
    with pytest.raises(RemoteWriteError, match="no transfer status"):
        dd_bytes_written("dd: error writing '/dev/sda': No space left on device\n", 512)


def test_pin_is_the_ssh_drivers_pin() -> None:
    """Both SSH drivers parse pins the same way and refuse mismatches with one exception type."""
    assert PinnedHostKey is ssh.PinnedHostKey
    assert issubclass(HostKeyMismatch, ssh.HostKeyMismatch)
    assert issubclass(HostKeyMismatch, RemoteConnectError)
    err = HostKeyMismatch("127.0.0.1:22", "SHA256:pinned", "SHA256:offered")
    assert str(err) == "host key mismatch for 127.0.0.1:22: pinned SHA256:pinned, offered SHA256:offered"


def test_record_type_is_the_imaging_record_field_for_field() -> None:
    fields = ("argv", "returncode", "stdout", "stderr", "started_at", "ended_at")
    assert tuple(RemoteCommandRecord.__dataclass_fields__) == fields
    assert tuple(CommandRecord.__dataclass_fields__) == fields


def _unreachable_target(tmp_path: Path) -> SshTarget:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    pin = PinnedHostKey.parse(_public_line(ed25519.Ed25519PrivateKey.generate()))
    return SshTarget("127.0.0.1", port, "root", _private_key_file(tmp_path), pin, connect_timeout=2)


def test_unreachable_target_is_a_connect_error(tmp_path: Path) -> None:
    runner = SshCommandRunner(_unreachable_target(tmp_path))
    with pytest.raises(RemoteConnectError, match=r"cannot reach 127\.0\.0\.1"):
        runner.run(["true"], 5)


def test_bad_requests_are_refused_before_connecting(tmp_path: Path) -> None:
    runner = SshCommandRunner(_unreachable_target(tmp_path))
    with pytest.raises(ValueError, match="empty argv"):
        runner.run([], 5)
    with pytest.raises(ValueError, match="timeout must be positive"):
        runner.run(["true"], 0)
    with pytest.raises(ValueError, match="multiples of 512"):
        runner.read_range("/dev/sda", 0, 1000)
    with pytest.raises(ValueError, match="exceeds"):
        runner.read_range("/dev/sda", 0, 1 << 30)
    with pytest.raises(ValueError, match="block size"):
        runner.write_pattern("/dev/sda", length=4096, block_size=1000)
    with pytest.raises(ValueError, match="invalid extent"):
        runner.write_pattern("/dev/sda", offset=0, length=0)
