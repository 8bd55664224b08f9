"""What a network-booting NIC is told to boot: the controller's per-MAC iPXE script, or GRUB's
per-MAC config for the Secure Boot chain (the same decision, written for the loader that asks).

* A MAC nobody recorded, or a device the line has work for: the service environment, with a fresh
  one-time boot token (bound to this MAC) and the enrolment URL on its kernel command line.
* A device whose work is done (``ready`` or allocated to an officer): its own internal disk.
* A device the line must not touch (quarantined, or in no state the bench should see): held at
  iPXE's prompt (or GRUB's) with the reason; nothing boots.

iPXE fetches the kernel and initramfs from this controller over HTTP; GRUB (TFTP only) from the
bench's dnsmasq, whose hook copies them from here (``hardware_drivers/netboot_hook.py``).

The service environment's kernel and initramfs are served from ``FACTORY_NETBOOT_DIR`` (default
``$FACTORY_HOME/netboot``): ``bzImage`` and ``initramfs.cpio`` as scripts/build-guest.sh writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from factory.intake.boot_tokens import issue_boot_token
from factory.intake.errors import InvalidInput, ServiceEnvironmentMissing
from factory.intake.models import ServiceEndpoint
from factory.kernel.config import Settings
from factory.kernel.lifecycle.states import IN_PROGRESS, TERMINAL, State
from factory.kernel.models.device import Device
from hardware_drivers.netboot import (
    NetbootConfigError,
    ipxe_chain_script,
    ipxe_hold_script,
    ipxe_local_script,
    ipxe_service_script,
    lease_addresses,
    mac_from_hexhyp,
)
from hardware_drivers.netboot_grub import grub_hold_config, grub_local_config, grub_service_config

KERNEL_FILE = "bzImage"
INITRD_FILE = "initramfs.cpio"
SERVED_FILES = frozenset({KERNEL_FILE, INITRD_FILE})
ENROL_PATH = "/api/netboot/enrol"
LOADERS = ("ipxe", "grub")  # who asks for the decision: its text is written in that loader's language

# Work done: the laptop boots what was deployed on it.
LOCAL_BOOT_STATES: frozenset[str] = frozenset({State.READY, State.ALLOCATED})
# Never booted into the service environment from the bench network.
HELD_STATES: frozenset[str] = frozenset({State.QUARANTINED, *IN_PROGRESS, *TERMINAL})


@dataclass(frozen=True)
class BootDecision:
    kind: str  # "service", "local" or "hold"
    mac: str
    serial: str | None
    reason: str
    script: str


def netboot_dir(settings: Settings) -> Path:
    raw = os.environ.get("FACTORY_NETBOOT_DIR", "").strip()
    return Path(raw) if raw else settings.home / "netboot"


def served_file(settings: Settings, name: str) -> Path:
    """The service environment's kernel or initramfs.

    :raises InvalidInput: any other name. :raises ServiceEnvironmentMissing: not installed.
    """
    if name not in SERVED_FILES:
        raise InvalidInput(f"'{name[:40]}' is not a service-environment file ({', '.join(sorted(SERVED_FILES))})")
    path = netboot_dir(settings) / name
    if not path.is_file():
        raise ServiceEnvironmentMissing(
            f"the service environment's {name} is not installed in {path.parent} (scripts/build-guest.sh DIR)"
        )
    return path


def normalised_mac(value: str) -> str:
    try:
        return mac_from_hexhyp(value)
    except NetbootConfigError as exc:
        raise InvalidInput(str(exc)) from exc


def chain_script(controller_url: str) -> str:
    return ipxe_chain_script(controller_url)


def boot_script(session: Session, mac_text: str, controller_url: str, *, loader: str = "ipxe") -> BootDecision:
    """Decide what this NIC boots and write it for ``loader`` (issuing a boot token if it enrols).

    :raises InvalidInput: not a MAC, or not a loader of ``LOADERS``.
    """
    if loader not in LOADERS:
        raise InvalidInput(f"'{loader[:20]}' is not a network boot loader ({', '.join(LOADERS)})")
    mac = normalised_mac(mac_text)
    owners = session.exec(
        select(Device)
        .join(ServiceEndpoint, col(ServiceEndpoint.device_id) == Device.id)
        .where(ServiceEndpoint.mac == mac)
    ).all()
    device = owners[0] if len(owners) == 1 else None
    serial = device.serial if device else None
    grub = loader == "grub"
    if device is not None and device.state in LOCAL_BOOT_STATES:
        reason = f"{device.serial} is {device.state}: booting its own disk"
        return BootDecision("local", mac, serial, reason, (grub_local_config if grub else ipxe_local_script)(reason))
    if device is not None and device.state in HELD_STATES:
        reason = f"{device.serial} is {device.state}: the bench will not boot it"
        return BootDecision("hold", mac, serial, reason, (grub_hold_config if grub else ipxe_hold_script)(reason))
    token = issue_boot_token(session, mac)
    base = controller_url.rstrip("/")
    cmdline = f"console=tty0 console=ttyS0 panic=-1 df.enrol={base}{ENROL_PATH} df.mac={mac} df.token={token}"
    if grub:  # the kernel and initramfs come from the bench's TFTP root, where the hook put them
        script = grub_service_config(KERNEL_FILE, INITRD_FILE, cmdline)
    else:
        files = f"{base}/netboot/files"
        script = ipxe_service_script(f"{files}/{KERNEL_FILE}", f"{files}/{INITRD_FILE}", cmdline)
    reason = f"{serial or 'unknown MAC ' + mac}: service environment (enrolment)"
    return BootDecision("service", mac, serial, reason, script)


def next_action(session: Session, mac_text: str) -> str:
    """What a laptop in the service environment does next: ``reboot`` once its work is done (its
    next boot then goes to its own disk), else ``wait``. :raises InvalidInput: not a MAC."""
    mac = normalised_mac(mac_text)
    states = session.exec(
        select(Device.state)
        .join(ServiceEndpoint, col(ServiceEndpoint.device_id) == Device.id)
        .where(ServiceEndpoint.mac == mac)
    ).all()
    return "reboot" if len(states) == 1 and states[0] in LOCAL_BOOT_STATES else "wait"


def leased_addresses(settings: Settings, mac_text: str) -> tuple[str, ...]:
    """The addresses the agent's dnsmasq leased this MAC, when the agent runs beside this process
    (its lease files under ``$FACTORY_HOME/work/netboot``); empty when unknown (a site's own DHCP)."""
    try:
        mac = normalised_mac(mac_text)
    except InvalidInput:
        return ()
    files = sorted((settings.work_dir / "netboot").glob("*/dnsmasq.leases"))
    return tuple(address for lease_file in files for address in lease_addresses(lease_file, mac))
