"""Run storage tools on a device booted into the service environment, over SSH.

``SshCommandRunner`` honours the same contract as the imaging engine's command seam
(``run(argv, timeout) -> CommandRecord``): the same fields, a C locale, ``TIMED_OUT`` (-9) with
"timed out after Ns" appended to stderr when the deadline passes, and 127 when the tool is missing.
This package may not import ``imaging`` (sibling layers), so the record type is injected:
``SshCommandRunner(target, record_factory=imaging.result.CommandRecord)`` returns the engine's own
records; without it the runner returns the field-for-field identical ``RemoteCommandRecord``.

The host key is pinned (``ssh.PinnedHostKey``, shared with the SSH driver): the server must present
exactly the pinned key before any credential is sent, otherwise ``HostKeyMismatch`` is raised.
There is no trust-on-first-use path.

``read_range`` and ``write_pattern`` use the device's own ``dd`` (O_DIRECT, so the page cache can
neither hide nor fake what is on the medium) for read-back verification and overwrites.
"""

from __future__ import annotations

import math
import re
import select
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar, overload

import paramiko

from hardware_drivers import ssh
from hardware_drivers.ssh import PinnedHostKey, fingerprint_of

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
_DIRECT_IO_ALIGNMENT = 512
MAX_READ_BYTES = 256 << 20


class RemoteCommandError(Exception):
    """Base of every error this module raises on purpose."""


class RemoteConnectError(RemoteCommandError):
    """The service environment could not be reached, or the SSH session failed."""


class HostKeyMismatch(RemoteConnectError, ssh.HostKeyMismatch):
    """The server did not present the pinned host key; nothing was sent to it.

    Also an ``ssh.HostKeyMismatch``: one ``except`` catches a refused pin from either driver.
    """


class RemoteAuthError(RemoteConnectError):
    """The server refused the client key, or the key file could not be loaded."""


class RemoteTimeout(RemoteCommandError):
    """A transfer (read-back or overwrite) did not finish within its timeout."""


class RemoteReadError(RemoteCommandError):
    """A read-back failed or returned a different number of bytes than asked for."""


class RemoteWriteError(RemoteCommandError):
    """An overwrite failed or did not write every byte it was asked to."""


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


def _fingerprint(key: paramiko.PKey) -> str:
    return fingerprint_of(key.asbytes())


@dataclass(frozen=True)
class SshTarget:
    """Where a device's service environment listens, and what it must prove to be."""

    host: str
    port: int
    username: str
    client_key_path: Path
    host_key: PinnedHostKey
    connect_timeout: float = 15.0
    keepalive_seconds: int = 15


class RemotePattern(StrEnum):
    """What an overwrite writes, by the kernel source the device's dd reads it from."""

    ZEROS = "zeros"
    RANDOM = "random"  # unverifiable by read-back: follow it with a ZEROS pass when verifying

    @property
    def source(self) -> str:
        return {RemotePattern.ZEROS: "/dev/zero", RemotePattern.RANDOM: "/dev/urandom"}[self]


