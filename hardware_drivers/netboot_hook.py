"""dnsmasq's ``dhcp-script`` for a bench network that serves the Secure Boot chain: when UEFI
firmware gets its address, ask the controller what this MAC boots and leave the answer where GRUB
will read it (``grub/mac/<MAC>.cfg`` in the TFTP root), with the service environment's files.

GRUB's signed network image reads by TFTP only, so the controller's per-MAC answer cannot be fetched
by GRUB itself the way iPXE fetches its script over HTTP; dnsmasq runs this at the firmware's
DHCPACK (``add``, or ``old`` with ``script-on-renewal``), seconds before GRUB asks. The decision is
the controller's (``GET /netboot/grub/<mac>``: intake's rules, a one-time boot token when it
enrols); the file of an earlier boot is removed first, so a stale decision or a spent token is
never booted. Only requests tagged ``efi64`` and not ``ipxe`` (the firmware's own) are answered.

Run by dnsmasq as ``python -m hardware_drivers.netboot_hook SETTINGS ACTION MAC IP [HOSTNAME]``
(SETTINGS: JSON with ``tftp_root`` and ``controller_url``). It prints one line per outcome, which
dnsmasq writes to its log; it never fails dnsmasq.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hardware_drivers.netboot_grub import config_path, service_files_named, write_atomically

TIMEOUT_SECONDS = 30.0  # the service environment's files are tens of MB, over the bench LAN
CHUNK = 1 << 20


@dataclass(frozen=True)
class HookSettings:
    tftp_root: Path
    controller_url: str

    @classmethod
    def load(cls, path: Path) -> HookSettings:
        raw = json.loads(path.read_text())
        return cls(Path(raw["tftp_root"]), str(raw["controller_url"]).rstrip("/"))


def wanted(action: str, tags: str) -> bool:
    """A lease given (or renewed) to UEFI firmware; not iPXE's or the service environment's own."""
    words = set(tags.split())
    return action in {"add", "old"} and "efi64" in words and "ipxe" not in words


def refresh(settings: HookSettings, mac: str) -> str:
    """Replace this MAC's boot decision; returns the decision kind. :raises OSError: controller or disk."""
    target = config_path(settings.tftp_root, mac.lower())
    target.unlink(missing_ok=True)  # nothing stale is booted if the controller cannot answer
    url = f"{settings.controller_url}/netboot/grub/{mac.lower().replace(':', '-')}"
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
        kind = answer.headers.get("X-Boot-Decision", "?")
        config = answer.read().decode()
    for name in service_files_named(config):
        fetch_service_file(settings, name)
    write_atomically(target, config.encode())
    return kind


def fetch_service_file(settings: HookSettings, name: str) -> None:
    """Bring the controller's copy of a service-environment file, unless the one here is it
    (the controller's ETag, asked for with a one-byte range, matches the one kept beside it)."""
    target = settings.tftp_root / "service" / name
    tag_file = target.with_name(f".{name}.etag")
    url = f"{settings.controller_url}/netboot/files/{name}"
    probe = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    with urllib.request.urlopen(probe, timeout=TIMEOUT_SECONDS) as answer:
        etag = answer.headers.get("ETag", "")
    if etag and target.is_file() and tag_file.is_file() and tag_file.read_text() == etag:
        return
    temp = target.with_name(f".{name}.{os.getpid()}.tmp")
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer, temp.open("wb") as out:
        while chunk := answer.read(CHUNK):
            out.write(chunk)
    os.replace(temp, target)
    tag_file.write_text(etag)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("netboot hook: usage: SETTINGS ACTION MAC [IP [HOSTNAME]]")
        return 0
    settings_path, action, mac = argv[0], argv[1], argv[2]
    if not wanted(action, os.environ.get("DNSMASQ_TAGS", "")):
        return 0
    try:
        kind = refresh(HookSettings.load(Path(settings_path)), mac)
    except (OSError, ValueError, KeyError) as exc:  # urllib's errors are OSErrors
        print(f"netboot hook: no boot decision for {mac}: {exc}")
        return 0
    print(f"netboot hook: {mac} boots: {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
