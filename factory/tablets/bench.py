"""What a bench needs to work on tablets: the tools' command seam, the device-management services,
the site's device-owner app, and how long a wipe may take to be acknowledged.

A real bench reads them from a TOML file (``factory line run --tablets FILE``)::

    [apple_mdm]                      # the site's MDM server (EraseDevice, Return to Service)
    url = "https://mdm.force.example"
    token_file = "/etc/factory/apple-mdm.token"
    [android]
    service = "android_management"   # or "intune"
    enterprise = "LC02abcd"          # Android Management API enterprise
    token_file = "/etc/factory/amapi.token"
    site_dpc = "uk.police.dpc"       # the site's device-owner app (reset over USB)
    [wait]
    poll_seconds = 15
    deadline_seconds = 1800
    [profiles]                       # the line's kind/role -> the service's enrolment profile or policy
    "vehicle-tablet/standard" = "vehicle-tablet-policy"
    [windows]                        # Windows / rugged tablets (every key optional)
    emmc_node = "/dev/mmcblk0"       # the eMMC as the bench stick's service environment names it (SSH)
    # Where the service environment's NVMe / SATA disks are looked for, for a tablet with such media
    # recorded (matched by serial); without it, every whole disk the service environment lists.
    disk_nodes = ["/dev/nvme0n1", "/dev/sda"]
    # Where THIS host sees a tablet's eMMC as a block device (the bench stick exporting it as a USB
    # mass-storage gadget), for the overwrite of an eMMC without sanitize: a /dev path with {serial},
    # or a table serial -> /dev path. Used where the node is there; else the overwrite runs over SSH.
    emmc_exposed = "/dev/disk/by-id/usb-Linux_File-Stor_Gadget_{serial}-0:0"

and refuses to start without the tools (Debian adb, libimobiledevice-utils, mmc-utils). pymobiledevice3
(PyPI) is optional: where it is on the PATH, a supervised iPad the MDM does not reach is erased over USB.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.tablets.errors import TabletBenchUnavailable
from imaging.commands import CommandRunner, SubprocessRunner
from imaging.tablets.device_management import AndroidManagement, AppleMdm, DeviceManagement, IntuneGraph, WipeWait
from imaging.tablets.https_runner import HttpsRunner, SeamRouter
from imaging.tablets.identity import (
    ANDROID,
    IPADOS,
    WINDOWS,
    TabletProbe,
    probe_android,
    probe_android_after_reset,
    probe_ipad,
    probe_ipad_after_reset,
)
from imaging.tablets.identity import probe_windows as _probe_windows
from imaging.tablets.methods import ResetContext
from imaging.tablets.reset import Reprobe

if TYPE_CHECKING:
    from imaging.remote_erase import RemoteBlockAccess

TOOLS = ("adb", "idevicepair", "ideviceinfo", "idevice_id", "mmc")
WINDOWS_NODE = "/dev/mmcblk0"  # the eMMC as the bench stick's service environment sees it
# A tablet serial as it may stand in a device path (what udev reports; nothing that climbs out of /dev).
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


@dataclass
class TabletBench:
    management: Mapping[str, DeviceManagement] = field(default_factory=dict)  # platform -> service
    runner_for: Callable[[str], CommandRunner] = lambda _ref: SubprocessRunner()
    site_dpc: str | None = None
    wait: WipeWait = field(default_factory=WipeWait)
    profiles: Mapping[str, str] = field(default_factory=dict)  # the line's profile (kind/role) -> the service's
    simulated: bool = False  # the stand-in of --simulate (refused on a real line)
    # A Windows tablet's eMMC is reached in its service environment (the bench stick), over SSH: never
    # on this host. Only a bench whose seam plays the tablet itself (simulated, replayed) sets this.
    windows_here: bool = False
    channels: dict[str, CommandRunner] = field(default_factory=dict)  # ref -> the tablet's own channel
    # Where this bench sees a Windows tablet's eMMC as a block device on this host (its serial -> the
    # node), for the overwrite of an eMMC without sanitize; None: not exposed here.
    emmc_exposed: Callable[[str], str | None] = lambda _serial: None
    windows_node: str = WINDOWS_NODE  # the eMMC in the service environment (over SSH)
    # Where a Windows tablet's NVMe / SATA disks are looked for there; empty: every disk it lists.
    windows_disks: tuple[str, ...] = ()
    # pymobiledevice3 on this bench (optional, not a dependency): a supervised iPad's erase over USB
    usb_erase_tool: bool = field(default_factory=lambda: shutil.which("pymobiledevice3") is not None)

    def seam(self, ref: str) -> CommandRunner:
        return self.channels.get(ref) or self.runner_for(ref)

    def open_channel(self, ref: str, tools: CommandRunner) -> None:
        """Run this tablet's tools through ``tools`` (its service environment); services as before."""
        base = self.runner_for(ref)
        services = base.services if isinstance(base, SeamRouter) else {"https://": base}
        self.channels[ref] = SeamRouter(tools, services)

    def close_channel(self, ref: str) -> None:
        router = self.channels.pop(ref, None)
        close = getattr(getattr(router, "tools", None), "close", None)
        if close is not None:
            close()

    def identify(self, platform: str, ref: str, disks: Sequence[str] = ()) -> TabletProbe:
        """``disks``: the serials of a Windows tablet's recorded NVMe / SATA media (else its eMMC is read)."""
        runner = self.seam(ref)
        if platform == IPADOS:
            return probe_ipad(runner, ref)
        if platform == ANDROID:
            return probe_android(runner, ref)
        return _probe_windows(runner, self.windows_node, ref, disks, self.windows_disks)

    def seam_of(self, probe: TabletProbe) -> CommandRunner:
        """The seam for this tablet, by what the bench found it as (a Windows tablet's ref is its eMMC node)."""
        return self.seam(probe.serial or probe.ref if probe.platform == WINDOWS else probe.ref)

    def emmc_node(self, probe: TabletProbe) -> str | None:
        """The block device of this Windows tablet's eMMC on this host, where the bench exposes it
        and the node is there (a setting names where it would appear, not that it did)."""
        if probe.platform != WINDOWS or probe.emmc is None:
            return None
        node = self.emmc_exposed(probe.serial or probe.ref)
        return node if node is not None and os.path.exists(node) else None

    def service_environment(self, probe: TabletProbe) -> RemoteBlockAccess | None:
        """The SSH channel to this Windows tablet's service environment, where its eMMC (``probe.ref``)
        or its NVMe / SATA disks are block devices the remote erase can erase and read back; None: not
        reached over SSH."""
        if probe.platform != WINDOWS or (probe.emmc is None and not probe.disks):
            return None
        router = self.channels.get(probe.serial or probe.ref)
        tools = getattr(router, "tools", None)
        return tools if callable(getattr(tools, "write_pattern", None)) else None

    def reset_context(self, probe: TabletProbe, cancel: Any = None) -> ResetContext:
        runner = self.seam_of(probe)
        dm = self.management.get(probe.platform)
        identity = probe.udid if probe.platform == IPADOS else probe.serial
        managed_id = dm.bound(runner).lookup(identity) if dm is not None and identity else None
        wait = WipeWait(self.wait.poll_interval, self.wait.deadline_seconds, cancel)
        return ResetContext(
            runner, dict(self.management), managed_id, self.site_dpc, wait, usb_erase_tool=self.usb_erase_tool
        )

    def reprobe(self, probe: TabletProbe, cancel: Any = None) -> Reprobe | None:
        """How the tablet is read after its reset, polled until it is back from its restart or the
        wait's deadline: an erased iPad without pairing, until it shows its setup state; an Android
        tablet reset over USB on adb, until adb lists it ready again (then read once: a tablet back
        still set up, or as another serial, fails the reset's checks)."""
        if probe.platform == IPADOS:
            return self._polled(
                lambda r: probe_ipad_after_reset(r, probe.ref), lambda a: a.setup_complete is False, cancel
            )
        if probe.platform == ANDROID:
            return self._polled(lambda r: probe_android_after_reset(r, probe.ref), lambda a: a.identified, cancel)
        return None

    def _polled(self, read: Reprobe, back: Callable[[TabletProbe], bool], cancel: threading.Event | None) -> Reprobe:
        wait, stop = self.wait, cancel or threading.Event()

        def read_back(runner: CommandRunner) -> TabletProbe:
            deadline = time.monotonic() + wait.deadline_seconds
            while True:
                after = read(runner)
                if back(after) or time.monotonic() >= deadline or stop.wait(wait.poll_interval):
                    return after

        return read_back

    def enrol(self, probe: TabletProbe, profile: str) -> tuple[str, str]:
        """Assign the enrolment profile through the platform's service: (service, reference).

        :raises imaging.tablets.device_management.ServiceRefused: the service refused it.
        :raises TabletBenchUnavailable: no service manages this platform here.
        """
        dm = self.management.get(probe.platform)
        if dm is None:
            raise TabletBenchUnavailable(f"no device-management service for {probe.platform} tablets on this bench")
        bound = dm.bound(self.seam_of(probe))
        identity = probe.udid if probe.platform == IPADOS else probe.serial
        return dm.service, bound.enrol(probe.serial or probe.ref, bound.lookup(identity or probe.ref), profile)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def load_bench(path: Path) -> TabletBench:
    """The bench's tablet settings from ``path``.

    :raises TabletBenchUnavailable: a tool is missing, the file is unreadable or incomplete.
    """
    missing = missing_tools()
    if missing:
        raise TabletBenchUnavailable(
            f"tablet tools missing on this bench: {', '.join(missing)} (install them with scripts/setup.sh)"
        )
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TabletBenchUnavailable(f"tablet settings {path}: {exc}") from exc
    services: dict[str, HttpsRunner] = {}  # base URL -> its transport (each service its own token)
    router = SeamRouter(SubprocessRunner(), services)

    def service(section: Mapping[str, Any], name: str, base: str) -> SeamRouter:
        token = section.get("token_file")
        if not isinstance(token, str) or not token or not base.startswith("https://"):
            raise TabletBenchUnavailable(f"tablet settings {path}: [{name}] needs an https url and token_file")
        services[base] = HttpsRunner(Path(token))
        router.services[base] = services[base]
        return router

    management: dict[str, DeviceManagement] = {}
    if isinstance(apple := config.get("apple_mdm"), dict):
        url = str(apple.get("url", "")).rstrip("/")
        management[IPADOS] = AppleMdm(service(apple, "apple_mdm", url), url)
    android = config.get("android") if isinstance(config.get("android"), dict) else {}
    if android.get("service") == "intune":
        management[ANDROID] = IntuneGraph(service(android, "android", IntuneGraph.BASE))
    elif android.get("service") == "android_management":
        runner = service(android, "android", AndroidManagement.BASE)
        management[ANDROID] = AndroidManagement(runner, str(android.get("enterprise", "")))
    if not management:
        raise TabletBenchUnavailable(f"tablet settings {path}: no device-management service ([apple_mdm] or [android])")
    wait = config.get("wait") if isinstance(config.get("wait"), dict) else {}
    return TabletBench(
        management,
        runner_for=lambda _ref: router,
        site_dpc=android.get("site_dpc"),
        profiles={str(k): str(v) for k, v in (config.get("profiles") or {}).items()},
        wait=WipeWait(float(wait.get("poll_seconds", 15)), float(wait.get("deadline_seconds", 1800))),
        **windows_settings(config.get("windows", {}), f"tablet settings {path}"),
    )


