"""The UEFI Secure Boot chain a bench network serves: Microsoft-signed shim, Debian-signed GRUB, the
Debian-signed kernel of the service environment.

* ``shimx64.efi`` is Debian's ``shim-signed`` (signed by the Microsoft UEFI CA 2011, the "third
  party" CA in the firmware's db); it embeds Debian's CA and checks GRUB and the kernel against it.
* shim fetches ``grubx64.efi`` from the directory it came from (TFTP): Debian's
  ``grub-efi-amd64-signed`` ``grubnetx64.efi.signed``. That image's built-in prefix is ``/grub`` on
  the boot server (``(tftp,SERVER)/grub``) and its memdisk config sources ``$prefix/grub.cfg``. Its
  modules are built in (none can be loaded under Secure Boot): ``tftp`` and ``efinet`` but no
  ``http``, so everything GRUB reads comes from dnsmasq's TFTP root.
* ``grub/grub.cfg`` (the same for every laptop) reads ``grub/mac/<MAC>.cfg``, named by GRUB's
  ``net_default_mac`` (``52:54:00:12:34:56``). That per-MAC file is the controller's decision,
  written by ``netboot_hook`` when dnsmasq acknowledges the firmware's DHCP request, well before
  GRUB asks for it (shim and GRUB are fetched in between); GRUB retries a while in case it is late.
* The service environment's kernel and initramfs are served from ``service/`` by TFTP as well.

Texts and files only; no database (the decision is intake's), no process (``netboot.Dnsmasq``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

SHIM_SOURCE = Path("/usr/lib/shim/shimx64.efi.signed")
GRUB_SOURCE = Path("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
SHIM_LOADER = "shimx64.efi"  # what UEFI firmware is told to boot
GRUB_LOADER = "grubx64.efi"  # the name shim asks for, next to itself
GRUB_DIR = "grub"  # grubnetx64's built-in prefix, /grub
GRUB_CONFIG = f"{GRUB_DIR}/grub.cfg"
MAC_DIR = f"{GRUB_DIR}/mac"
SERVICE_DIR = "service"  # the service environment's kernel and initramfs, fetched by GRUB
# GRUB asks again this many times, this many seconds apart, when its MAC's file is not there yet.
CONFIG_ATTEMPTS = 20
CONFIG_RETRY_SECONDS = 3
_SERVICE_FILE = re.compile(rf"^\s*(?:linux|initrd)\s+/{SERVICE_DIR}/([A-Za-z0-9._-]+)", re.MULTILINE)
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class SignedChainMissing(RuntimeError):
    """shim or the signed network GRUB is not installed on the bench host."""


def grub_loader_config() -> str:
    """``grub/grub.cfg``: read this NIC's own file (``configfile`` returns only when it is missing)."""
    attempts = " ".join(str(n) for n in range(1, CONFIG_ATTEMPTS + 1))
    return "\n".join(
        [
            "# Device Factory: written by the factory line; edits are overwritten",
            "set timeout=0",
            'echo "Device Factory: network boot (Secure Boot chain) for ${net_default_mac}"',
            f"for attempt in {attempts}; do",
            "  configfile $prefix/mac/${net_default_mac}.cfg",
            '  echo "Device Factory: no boot decision for ${net_default_mac} yet; asking again"',
            f"  sleep {CONFIG_RETRY_SECONDS}",
            "done",
            'echo "Device Factory: the bench gave no boot decision; ask a technician"',
            "",
        ]
    )


def grub_service_config(kernel: str, initrd: str, cmdline: str) -> str:
    """Boot the service environment (``kernel``/``initrd``: file names under ``service/``)."""
    return _config(
        "echo 'Device Factory: service environment'",
        f"linux /{SERVICE_DIR}/{kernel} {cmdline}",
        f"initrd /{SERVICE_DIR}/{initrd}",
        "boot",
    )


def grub_local_config(reason: str) -> str:
    """Work done: boot the laptop's own system with Secure Boot still checking it.

    The system's own loader on its EFI system partition is started through the firmware
    (``chainloader``: the firmware's db, or shim's Debian CA, must accept it, as on a disk boot).
    Windows Boot Manager first, then the removable-media path every installed system has; with
    neither, ``exit`` hands back to the firmware. GRUB 2.06 exits with EFI_SUCCESS (its ``exit``
    takes no code), after which some firmware tries the next boot option and some (EDK2, OVMF)
    shows its boot menu: that is why the disk's own loader is started first.
    """
    return _config(
        f"echo 'Device Factory: {_quoted(reason)}'",
        "for loader in /EFI/Microsoft/Boot/bootmgfw.efi /EFI/BOOT/BOOTX64.EFI; do",
        "  if search --no-floppy --file --set=esp $loader; then",
        "    chainloader ($esp)$loader",
        "    boot",
        "  fi",
        "done",
        "exit",
    )


def grub_hold_config(reason: str) -> str:
    """Neither: the laptop stays at GRUB with the reason, booting nothing."""
    return _config(
        f"echo 'Device Factory: held: {_quoted(reason)}'",
        "echo 'Ask a technician.'",
        "while true; do sleep 3600; done",
    )


def service_files_named(config: str) -> list[str]:
    """The ``service/`` files a per-MAC config boots (what the hook must have in the TFTP root)."""
    return _SERVICE_FILE.findall(config)


def _config(*lines: str) -> str:
    return "\n".join(("# Device Factory: this laptop's boot decision", *lines, ""))


def _quoted(text: str) -> str:
    """One line that cannot close GRUB's single quotes or carry a control character."""
    return re.sub(r"[^\x20-\x7e]|'", " ", text)[:200]


def config_path(tftp_root: Path, mac: str) -> Path:
    """Where the per-MAC decision for ``mac`` (``aa:bb:...``, lower case) lives in the TFTP root."""
    if not _MAC.match(mac):
        raise ValueError(f"'{mac[:40]}' is not a MAC address")
    return tftp_root / MAC_DIR / f"{mac}.cfg"


def install_signed_chain(tftp_root: Path, *, shim: Path = SHIM_SOURCE, grub: Path = GRUB_SOURCE) -> None:
    """Put shim, GRUB and GRUB's fixed config in the TFTP root (and the per-MAC and service dirs).

    :raises SignedChainMissing: a signed binary is not installed.
    """
    for source, package in ((shim, "shim-signed"), (grub, "grub-efi-amd64-signed")):
        if not source.is_file():
            raise SignedChainMissing(f"{source} is missing (Debian package {package})")
    for folder in (MAC_DIR, SERVICE_DIR):
        (tftp_root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shim, tftp_root / SHIM_LOADER)
    shutil.copyfile(grub, tftp_root / GRUB_LOADER)
    write_atomically(tftp_root / GRUB_CONFIG, grub_loader_config().encode())


def write_atomically(path: Path, data: bytes) -> None:
    """dnsmasq may be sending ``path`` while it is replaced: it keeps the old file open, whole."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
