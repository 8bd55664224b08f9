"""Run storage tools on a device booted into the service environment, over SSH.

``SshCommandRunner`` honours the same contract as the imaging engine's command seam
(``run(argv, timeout) -> CommandRecord``): the same fields, a C locale, ``TIMED_OUT`` (-9) with
"timed out after Ns" appended to stderr when the deadline passes, and 127 when the tool is missing.
This package may not import ``imaging`` (sibling layers), so the record type is injected:
``SshCommandRunner(target, record_factory=imaging.result.CommandRecord)`` returns the engine's own
records; without it the runner returns the field-for-field identical ``RemoteCommandRecord``.

The host key is pinned (``ssh.PinnedHostKey``, shared with the SSH driver; see ``ssh_transport``):
the server must present exactly the pinned key before any credential is sent, otherwise
``HostKeyMismatch`` is raised. There is no trust-on-first-use path. Errors live in ``ssh_errors``
and are re-exported here.

``read_range`` and ``write_pattern`` use the device's own ``dd`` (O_DIRECT, so the page cache can
neither hide nor fake what is on the medium) for read-back verification and overwrites; the dd
argv and status parsing are in ``dd_transfer``.
"""

from __future__ import annotations

import contextlib
import math
import select
import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar, overload

import paramiko

from hardware_drivers.dd_transfer import (
    DIRECT_IO_ALIGNMENT,
    MAX_READ_BYTES,
    RemotePattern,
    WriteReport,
    check_extent,
    dd_bytes_written,
    keystream_write_argv,
    last_line,
    read_argv,
    write_argv,
    write_runs,
)
from hardware_drivers.ssh import PinnedHostKey
from hardware_drivers.ssh_errors import (
    HostKeyMismatch,
    RemoteAuthError,
    RemoteCommandError,
    RemoteConnectError,
    RemoteReadError,
    RemoteTimeout,
    RemoteWriteError,
)
from hardware_drivers.ssh_transport import SshTarget, open_pinned_transport

# Re-exported: callers import the runner's whole vocabulary from this module.
__all__ = [
    "MAX_READ_BYTES",
    "NOT_FOUND",
    "SIGKILL_STATUS",
    "TIMED_OUT",
    "HostKeyMismatch",
    "PinnedHostKey",
    "RecordFactory",
    "RemoteAuthError",
    "RemoteCommandError",
    "RemoteCommandRecord",
    "RemoteConnectError",
    "RemotePattern",
    "RemoteReadError",
    "RemoteTimeout",
    "RemoteWriteError",
    "SshCommandRunner",
    "SshTarget",
    "WriteReport",
    "dd_bytes_written",
    "utc_now",
]

# Same values as imaging.commands, so records read the same whichever runner produced them.
TIMED_OUT = -9
NOT_FOUND = 127
SIGKILL_STATUS = 128 + 9  # what `timeout -s KILL` leaves when it had to kill the tool

