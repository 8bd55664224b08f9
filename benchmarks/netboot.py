"""Network boot: power-on to enrolled, and enrolled to certificate, for one and for two laptops at
once, each beside the same steps run by hand.

    .venv/bin/python benchmarks/netboot.py [--laptops 1 2] [--disk-mib 16] [--json FILE]

Needs root, qemu-system-x86_64 (TCG), dnsmasq and Debian's ipxe-qemu. Each round builds a bench
network in namespaces (tests/harness/netns.py), starts ``factory serve`` and ``factory line run``
(which starts dnsmasq) inside it on a fresh SQLite database, and powers on N QEMU laptops at once
(NVMe full of a pattern, e1000 with the iPXE ROM). The line has no provisioning settings, so each
job ends at ``sanitised`` with its certificate.

Measured per laptop, from the one run:

    power-on -> enrolled         QEMU started -> the enrolment row (the whole PXE/iPXE/boot path)
    enrolled -> certificate      the enrolment -> the certificate signed (claim, SSH, erase, verify)

and, as the hand-run reference for the same laptop:

    DHCP ack -> SSH reachable    dnsmasq's first DHCPACK for its MAC -> the service environment's
                                 SSH port answering: what a technician would wait for before typing
                                 the address and host key in ('factory device endpoint ...')
    remote erase alone           the same erase (imaging.remote_erase over the pinned SSH channel)
                                 run by itself afterwards, outside the line

The figures are single runs on a shared TCG host: read them as where the time goes, not as a
stopwatch. Wall clock of the machine; load average printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from fair import load_average  # noqa: E402
from harness.netboot_laptop import TECHNICIAN, factory_on_bench, pxe_laptop  # noqa: E402
from harness.netns import BenchNamespace, bench_network  # noqa: E402
from harness.qemu_guest import GuestImage, build_guest_image  # noqa: E402
from sqlmodel import select  # noqa: E402

from factory.identity.service import add_user  # noqa: E402
from factory.intake.media import MediaSpec  # noqa: E402
from factory.intake.models import Enrolment, ServiceEndpoint  # noqa: E402
from factory.intake.service import receive_device  # noqa: E402
from factory.kernel.clock import parse_utc  # noqa: E402
from factory.kernel.config import Settings  # noqa: E402
from factory.kernel.context import AppContext  # noqa: E402
from factory.kernel.db.engine import session_scope  # noqa: E402
from factory.kernel.db.migrate import upgrade  # noqa: E402
from factory.kernel.models.certificate import Certificate  # noqa: E402
from factory.kernel.site_keys import init_keys  # noqa: E402

# The hand-run erase, inside the namespace (only it reaches the laptop): the pinned channel and the
# engine's remote erase, nothing of the line.
MANUAL_ERASE = """
import sys, time
from factory.sanitisation.service import ssh_access
from hardware_drivers.remote_commands import PinnedHostKey, SshTarget
from imaging.remote_erase import erase_remote
from imaging.result import Level, VerifyMode
host, port, key, client = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
started = time.monotonic()
with ssh_access(SshTarget(host, port, "root", client, PinnedHostKey.parse(key))) as access:
    result = erase_remote(access, "/dev/nvme0n1", level=Level.CLEAR, verify=VerifyMode.SAMPLE)
print(f"{time.monotonic() - started:.3f} {result.ok}")
"""


def fresh_context(work: Path) -> AppContext:
    home = work / "home"
    url = f"sqlite:///{work / 'factory.db'}"
    os.environ.update(FACTORY_HOME=str(home), FACTORY_DATABASE_URL=url)
    os.environ.setdefault("FACTORY_ORGANISATION", "Benchmark Constabulary")
    upgrade(url)
    ctx = AppContext(Settings(home=home, database_url=url, site_name="bench-site"))
    init_keys(ctx.settings)
    with session_scope(ctx.engine) as s:
        add_user(s, TECHNICIAN, "technician")
    return ctx


def laptops(n: int) -> list[tuple[str, str, str]]:
    """(MAC, DMI serial, NVMe serial) of each laptop."""
    return [(f"52:54:00:0b:01:{i:02x}", f"LT-BENCH-{i}", f"NV-BENCH-{i}") for i in range(1, n + 1)]


def receive_all(ctx: AppContext, fleet: list[tuple[str, str, str]], disk_mib: int) -> None:
    with session_scope(ctx.engine) as s:
        for _mac, serial, nvme in fleet:
            receive_device(s, serial=serial, kind="laptop", actor="bench", make="QEMU", model="DF-Laptop",
                           media=[MediaSpec("nvme", nvme, disk_mib << 20)])  # fmt: skip


def seconds(stamp: str) -> float:
    return parse_utc(stamp).timestamp()


def wait_for_certificates(ctx: AppContext, serials: list[str], timeout: float) -> dict[str, float]:
    """When each laptop's certificate was signed (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(ctx.engine) as s:
            rows = s.exec(select(Certificate.device_serial, Certificate.issued_at)).all()
        found = {serial: seconds(at) for serial, at in rows if serial in serials}
        if len(found) == len(serials):
            return found
        time.sleep(0.5)
    raise SystemExit(f"error: not every laptop was certified within {timeout:g} s")


