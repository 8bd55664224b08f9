"""Writing a golden image to a disk of a laptop in its service environment, and reading it back.

The image streams over the pinned SSH connection into the laptop's own ``dd`` (O_DIRECT, ending
with an fsync), so success means the disk acknowledged every byte; the read-back goes through the
same connection in pieces, hashed here, so what is compared is what the disk returns, end to end.
The image size must be a multiple of 4096 (O_DIRECT on 512e and 4Kn disks alike).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Iterable

from hardware_drivers.dd_transfer import MAX_READ_BYTES
from hardware_drivers.remote_commands import SshCommandRunner
from hardware_drivers.ssh_errors import RemoteWriteError

ALIGNMENT = 4096
READ_PIECE = 64 << 20
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class RemoteImageWriter(SshCommandRunner):  # type: ignore[type-arg]
    """An ``SshCommandRunner`` that can also feed a command's standard input."""

    def write_stream(
        self, device: str, chunks: Iterable[bytes], length: int, *, progress: Progress | None = None
    ) -> int:
        """Stream ``length`` bytes to the start of ``device``; returns the bytes dd reports written.

        :raises RemoteWriteError: dd failed or wrote another count. :raises RemoteConnectError:
        """
        if length <= 0 or length % ALIGNMENT:
            raise RemoteWriteError(f"image size {length} is not a positive multiple of {ALIGNMENT}")
        argv = (self.dd_path, f"of={device}", "bs=1M", "iflag=fullblock", "oflag=direct", "conv=fsync")
        sent = 0
        with self._channel(during=f" while writing {device}") as channel:
            channel.exec_command(shlex.join(argv))
            for chunk in chunks:
                channel.sendall(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent, length)
            channel.shutdown_write()
            err = channel.makefile_stderr("rb").read()  # to EOF: dd's summary comes last
            status = channel.recv_exit_status()
        text = err.decode(errors="replace")
        if status != 0:
            raise RemoteWriteError(f"dd to {device} failed (status {status}): {text.strip().splitlines()[-1:]}")
        if sent != length or f"{length} bytes" not in text:
            raise RemoteWriteError(f"dd to {device} did not report {length} bytes written: {text.strip()[-200:]}")
        return length

    def read_back_sha256(self, device: str, length: int, *, progress: Progress | None = None) -> str:
        """SHA-256 of the first ``length`` bytes of ``device`` as the disk returns them (O_DIRECT)."""
        digest = hashlib.sha256()
        done = 0
        while done < length:
            piece = min(READ_PIECE, MAX_READ_BYTES, length - done)
            digest.update(self.read_range(device, done, piece, timeout=600.0))
            done += piece
            if progress is not None:
                progress(done, length)
        return digest.hexdigest()