@dataclass(frozen=True)
class WriteReport(Generic[R]):
    """One overwrite of ``[offset, offset + length)`` and the records of the dd runs that did it."""

    device: str
    pattern: RemotePattern
    offset: int
    length: int
    bytes_written: int
    seconds: float
    records: tuple[R, ...]


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
            self._transport = self._open_transport()

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

    def _open_transport(self) -> paramiko.Transport:
        target = self.target
        try:
            pkey = paramiko.PKey.from_path(target.client_key_path)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise RemoteAuthError(f"cannot load client key {target.client_key_path}: {exc}") from exc
        where = f"{target.host}:{target.port}"
        try:
            sock = socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
        except OSError as exc:
            raise RemoteConnectError(f"cannot reach {where}: {exc}") from exc
        transport = paramiko.Transport(sock)
        try:
            transport.get_security_options().key_types = target.host_key.algorithms
            try:
                transport.start_client(timeout=target.connect_timeout)
            except paramiko.SSHException as exc:
                if "host key" in str(exc).lower():
                    raise HostKeyMismatch(
                        where, target.host_key.fingerprint, f"no {target.host_key.key_type} host key"
                    ) from exc
                raise RemoteConnectError(f"SSH handshake with {where} failed: {exc}") from exc
            presented = transport.get_remote_server_key()
            if presented.get_name() != target.host_key.key_type or presented.asbytes() != target.host_key.blob:
                raise HostKeyMismatch(where, target.host_key.fingerprint, _fingerprint(presented))
            try:
                transport.auth_publickey(target.username, pkey)
            except paramiko.AuthenticationException as exc:
                raise RemoteAuthError(f"{where} refused key auth for {target.username}: {exc}") from exc
            except paramiko.SSHException as exc:
                raise RemoteConnectError(f"SSH authentication with {where} failed: {exc}") from exc
            transport.set_keepalive(target.keepalive_seconds)
            return transport
        except BaseException:
            transport.close()
            raise

    def _session(self) -> paramiko.Channel:
        self.connect()
        assert self._transport is not None
        try:
            return self._transport.open_session(timeout=self.target.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise RemoteConnectError(f"cannot open a session on {self.target.host}:{self.target.port}: {exc}") from exc

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
        channel = self._session()
        out = bytearray()
        err = bytearray()
        started = time.monotonic()
        deadline = started + timeout + _TIMEOUT_GRACE_SECONDS
        try:
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
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise RemoteConnectError(f"SSH session to {self.target.host} failed: {exc}") from exc
        finally:
            channel.close()
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
                f"blockdev --getsize64 {device} failed (status {result.returncode}): "
                f"{_last_line(result.stderr) or text}"
            )
        return int(text)

    def read_range(self, device: str, offset: int, length: int, *, timeout: float = 60.0) -> bytes:
        """Exactly ``length`` bytes of ``device`` from ``offset``, read with O_DIRECT.

        Offset and length must be multiples of 512 (direct I/O); a 4Kn device needs multiples of 4096
        and otherwise fails with the device's own EINVAL.
        """
        _check_extent(offset, length)
        if length > MAX_READ_BYTES:
            raise ValueError(f"read of {length} bytes exceeds the {MAX_READ_BYTES}-byte limit per call")
        block = min(length, 1 << 20)
        argv = (
            self.dd_path,
            f"if={device}",
            f"bs={block}",
            f"skip={offset}",
            f"count={length}",
            "iflag=skip_bytes,count_bytes,direct,fullblock",
        )
        result = self._exec(argv, timeout, stdout_limit=length)
        where = f"{device} [{offset}, +{length})"
        if result.timed_out:
            raise RemoteTimeout(f"read of {where} did not finish within {timeout:g}s")
        if result.overflowed:
            raise RemoteReadError(f"read of {where} returned more than {length} bytes")
        if result.returncode != 0:
            raise RemoteReadError(f"read of {where} failed (status {result.returncode}): {_last_line(result.stderr)}")
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
    ) -> WriteReport[R]:
        """Overwrite ``[offset, offset + length)`` (default: to the end) with the device's own dd.

        Writes use O_DIRECT and end with an fsync, so success means the device acknowledged every
        byte. The byte count comes from dd's own status lines and must equal the request.
        """
        if block_size <= 0 or block_size % _DIRECT_IO_ALIGNMENT:
            raise ValueError(f"block size must be a positive multiple of {_DIRECT_IO_ALIGNMENT}")
        began = time.monotonic()
        if length is None:
            length = self.device_size(device, timeout=min(timeout, 30.0)) - offset
        _check_extent(offset, length)
        # Whole blocks first, then the remainder as one block: every dd run then reports only full
        # records, which gives its byte count even from a dd that prints no "bytes copied" line.
        body = length - length % block_size
        runs = [(offset, body, block_size)] if body else []
        if length % block_size:
            runs.append((offset + body, length % block_size, length % block_size))
        records: list[R] = []
        written = 0
        for run_offset, run_length, run_block in runs:
            remaining = timeout - (time.monotonic() - began)
            if remaining <= 0:
                raise RemoteTimeout(f"overwrite of {device} did not finish within {timeout:g}s")
            argv = (
                self.dd_path,
                f"if={pattern.source}",
                f"of={device}",
                f"bs={run_block}",
                f"seek={run_offset}",
                f"count={run_length}",
                "iflag=count_bytes,fullblock",
                "oflag=seek_bytes,direct",
                "conv=notrunc,fsync",
            )
            started = utc_now()
            result = self._exec(argv, remaining)
            stderr = result.stderr.decode(errors="replace")
            record = self._make_record(
                argv,
                TIMED_OUT if result.timed_out else result.returncode,
                result.stdout.decode(errors="replace"),
                stderr,
                started,
                utc_now(),
            )
            records.append(record)
            where = f"{device} [{run_offset}, +{run_length})"
            if result.timed_out:
                raise RemoteTimeout(f"overwrite of {where} did not finish within {timeout:g}s")
            if result.returncode != 0:
                raise RemoteWriteError(
                    f"overwrite of {where} failed (status {result.returncode}): {_last_line(result.stderr)}"
                )
            copied = dd_bytes_written(stderr, run_block)
            if copied != run_length:
                raise RemoteWriteError(f"overwrite of {where} wrote {copied} bytes, expected {run_length}")
            written += copied
        return WriteReport(device, pattern, offset, length, written, time.monotonic() - began, tuple(records))


_BYTES_COPIED = re.compile(r"^(\d+) bytes\b", re.MULTILINE)
_RECORDS_OUT = re.compile(r"^(\d+)\+(\d+) records out", re.MULTILINE)


def dd_bytes_written(status: str, block_size: int) -> int:
    """Bytes written according to dd's status lines (coreutils or busybox).

    coreutils prints "N bytes (...) copied"; busybox may print only "F+P records out", which gives a
    byte count only when there are no partial records.
    """
    copied = _BYTES_COPIED.findall(status)
    if copied:
        return int(copied[-1])
    records = _RECORDS_OUT.findall(status)
    if not records:
        raise RemoteWriteError(f"dd printed no transfer status: {status.strip()[-200:]!r}")
    full, partial = (int(n) for n in records[-1])
    if partial:
        raise RemoteWriteError(f"dd wrote {partial} partial record(s) and printed no byte count")
    return full * block_size


def _check_extent(offset: int, length: int) -> None:
    if offset < 0 or length <= 0:
        raise ValueError(f"invalid extent: offset {offset}, length {length}")
    if offset % _DIRECT_IO_ALIGNMENT or length % _DIRECT_IO_ALIGNMENT:
        raise ValueError(f"offset and length must be multiples of {_DIRECT_IO_ALIGNMENT} for direct I/O")


def _last_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""
