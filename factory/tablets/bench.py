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

and refuses to start without the tools (Debian adb, libimobiledevice-utils, mmc-utils).
"""

from __future__ import annotations

import shutil
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

TOOLS = ("adb", "idevicepair", "ideviceinfo", "mmc")
WINDOWS_NODE = "/dev/mmcblk0"  # the eMMC as the bench stick's service environment sees it


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

    def identify(self, platform: str, ref: str) -> TabletProbe:
        runner = self.seam(ref)
        if platform == IPADOS:
            return probe_ipad(runner, ref)
        if platform == ANDROID:
            return probe_android(runner, ref)
        return _probe_windows(runner, WINDOWS_NODE, ref)

    def seam_of(self, probe: TabletProbe) -> CommandRunner:
        """The seam for this tablet, by what the bench found it as (a Windows tablet's ref is its eMMC node)."""
        return self.seam(probe.serial or probe.ref if probe.platform == WINDOWS else probe.ref)

    def emmc_node(self, probe: TabletProbe) -> str | None:
        """The block device of this Windows tablet's eMMC on this host, where the bench exposes it."""
        if probe.platform != WINDOWS or probe.emmc is None:
            return None
        return self.emmc_exposed(probe.serial or probe.ref)

    def reset_context(self, probe: TabletProbe, cancel: Any = None) -> ResetContext:
        runner = self.seam_of(probe)
        dm = self.management.get(probe.platform)
        identity = probe.udid if probe.platform == IPADOS else probe.serial
        managed_id = dm.bound(runner).lookup(identity) if dm is not None and identity else None
        wait = WipeWait(self.wait.poll_interval, self.wait.deadline_seconds, cancel)
        return ResetContext(runner, dict(self.management), managed_id, self.site_dpc, wait)

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
    )
