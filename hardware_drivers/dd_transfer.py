"""The device's own ``dd``, as the remote command runner drives it: argv for read-backs and
overwrites, how an overwrite is cut into runs, and what dd's status lines say was written.

Pure functions over numbers and text; running them over SSH is ``remote_commands``' job.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from hardware_drivers.ssh_errors import RemoteWriteError

DIRECT_IO_ALIGNMENT = 512
MAX_READ_BYTES = 256 << 20
_READ_BLOCK = 1 << 20

_BYTES_COPIED = re.compile(r"^(\d+) bytes\b", re.MULTILINE)
_RECORDS_OUT = re.compile(r"^(\d+)\+(\d+) records out", re.MULTILINE)

R = TypeVar("R", covariant=True)


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


def read_argv(dd_path: str, device: str, offset: int, length: int) -> tuple[str, ...]:
    """dd reading exactly ``length`` bytes from ``offset`` with O_DIRECT, to stdout."""
    return (
        dd_path,
        f"if={device}",
        f"bs={min(length, _READ_BLOCK)}",
        f"skip={offset}",
        f"count={length}",
        "iflag=skip_bytes,count_bytes,direct,fullblock",
    )


def write_runs(offset: int, length: int, block_size: int) -> list[tuple[int, int, int]]:
    """``(offset, length, block size)`` of each dd run that overwrites ``[offset, offset + length)``.

    Whole blocks first, then the remainder as one block: every dd run then reports only full
    records, which gives its byte count even from a dd that prints no "bytes copied" line.
    """
    body = length - length % block_size
    runs = [(offset, body, block_size)] if body else []
    if length % block_size:
        runs.append((offset + body, length % block_size, length % block_size))
    return runs


def write_argv(
    dd_path: str, pattern: RemotePattern, device: str, offset: int, length: int, block: int
) -> tuple[str, ...]:
    """dd writing ``pattern`` over one run with O_DIRECT, ending with an fsync."""
    return (
        dd_path,
        f"if={pattern.source}",
        f"of={device}",
        f"bs={block}",
        f"seek={offset}",
        f"count={length}",
        "iflag=count_bytes,fullblock",
        "oflag=seek_bytes,direct",
        "conv=notrunc,fsync",
    )


AES_BLOCK = 16


def keystream_write_argv(
    dd_path: str, key: bytes, device: str, offset: int, length: int, block: int
) -> tuple[str, ...]:
    """dd writing the AES-256-CTR keystream of ``key`` over one run, with O_DIRECT and an fsync.

    The keystream is the one ``imaging.patterns`` generates for a ``random`` overwrite (counter
    block = byte offset / 16), made on the target by ``openssl enc`` encrypting zeros, so any byte
    can be regenerated here from the recorded key and a read-back can tell it from zeros. openssl
    ends on SIGPIPE once dd has its count; the pipeline's status is dd's, whose byte count must
    equal the request (a missing openssl writes nothing and fails the run).
    """
    if len(key) != 32:
        raise ValueError("the keystream key must be 32 bytes (AES-256)")
    if offset % AES_BLOCK:
        raise ValueError(f"keystream offsets must be multiples of {AES_BLOCK}, got {offset}")
    keystream = ("openssl", "enc", "-aes-256-ctr", "-nosalt", "-K", key.hex(), "-iv", f"{offset // AES_BLOCK:032x}")
    dd = [
        arg for arg in write_argv(dd_path, RemotePattern.ZEROS, device, offset, length, block) if arg != "if=/dev/zero"
    ]
    return ("sh", "-c", f"{shlex.join(keystream)} -in /dev/zero 2>/dev/null | {shlex.join(dd)}")


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


def check_extent(offset: int, length: int) -> None:
    """Refuse an extent direct I/O cannot transfer (negative, empty or unaligned)."""
    if offset < 0 or length <= 0:
        raise ValueError(f"invalid extent: offset {offset}, length {length}")
    if offset % DIRECT_IO_ALIGNMENT or length % DIRECT_IO_ALIGNMENT:
        raise ValueError(f"offset and length must be multiples of {DIRECT_IO_ALIGNMENT} for direct I/O")


def last_line(data: bytes) -> str:
    """The last line a tool printed (its error, usually), for a one-line reason."""
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""