# Tools live in sbin directories that a service account's PATH may lack; the locale is fixed so
# the output parses the same everywhere.
_REMOTE_ENV = "LC_ALL=C LANG=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_POLL_SECONDS = 0.05
_READ_CHUNK = 1 << 16
# Time allowed beyond the remote `timeout` for its SIGKILL and the exit status to come back.
_TIMEOUT_GRACE_SECONDS = 5.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RemoteCommandRecord:
    """Field-for-field the same as ``imaging.result.CommandRecord``."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started_at: str
    ended_at: str


R = TypeVar("R", covariant=True)


class RecordFactory(Protocol[R]):
    def __call__(
        self,
        argv: tuple[str, ...],
        returncode: int,
        stdout: str,
        stderr: str,
        started_at: str,
        ended_at: str,
    ) -> R: ...


@dataclass(frozen=True)
class _Exit:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflowed: bool


class SshCommandRunner(Generic[R]):
    """Runs argv on the target over one pinned, key-authenticated SSH connection (opened lazily)."""

    @overload
    def __init__(self: SshCommandRunner[RemoteCommandRecord], target: SshTarget, *, dd_path: str = ...) -> None: ...

    @overload
    def __init__(self, target: SshTarget, *, record_factory: RecordFactory[R], dd_path: str = ...) -> None: ...

    def __init__(
        self,
        target: SshTarget,
        *,
        record_factory: RecordFactory[R] | None = None,
        dd_path: str = "/bin/dd",
    ) -> None:
        self.target = target
        self._make_record: RecordFactory[R] = record_factory or RemoteCommandRecord  # type: ignore[assignment]
        # An absolute path: a busybox shell that prefers its applets would otherwise run busybox
        # dd, whose status lines carry no byte count.
        self.dd_path = dd_path
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> None:
        with self._lock:
            if self._transport is not None and self._transport.is_active():
                return
            self._transport = open_pinned_transport(self.target)

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def __enter__(self) -> SshCommandRunner[R]:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self) -> paramiko.Channel:
        self.connect()
        assert self._transport is not None
        try:
            return self._transport.open_session(timeout=self.target.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise RemoteConnectError(f"cannot open a session on {self.target.host}:{self.target.port}: {exc}") from exc

    @contextlib.contextmanager
    def _channel(self, during: str = "") -> Iterator[paramiko.Channel]:
        """A session channel, closed after use. The connection fails with it: a transport error
        inside closes the connection (the next call reconnects) and raises ``RemoteConnectError``
        saying what was under way (``during``)."""
        channel = self._session()
        try:
            yield channel
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise RemoteConnectError(f"SSH session to {self.target.host} failed{during}: {exc}") from exc
        finally:
            channel.close()

    # -- command execution -------------------------------------------------------------------

    def _exec(self, argv: Sequence[str], timeout: float, *, stdout_limit: int | None = None) -> _Exit:
        """Run argv under the remote `timeout`, collecting both streams as bytes until it exits."""
        if not argv:
            raise ValueError("empty argv")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        # The remote `timeout` kills the tool itself; closing our channel alone would leave it running.
        # The trailing `exit $?` keeps the shell from exec'ing the last command, so a tool killed by a
        # signal still yields an exit status (128 + signal) instead of an exit-signal paramiko drops.
        command = f"{_REMOTE_ENV} timeout -s KILL {math.ceil(timeout)} {shlex.join(argv)}; exit $?"
        with self._channel() as channel:
            out = bytearray()
            err = bytearray()
            started = time.monotonic()
            deadline = started + timeout + _TIMEOUT_GRACE_SECONDS
            channel.exec_command(command)
            channel.shutdown_write()
            while True:
                progressed = False
                while channel.recv_ready():
                    out += channel.recv(_READ_CHUNK)
                    progressed = True
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(_READ_CHUNK)
                    progressed = True
                if stdout_limit is not None and len(out) > stdout_limit:
                    return _Exit(-1, bytes(out), bytes(err), timed_out=False, overflowed=True)
                # EOF marks both streams complete (a server may send the exit status before it has
                # drained the tool's pipes); a closed channel without it means the session died.
                done = channel.exit_status_ready() and channel.eof_received
                if (done or channel.closed) and not progressed:
                    break
                if time.monotonic() >= deadline:
                    return _Exit(TIMED_OUT, bytes(out), bytes(err), timed_out=True, overflowed=False)
                if not progressed:
                    # The channel's pipe wakes us for stdout; stderr and exit status are polled.
                    select.select([channel], [], [], _POLL_SECONDS)
            status = channel.recv_exit_status()
        if status == -1:
            if self._transport is None or not self._transport.is_active():
                self.close()
                raise RemoteConnectError(f"SSH connection to {self.target.host} dropped during {argv[0]}")
            raise RemoteConnectError(f"{self.target.host} reported no exit status for {argv[0]}")
        timed_out = status == SIGKILL_STATUS and time.monotonic() - started >= timeout
        return _Exit(status, bytes(out), bytes(err), timed_out=timed_out, overflowed=False)

    def run(self, argv: Sequence[str], timeout: float) -> R:
        """Run argv on the target; a non-zero status is returned, not raised (the seam's contract)."""
        argv = tuple(argv)
        started = utc_now()
        result = self._exec(argv, timeout)
        stdout = result.stdout.decode(errors="replace")
        stderr = result.stderr.decode(errors="replace")
        if result.timed_out:
            return self._make_record(
                argv, TIMED_OUT, stdout, stderr + f"\ntimed out after {timeout:g}s", started, utc_now()
            )
        return self._make_record(argv, result.returncode, stdout, stderr, started, utc_now())

    # -- device data -------------------------------------------------------------------------

    def device_size(self, device: str, timeout: float = 30.0) -> int:
        """Size of a block device in bytes, as the target's kernel reports it."""
        result = self._exec(("blockdev", "--getsize64", device), timeout)
        text = result.stdout.decode(errors="replace").strip()
        if result.returncode != 0 or not text.isdigit():
            raise RemoteReadError(
                f"blockdev --getsize64 {device} failed (status {result.returncode}): {last_line(result.stderr) or text}"
            )
        return int(text)

    def read_range(self, device: str, offset: int, length: int, *, timeout: float = 60.0) -> bytes:
        """Exactly ``length`` bytes of ``device`` from ``offset``, read with O_DIRECT.

        Offset and length must be multiples of 512 (direct I/O); a 4Kn device needs multiples of 4096
        and otherwise fails with the device's own EINVAL.
        """
        check_extent(offset, length)
        if length > MAX_READ_BYTES:
            raise ValueError(f"read of {length} bytes exceeds the {MAX_READ_BYTES}-byte limit per call")
        result = self._exec(read_argv(self.dd_path, device, offset, length), timeout, stdout_limit=length)
        where = f"{device} [{offset}, +{length})"
        if result.timed_out:
            raise RemoteTimeout(f"read of {where} did not finish within {timeout:g}s")
        if result.overflowed:
            raise RemoteReadError(f"read of {where} returned more than {length} bytes")
        if result.returncode != 0:
            raise RemoteReadError(f"read of {where} failed (status {result.returncode}): {last_line(result.stderr)}")
        if len(result.stdout) != length:
            raise RemoteReadError(f"read of {where} returned {len(result.stdout)} bytes (end of device?)")
        return result.stdout

    def write_pattern(
        self,
        device: str,
        *,
        pattern: RemotePattern = RemotePattern.ZEROS,
        offset: int = 0,
        length: int | None = None,
        block_size: int = 1 << 20,
        timeout: float = 3600.0,
        key: bytes | None = None,
    ) -> WriteReport[R]:
        """Overwrite ``[offset, offset + length)`` (default: to the end) with the device's own dd.

        With ``key`` the bytes are the AES-256-CTR keystream of that key (``keystream_write_argv``),
        which a read-back can check; otherwise ``pattern``'s kernel source. Writes use O_DIRECT and
        end with an fsync, so success means the device acknowledged every byte. The byte count
        comes from dd's own status lines and must equal the request.
        """
        if block_size <= 0 or block_size % DIRECT_IO_ALIGNMENT:
            raise ValueError(f"block size must be a positive multiple of {DIRECT_IO_ALIGNMENT}")
        began = time.monotonic()
        if length is None:
            length = self.device_size(device, timeout=min(timeout, 30.0)) - offset
        check_extent(offset, length)
        records: list[R] = []
        written = 0
        for run_offset, run_length, run_block in write_runs(offset, length, block_size):
            remaining = timeout - (time.monotonic() - began)
            if remaining <= 0:
                raise RemoteTimeout(f"overwrite of {device} did not finish within {timeout:g}s")
            if key is not None:
                argv = keystream_write_argv(self.dd_path, key, device, run_offset, run_length, run_block)
            else:
                argv = write_argv(self.dd_path, pattern, device, run_offset, run_length, run_block)
            where = f"{device} [{run_offset}, +{run_length})"
            written += self._write_run(argv, where, run_length, run_block, remaining, timeout, records)
        return WriteReport(device, pattern, offset, length, written, time.monotonic() - began, tuple(records))

    def _write_run(
        self,
        argv: tuple[str, ...],
        where: str,
        length: int,
        block: int,
        remaining: float,
        timeout: float,
        records: list[R],
    ) -> int:
        """One dd run of an overwrite: its record goes to ``records`` even when it fails."""
        started = utc_now()
        result = self._exec(argv, remaining)
        stderr = result.stderr.decode(errors="replace")
        status = TIMED_OUT if result.timed_out else result.returncode
        records.append(
            self._make_record(argv, status, result.stdout.decode(errors="replace"), stderr, started, utc_now())
        )
        if result.timed_out:
            raise RemoteTimeout(f"overwrite of {where} did not finish within {timeout:g}s")
        if result.returncode != 0:
            raise RemoteWriteError(
                f"overwrite of {where} failed (status {result.returncode}): {last_line(result.stderr)}"
            )
        copied = dd_bytes_written(stderr, block)
        if copied != length:
            raise RemoteWriteError(f"overwrite of {where} wrote {copied} bytes, expected {length}")
        return copied
