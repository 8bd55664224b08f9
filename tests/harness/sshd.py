"""Real ``sshd`` targets on loopback ports, each isolated in its own namespaces.

Every target is an ``sshd -D`` started through ``unshare --mount --uts --pid``:

* UTS: the playbook may set the live hostname without renaming this machine.
* mount: inside the namespace the whole host filesystem is remounted read-only except the
  target's own directory (which also holds the sessions' ``TMPDIR``), and ``/root/.ansible``
  (Ansible's remote temp) is a private tmpfs.
  A playbook that forgets ``device_factory.target_root`` fails loudly instead of writing to
  this host's real ``/etc``. ``/sys/class/net`` is replaced by a tmpfs holding the target's
  fake NICs so preflight sees per-device MAC addresses.
* PID: sshd is PID 1 of the namespace, so killing it (``cut``) drops every session and any
  ControlPersist master's server side at once: a real link cut from the client's view.

The target directory (``root``) is an ordinary directory on the host, so tests read what the
playbook wrote directly.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import free_tcp_port
from harness.requirements import require_root, require_tool
from harness.waiting import wait_until

SSHD = "/usr/sbin/sshd"
FALLBACK_SERIAL_RELPATH = "var/lib/device-factory/serial"
CRYPTTAB_LINE = "cryptroot UUID=6f1c2b8e-0d7a-4b55-9d43-3c1f0a9e7e21 none luks,discard\n"


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    kind, blob = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def make_client_key(directory: Path) -> Path:
    """An ed25519 client key pair under ``directory``; returns the private key path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    if not key.exists():
        _keygen(key, "device-factory-test-client")
    return key


@dataclass
class SshdTarget:
    """One simulated device: an sshd, its keys and its filesystem root."""

    name: str
    base: Path
    client_key: Path
    serial: str
    macs: tuple[str, ...]
    port: int = 0
    host_key_pub: str = ""
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def host_key(self) -> Path:
        return self.base / "ssh_host_ed25519_key"

    @property
    def log_path(self) -> Path:
        return self.base / "sshd.log"

    @property
    def encryption_marker(self) -> Path:
        return self.root / "etc" / "crypttab"

    def prepare(self) -> None:
        """Keys, config and a freshly imaged-looking target root (encrypted disk, serial file)."""
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "tmp").mkdir(mode=0o1777, exist_ok=True)
        if not self.host_key.exists():
            self.host_key_pub = _keygen(self.host_key, f"{self.name}-host")
        else:
            self.host_key_pub = " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])
        (self.base / "authorized_keys").write_text(self.client_key.with_suffix(".pub").read_text())
        self.reset_root()

    def reset_root(self) -> None:
        """Return the target root to the state the imaging stage leaves behind."""
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "etc").mkdir(parents=True)
        self.encryption_marker.write_text(CRYPTTAB_LINE)
        serial_file = self.root / FALLBACK_SERIAL_RELPATH
        serial_file.parent.mkdir(parents=True)
        serial_file.write_text(self.serial + "\n")

    def _write_config(self) -> Path:
        config = self.base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.base / 'authorized_keys'}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "UseDNS no",
                    "MaxStartups 64",
                    "MaxSessions 64",
                    "Subsystem sftp internal-sftp",
                    # The host's /tmp is read-only in the namespace; a device's is writable.
                    f"SetEnv TMPDIR={self.base / 'tmp'}",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        return config

    def _namespace_script(self, config: Path) -> str:
        q = shlex.quote
        nics = "".join(
            f"mkdir -p /sys/class/net/eth{i}; echo {q(mac)} > /sys/class/net/eth{i}/address; "
            for i, mac in enumerate(self.macs)
        )
        return (
            "set -e; "
            f"hostname {q(self.name)}; "
            "mount -t tmpfs -o size=1m,mode=755 df-net /sys/class/net; "
            "mkdir -p /sys/class/net/lo; echo 00:00:00:00:00:00 > /sys/class/net/lo/address; "
            f"{nics}"
            "mount -t tmpfs -o size=64m,mode=700 df-ansible-tmp /root/.ansible; "
            # Everything else becomes read-only; only this target's directory stays writable.
            "mount -o remount,bind,ro /; "
            f"mount --bind {q(str(self.base))} {q(str(self.base))}; "
            f"mount -o remount,bind,rw {q(str(self.base))}; "
            f"exec {SSHD} -D -e -f {q(str(config))}"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start sshd (again, on the same port if it ran before) and wait for its banner."""
        if self.running:
            return
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        Path("/root/.ansible").mkdir(exist_ok=True)
        if not self.port:
            self.port = free_tcp_port()
        config = self._write_config()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    self._namespace_script(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd for {self.name} exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return
            time.sleep(0.05)
        self.cut()
        raise RuntimeError(f"sshd for {self.name} did not answer on port {self.port}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def cut(self) -> None:
        """Kill the target's sshd and every session it serves, as a pulled cable would.

        SIGKILL to ``unshare`` delivers SIGKILL to sshd (``--kill-child``), the PID 1 of the
        namespace; the kernel then kills every remaining process in it.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            except OSError:
                return True
            return False

        wait_until(refused, 10, message=f"sshd for {self.name} to stop answering on port {self.port} after the cut")


@contextlib.contextmanager
def sshd_targets(base: Path, count: int, prefix: str = "df-target") -> Iterator[list[SshdTarget]]:
    """``count`` running targets under ``base``; all are cut on exit, also on failure."""
    client_key = make_client_key(base / "client")
    targets = [
        SshdTarget(
            name=f"{prefix}-{i + 1}",
            base=base / f"{prefix}-{i + 1}",
            client_key=client_key,
            serial=f"DFSN{i + 1:04d}X",
            macs=(f"02:df:00:00:{i + 1:02x}:01", f"02:df:00:00:{i + 1:02x}:02"),
        )
        for i in range(count)
    ]
    try:
        for target in targets:
            target.prepare()
            target.start()
        yield targets
    finally:
        for target in targets:
            target.cut()


def one_sshd_target(base: Path, prefix: str) -> Iterator[SshdTarget]:
    """The body of a module fixture: one running target (needs root, sshd and unshare)."""
    require_root()
    require_tool("sshd")
    require_tool("unshare")
    with sshd_targets(base, 1, prefix=prefix) as targets:
        yield targets[0]
