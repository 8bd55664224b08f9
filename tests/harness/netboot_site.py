"""Bench networks for network-boot tests: a site file with network-boot slots, host keys, reports."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.bench_config import LineConfig, load_line_config
from factory.line.leases import register_agent

AGENT = "net-agent"
BENCH = "bench-net"


def netboot_site_file(tmp_path: Path, *, slots: int = 2, extra: str = "") -> Path:
    """``site.toml``: agent ``net-agent`` with bench ``bench-net`` of ``slots`` network-boot slots."""
    slot_list = ", ".join(f'{{position = {n}, port_kind = "netboot"}}' for n in range(1, slots + 1))
    path = tmp_path / "site.toml"
    path.write_text(
        f'agent = "{AGENT}"\nerase_processes = 0\n[[bench]]\nname = "{BENCH}"\nslots = [{slot_list}]\n{extra}'
    )
    return path


def register_netboot_bench(ctx: AppContext, tmp_path: Path, *, slots: int = 2) -> LineConfig:
    """The bench and its slots in the database, as a starting agent registers them."""
    config = load_line_config(netboot_site_file(tmp_path, slots=slots))
    with session_scope(ctx.engine) as s:
        register_agent(s, config, site=ctx.settings.site_name, run_id="test-run")
    return config


def new_host_key() -> str:
    """A fresh ``ssh-ed25519 AAAA...`` public key line, as the service environment makes at boot."""
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def report(
    mac: str, serial: str, disks: list[tuple[str, str]], *, token: str | None, host_key: str | None = None
) -> dict[str, object]:
    """An enrolment body as the agent posts it; disks: (transport, serial)."""
    return {
        "token": token,
        "boot_mac": mac,
        "serial": serial,
        "vendor": "QEMU",
        "model": "Standard PC (i440FX + PIIX, 1996)",
        "macs": [mac],
        "disks": [_disk(n, transport, serial) for n, (transport, serial) in enumerate(disks)],
        "host_key": host_key or new_host_key(),
    }


def _disk(n: int, transport: str, serial: str) -> dict[str, object]:
    capabilities = ["nvme-format"] if transport == "nvme" else []
    return {"name": f"disk{n}", "serial": serial, "model": "QEMU disk", "size_bytes": 64 << 20,
            "transport": transport, "firmware": "1.0", "capabilities": capabilities}  # fmt: skip


def boot(client, mac: str) -> str:  # type: ignore[no-untyped-def]
    """What iPXE does: fetch this NIC's script; returns the boot token on its kernel command line."""
    r = client.get(f"/netboot/ipxe/{mac.replace(':', '-')}")
    assert r.status_code == 200 and r.headers["x-boot-decision"] == "service", r.text
    match = re.search(r"df\.token=(\S+)", r.text)
    assert match, r.text
    return match.group(1)
