"""SSH access to devices on the build bench: pinned host keys, preflight facts, bounded commands.

Host keys are always pinned: the device's key is recorded when it is imaged and every
connection compares the key the device offers with that pin (SHA256 fingerprint). Nothing is
ever learned on first use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Self

import paramiko

from hardware_drivers.dmi import system_serial
from hardware_drivers.ssh_errors import AuthFailed, HostKeyMismatch, InvalidPin, RemoteTimeout, SshError, Unreachable

DMI_SERIAL_PATH = "/sys/class/dmi/id/product_serial"
# Written by the imaging stage when the firmware has no usable serial (VMs, white-box PCs).
FALLBACK_SERIAL_RELPATH = "var/lib/device-factory/serial"
# Host-key algorithms a pinned key type may be verified with.
_HOST_KEY_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}
_SECTION = "----df-preflight-section----"


@dataclass(frozen=True)
class PinnedHostKey:
    """A host key as recorded at imaging time: ``"ssh-ed25519 AAAA..."``."""

    key_type: str
    blob: bytes

    @classmethod
    def parse(cls, line: str) -> PinnedHostKey:
        parts = line.split()
        if len(parts) < 2:
            raise InvalidPin(f"pinned host key must be '<type> <base64>', got {line!r}")
        key_type, b64 = parts[0], parts[1]
        if key_type not in _HOST_KEY_ALGORITHMS:
            raise InvalidPin(f"unsupported pinned host key type {key_type!r}")
        try:
            blob = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise InvalidPin(f"pinned host key is not valid base64: {exc}") from exc
        # The wire blob starts with the key type as an SSH string; a mismatch means a bad paste.
        if blob[4 : 4 + len(key_type)] != key_type.encode():
            raise InvalidPin(f"pinned host key blob does not encode a {key_type} key")
        return cls(key_type=key_type, blob=blob)

    @property
    def fingerprint(self) -> str:
        """OpenSSH-style ``SHA256:...`` fingerprint."""
        return fingerprint_of(self.blob)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return _HOST_KEY_ALGORITHMS[self.key_type]


def fingerprint_of(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class PinnedHostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept the server only if it offers exactly the pinned key."""

    def __init__(self, pin: PinnedHostKey, address: str) -> None:
        self._pin = pin
        self._address = address

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        offered = fingerprint_of(key.asbytes())
        if offered != self._pin.fingerprint:
            raise HostKeyMismatch(self._address, self._pin.fingerprint, offered)


@dataclass(frozen=True)
class RemoteResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass(frozen=True)
class Disk:
    name: str
    size_bytes: int
    model: str | None
    serial: str | None
    rotational: bool | None


@dataclass(frozen=True)
class Facts:
    """What preflight learned; returned only once the device answered with the pinned key."""

    address: str
    port: int
    host_key_fingerprint: str
    hostname: str
    serial: str | None
    serial_source: str  # "dmi", "fallback" or "none"
    macs: tuple[str, ...]
    disks: tuple[Disk, ...]


class SshSession:
    """An authenticated SSH connection to one device."""

    def __init__(self, client: paramiko.SSHClient, address: str, port: int, fingerprint: str) -> None:
        self._client = client
        self.address = address
        self.port = port
        self.host_key_fingerprint = fingerprint

    def run(self, cmd: str, timeout: float = 30.0) -> RemoteResult:
        """Run ``cmd`` through the remote shell; raise ``RemoteTimeout`` after ``timeout`` seconds."""
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise Unreachable(f"connection to {self.address}:{self.port} is closed")
        deadline = time.monotonic() + timeout
        try:
            chan = transport.open_session(timeout=timeout)
            chan.exec_command(cmd)
            chan.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"{self.address}:{self.port}: cannot start command: {exc}") from exc
        out, err = bytearray(), bytearray()
        try:
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and chan.eof_received:
                    # sshd may report the exit status before it has drained the command's pipes;
                    # only EOF means both streams are complete.
                    break
                elif chan.closed or not transport.is_active():
                    raise Unreachable(f"{self.address}:{self.port}: connection lost during {_short(cmd)}")
                elif time.monotonic() > deadline:
                    raise RemoteTimeout(f"{self.address}:{self.port}: {_short(cmd)} exceeded {timeout:g}s")
                else:
                    time.sleep(0.005)
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        return RemoteResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _short(cmd: str) -> str:
    first = cmd.strip().splitlines()[0] if cmd.strip() else ""
    return repr(first[:60] + ("..." if len(first) > 60 or "\n" in cmd.strip() else ""))