def windows_settings(section: object, where: str) -> dict[str, Any]:
    """``[windows]``: the eMMC's node in the service environment and where this host exposes one.

    :raises TabletBenchUnavailable: an unknown key, or a value that is not a path under /dev/.
    """
    if not isinstance(section, dict):
        raise TabletBenchUnavailable(f"{where}: [windows] must be a table")
    unknown = sorted(set(section) - {"emmc_node", "emmc_exposed", "disk_nodes"})
    if unknown:
        raise TabletBenchUnavailable(
            f"{where}: [windows] takes emmc_node, emmc_exposed and disk_nodes, not {', '.join(unknown)}"
        )
    found: dict[str, Any] = {}
    if "emmc_node" in section:
        found["windows_node"] = _dev_path(section["emmc_node"], f"{where}: windows.emmc_node")
    if "emmc_exposed" in section:
        found["emmc_exposed"] = _exposed(section["emmc_exposed"], f"{where}: windows.emmc_exposed")
    if "disk_nodes" in section:
        nodes = section["disk_nodes"]
        if not isinstance(nodes, list) or not nodes:
            raise TabletBenchUnavailable(f"{where}: windows.disk_nodes must be a list of /dev/ paths, not {nodes!r}")
        found["windows_disks"] = tuple(_dev_path(node, f"{where}: windows.disk_nodes") for node in nodes)
    return found