def first_ack(dnsmasq_log: Path, mac: str) -> float | None:
    """When dnsmasq first acknowledged this MAC (epoch seconds, its log has whole seconds)."""
    for line in dnsmasq_log.read_text(errors="replace").splitlines():
        if "DHCPACK" in line and mac in line:
            stamp = time.strptime(f"{time.localtime().tm_year} {line[:15]}", "%Y %b %d %H:%M:%S")
            return time.mktime(stamp)
    return None


def ssh_reachable_at(ns: BenchNamespace, address: str, timeout: float) -> float:
    """Poll the laptop's SSH port from inside the namespace; when it first answered."""
    probe = f"import socket; socket.create_connection(('{address}', 22), 1).recv(4)"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ns.run(sys.executable, "-c", probe, timeout=5).returncode == 0:
            return time.time()
        time.sleep(0.2)
    raise SystemExit(f"error: {address}:22 never answered")


def reachable_after_lease(ns: BenchNamespace, lease_file: Path, mac: str, timeout: float) -> float:
    """When the laptop's SSH first answered at the address dnsmasq leased it (a technician's view)."""
    from hardware_drivers.netboot import lease_address

    deadline = time.monotonic() + timeout
    while (address := lease_address(lease_file, mac)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"error: no lease for {mac}")
        time.sleep(0.2)
    return ssh_reachable_at(ns, address, deadline - time.monotonic())


def manual_erase(ns: BenchNamespace, ctx: AppContext, serial: str, guest: GuestImage) -> float:
    """The same laptop's erase run by hand: the pinned channel and the engine, timed inside."""
    with session_scope(ctx.engine) as s:
        endpoint = s.exec(
            select(ServiceEndpoint).join(Enrolment, Enrolment.device_id == ServiceEndpoint.device_id)
            .where(Enrolment.dmi_serial == serial)
        ).first()  # fmt: skip
        assert endpoint is not None
        host, port, key = endpoint.address, endpoint.port, endpoint.host_key
    done = ns.run(sys.executable, "-c", MANUAL_ERASE, host, str(port), key, str(guest.client_key), timeout=900)
    elapsed, ok = done.stdout.split()
    if done.returncode != 0 or ok != "True":
        raise SystemExit(f"error: the hand-run erase of {serial} failed: {done.stderr[-500:]}")
    return float(elapsed)


def one_round(n: int, guest: GuestImage, disk_mib: int, work: Path) -> list[dict[str, float | str]]:
    """N laptops powered on at once; per laptop, the line's figures and the hand-run references."""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import ExitStack

    ctx = fresh_context(work)
    fleet = laptops(n)
    receive_all(ctx, fleet, disk_mib)
    with bench_network() as ns, factory_on_bench(ns, work, guest) as factory, ExitStack() as stack:
        lease_file = factory.dnsmasq_log.with_name("dnsmasq.leases")
        powered: dict[str, float] = {}
        for mac, serial, nvme in fleet:
            powered[serial] = time.time()
            stack.enter_context(
                pxe_laptop(ns, work / serial, mac=mac, serial=serial, nvme_serial=nvme, disk_mib=disk_mib)
            )
        with ThreadPoolExecutor(max_workers=n) as pool:
            ssh_at = {serial: pool.submit(reachable_after_lease, ns, lease_file, mac, 600) for mac, serial, _ in fleet}
            certified = wait_for_certificates(ctx, [serial for _, serial, _ in fleet], timeout=900)
            reachable = {serial: future.result() for serial, future in ssh_at.items()}
        with session_scope(ctx.engine) as s:
            enrolled = {row.dmi_serial: seconds(row.received_at) for row in s.exec(select(Enrolment)).all()}
        rows = []
        for mac, serial, _nvme in fleet:
            acked = first_ack(factory.dnsmasq_log, mac) or powered[serial]
            rows.append({
                "laptops": n, "serial": serial,
                "power_on_to_enrolled_s": enrolled[serial] - powered[serial],
                "enrolled_to_certificate_s": certified[serial] - enrolled[serial],
                "by_hand_dhcp_ack_to_ssh_s": reachable[serial] - acked,
                "by_hand_remote_erase_s": manual_erase(ns, ctx, serial, guest),
            })  # fmt: skip
    ctx.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laptops", type=int, nargs="+", default=[1, 2], choices=range(1, 5))
    parser.add_argument("--disk-mib", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None or shutil.which("dnsmasq") is None:
        raise SystemExit("error: needs root, qemu-system-x86_64 and dnsmasq (scripts/setup.sh)")
    guest = build_guest_image()
    print(f"load average before: {load_average():.2f}")
    rows: list[dict[str, float | str]] = []
    for n in args.laptops:
        with tempfile.TemporaryDirectory(prefix=f"netboot-bench-{n}-") as tmp:
            rows += one_round(n, guest, args.disk_mib, Path(tmp))
    print(f"load average after: {load_average():.2f}")
    header = ("laptops", "serial", "power_on_to_enrolled_s", "enrolled_to_certificate_s",
              "by_hand_dhcp_ack_to_ssh_s", "by_hand_remote_erase_s")  # fmt: skip
    print("  ".join(header))
    for row in rows:
        print("  ".join(f"{row[h]:.1f}" if isinstance(row[h], float) else str(row[h]) for h in header))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