def connect(
    address: str,
    port: int,
    user: str,
    key_path: str | Path,
    pinned_host_key: str,
    timeout: float = 10.0,
) -> SshSession:
    """Open an authenticated session, refusing any host key but the pinned one."""
    pin = PinnedHostKey.parse(pinned_host_key)
    where = f"{address}:{port}"
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(PinnedHostKeyPolicy(pin, where))
    # Negotiate only the pinned key's algorithm, so a device that also has other host key types
    # is checked against the key we pinned rather than failing on a different type.
    disabled = [alg for alg in paramiko.Transport._preferred_keys if alg not in pin.algorithms]
    try:
        client.connect(
            address,
            port=port,
            username=user,
            key_filename=str(key_path),
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
            disabled_algorithms={"keys": disabled},
        )
    except HostKeyMismatch:
        client.close()
        raise
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthFailed(f"{user}@{where} refused key {Path(key_path).name}: {exc}") from exc
    except paramiko.BadHostKeyException as exc:  # only if someone loaded known_hosts into client
        client.close()
        raise HostKeyMismatch(where, pin.fingerprint, exc.key.fingerprint) from exc
    except paramiko.SSHException as exc:
        client.close()
        if "Incompatible ssh" in str(exc) or "no acceptable host key" in str(exc).lower():
            raise HostKeyMismatch(where, pin.fingerprint, f"no {pin.key_type} host key") from exc
        raise Unreachable(f"{where}: SSH handshake failed: {exc}") from exc
    except (OSError, EOFError) as exc:
        client.close()
        raise Unreachable(f"{where}: {exc.__class__.__name__}: {exc}") from exc
    return SshSession(client, address, port, pin.fingerprint)


def _facts_script(target_root: str) -> str:
    fallback = shlex.quote(str(PurePosixPath(target_root) / FALLBACK_SERIAL_RELPATH))
    sep = f"echo {_SECTION}"
    return "; ".join(
        [
            f"cat {DMI_SERIAL_PATH} 2>/dev/null",
            sep,
            f"cat {fallback} 2>/dev/null",
            sep,
            'for n in /sys/class/net/*; do echo "${n##*/} $(cat $n/address 2>/dev/null)"; done',
            sep,
            "hostname",
            sep,
            "lsblk -J -b -d -o NAME,SIZE,TYPE,MODEL,SERIAL,ROTA 2>/dev/null",
            sep,
            'for b in /sys/block/*; do echo "${b##*/} $(cat $b/size) $(cat $b/queue/rotational)"; done',
            "true",
        ]
    )


def _pick_serial(dmi: str, fallback: str) -> tuple[str | None, str]:
    serial = system_serial(dmi)  # None for a vendor placeholder (every such laptop reports it)
    if serial is not None:
        return serial, "dmi"
    fallback = fallback.strip()
    if fallback:
        return fallback, "fallback"
    return None, "none"


def _parse_macs(text: str) -> tuple[str, ...]:
    macs = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] != "lo" and parts[1] != "00:00:00:00:00:00":
            macs.add(parts[1].lower())
    return tuple(sorted(macs))


def _parse_disks(lsblk_json: str, sys_block: str) -> tuple[Disk, ...]:
    with contextlib.suppress(ValueError):
        devices = json.loads(lsblk_json)["blockdevices"]
        return tuple(
            Disk(
                name=d["name"],
                size_bytes=int(d["size"] or 0),
                model=(d.get("model") or "").strip() or None,
                serial=(d.get("serial") or "").strip() or None,
                rotational=bool(d["rota"]) if d.get("rota") is not None else None,
            )
            for d in devices
            if d.get("type") == "disk" and not d["name"].startswith(("loop", "zram", "ram"))
        )
    disks = []
    for line in sys_block.splitlines():
        parts = line.split()
        if len(parts) == 3 and not parts[0].startswith(("loop", "zram", "ram")) and parts[1].isdigit():
            disks.append(Disk(parts[0], int(parts[1]) * 512, None, None, parts[2] == "1"))
    return tuple(disks)


def preflight(session: SshSession, *, timeout: float = 10.0, target_root: str = "/") -> Facts:
    """Read the identity of the device a ``connect`` session reached (its pinned key already
    checked) in one round trip. Raises ``RemoteTimeout``, or ``SshError`` on unexpected output."""
    address, port = session.address, session.port
    result = session.run(_facts_script(target_root), timeout=timeout)
    sections = result.stdout.split(_SECTION + "\n")
    if len(sections) != 6:
        raise SshError(f"{address}:{port}: unexpected preflight output (rc={result.rc})")
    dmi, fallback, nets, hostname, lsblk, sys_block = sections
    serial, source = _pick_serial(dmi, fallback)
    return Facts(
        address=address,
        port=port,
        host_key_fingerprint=session.host_key_fingerprint,
        hostname=hostname.strip(),
        serial=serial,
        serial_source=source,
        macs=_parse_macs(nets),
        disks=_parse_disks(lsblk, sys_block),
    )