def _dev_path(value: object, where: str, *, template: bool = False) -> str:
    text = value if isinstance(value, str) else ""
    bare = text.replace("{serial}", "") if template else text
    if not bare.startswith("/dev/") or ".." in bare or any(c in bare for c in "{} \t\n"):
        raise TabletBenchUnavailable(f"{where} must be a block device path under /dev/, not {value!r}")
    return text


def _exposed(value: object, where: str) -> Callable[[str], str | None]:
    """A tablet serial -> the node of its eMMC on this host: from a template or a table."""
    if isinstance(value, str):
        if value.count("{serial}") != 1:
            raise TabletBenchUnavailable(f"{where}: a path names the tablet by {{serial}} once, not {value!r}")
        template = _dev_path(value, where, template=True)
        return lambda serial: template.replace("{serial}", serial) if _SERIAL.match(serial) else None
    if isinstance(value, dict) and value:
        table: dict[str, str] = {}
        for serial, node in value.items():
            if not _SERIAL.match(serial):
                raise TabletBenchUnavailable(f"{where}: {serial!r} is not a tablet serial")
            table[serial] = _dev_path(node, f"{where}.{serial}")
        return table.get
    raise TabletBenchUnavailable(
        f"{where} must be a /dev/ path with {{serial}} or a table of tablet serial = /dev/ path, not {value!r}"
    )
