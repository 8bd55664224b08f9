"""Real outputs of the firmware-erase tools, recorded from the QEMU service-environment guest.

The recordings in ``tests/fixtures/firmware/qemu-*`` are what nvme-cli and hdparm print against
QEMU's emulated NVMe drive and SATA disk: the engine's parsers and replay scenarios are built on
them, and ``test_remote_qemu_guest.py`` checks on every run that the live guest still prints them.

``qemu-recordings.json`` lists every step in the engine's ``ReplayRunner`` scenario format (argv
with ``{dev}``, ``returncode``, ``stdout_file`` or ``stdout``, ``stderr``), plus ``name``,
``device`` and, where the interesting text is on stderr, ``stderr_file``.

Re-record (needs root and qemu-system-x86_64; boots a fresh guest)::

    .venv/bin/python tests/harness/firmware_recordings.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]
FIXTURE_DIR = TESTS_DIR / "fixtures" / "firmware"
MANIFEST = FIXTURE_DIR / "qemu-recordings.json"
NVME = "/dev/nvme0n1"
SATA = "/dev/sda"


@dataclass(frozen=True)
class Step:
    name: str
    device: str
    argv: tuple[str, ...]  # "{dev}" stands for the device
    file: str  # fixture file holding the step's telling output, exactly as printed
    stream: str  # which stream that file holds: "stdout" or "stderr"
    note: str

    def command(self) -> tuple[str, ...]:
        return tuple(self.device if a == "{dev}" else a for a in self.argv)


# In recording order: the ATA password is set before the erases that use it.
STEPS: tuple[Step, ...] = (
    Step("nvme-id-ctrl", NVME, ("nvme", "id-ctrl", "{dev}", "-o", "json"), "qemu-nvme-id-ctrl.json",
         "stdout", "oacs 0x10a: Format NVM supported; sanicap 0: no Sanitize; fna 0: no crypto erase"),
    Step("nvme-id-ns", NVME, ("nvme", "id-ns", "{dev}", "-o", "json"), "qemu-nvme-id-ns.json",
         "stdout", "64 MiB namespace, 512-byte LBA format in use"),
    Step("nvme-sanitize-log", NVME, ("nvme", "sanitize-log", "{dev}", "-o", "json"),
         "qemu-nvme-sanitize-log-invalid-field.txt", "stderr", "QEMU has no sanitize log page"),
    Step("nvme-sanitize-block", NVME, ("nvme", "sanitize", "{dev}", "--sanact=2"),
         "qemu-nvme-sanitize-invalid-opcode.txt", "stderr", "QEMU does not implement Sanitize"),
    Step("nvme-sanitize-crypto", NVME, ("nvme", "sanitize", "{dev}", "--sanact=4"),
         "qemu-nvme-sanitize-crypto-invalid-opcode.txt", "stderr", "QEMU does not implement Sanitize"),
    Step("nvme-format-ses1", NVME, ("nvme", "format", "{dev}", "--ses=1", "--force"),
         "qemu-nvme-format-ses1.txt", "stdout", "accepted; QEMU zero-fills the namespace"),
    Step("nvme-format-ses2", NVME, ("nvme", "format", "{dev}", "--ses=2", "--force"),
         "qemu-nvme-format-ses2.txt", "stdout", "accepted although sanicap/fna claim no crypto erase"),
    Step("hdparm-identify", SATA, ("hdparm", "-I", "{dev}"), "qemu-hdparm-identify.txt", "stdout",
         "no Security section: the emulated disk does not report the security feature set"),
    Step("hdparm-hpa", SATA, ("hdparm", "-N", "{dev}"), "qemu-hdparm-hpa.txt", "stdout", "HPA disabled"),
    Step("hdparm-security-set-pass", SATA,
         ("hdparm", "--user-master", "u", "--security-set-pass", "p", "{dev}"),
         "qemu-hdparm-security-set-pass.txt", "stdout", "exits 0; the disk rejected it (SG_IO sense)"),
    Step("hdparm-security-erase", SATA, ("hdparm", "--user-master", "u", "--security-erase", "p", "{dev}"),
         "qemu-hdparm-security-erase.txt", "stdout", "exits 0 but nothing is erased"),
    Step("hdparm-security-erase-enhanced", SATA,
         ("hdparm", "--user-master", "u", "--security-erase-enhanced", "p", "{dev}"),
         "qemu-hdparm-security-erase-enhanced.txt", "stdout", "exits 0 but nothing is erased"),
    Step("hdparm-sanitize-block-erase", SATA,
         ("hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-block-erase", "{dev}"),
         "qemu-hdparm-sanitize-block-erase-unsupported.txt", "stderr", "exits 22: no SANITIZE feature set"),
)  # fmt: skip

VERSION_COMMANDS: dict[str, tuple[str, ...]] = {
    "nvme_cli": ("nvme", "version"),
    "hdparm": ("hdparm", "-V"),
    "guest_kernel": ("uname", "-r"),
}


def load_manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())


def recorded_step(name: str) -> dict[str, Any]:
    return next(s for s in load_manifest()["steps"] if s["name"] == name)


def recorded_file(step: Step) -> str:
    return (FIXTURE_DIR / step.file).read_text()


def step_entry(step: Step, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": step.name,
        "device": step.device,
        "argv": list(step.argv),
        "returncode": returncode,
    }
    if step.stream == "stdout":
        entry["stdout_file"] = step.file
    else:
        entry["stdout"] = stdout
        entry["stderr_file"] = step.file
    entry["stderr"] = stderr
    entry["note"] = step.note
    return entry


def record(runner: Any, out_dir: Path = FIXTURE_DIR, steps: Sequence[Step] = STEPS) -> dict[str, Any]:
    """Run every step through ``runner`` (a CommandRunner on the guest) and write the fixtures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for step in steps:
        rec = runner.run(step.command(), 120.0)
        (out_dir / step.file).write_text(rec.stdout if step.stream == "stdout" else rec.stderr)
        entries.append(step_entry(step, rec.returncode, rec.stdout, rec.stderr))
    versions = {key: runner.run(argv, 30.0).stdout.strip() for key, argv in VERSION_COMMANDS.items()}
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=True)
    versions["qemu"] = qemu.stdout.splitlines()[0]
    manifest = {
        "description": "nvme-cli and hdparm against QEMU's emulated NVMe and SATA disks, over SSH "
        "from the service-environment test guest (tests/harness/qemu_guest.py)",
        "recorded_at": datetime.now(UTC).date().isoformat(),
        "recorded_with": versions,
        "steps": entries,
    }
    (out_dir / MANIFEST.name).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    sys.path[:0] = [str(TESTS_DIR), str(TESTS_DIR.parent)]
    from hardware_drivers.remote_commands import SshCommandRunner
    from harness.qemu_guest import build_guest_image, qemu_guest

    image = build_guest_image()
    with tempfile.TemporaryDirectory(prefix="df-record-") as work:
        with qemu_guest(Path(work), image) as guest, SshCommandRunner(guest.ssh_target()) as runner:
            manifest = record(runner)
    print(f"recorded {len(manifest['steps'])} steps into {FIXTURE_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
