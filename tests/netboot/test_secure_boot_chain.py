"""The Secure Boot chain's parts without a laptop: dnsmasq's configuration for it, the TFTP root it
fills, GRUB's per-MAC decision from the controller (the same rules as iPXE's), and the dnsmasq hook
that fetches that decision and the service environment's files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness.domain import move, receive
from harness.netboot_site import boot, register_netboot_bench, report

from factory.kernel.context import AppContext
from factory.kernel.lifecycle.states import Event
from hardware_drivers.netboot import BenchNetwork, NetbootConfigError, dnsmasq_conf
from hardware_drivers.netboot_grub import (
    GRUB_CONFIG,
    GRUB_LOADER,
    SHIM_LOADER,
    SignedChainMissing,
    config_path,
    grub_hold_config,
    grub_loader_config,
    install_signed_chain,
    service_files_named,
)
from hardware_drivers.netboot_hook import HookSettings, main, refresh, wanted

MAC = "52:54:00:12:34:56"
NET = dict(name="bench-net", interface="br0", range_start="198.18.0.100", range_end="198.18.0.150",
           controller_url="http://198.18.0.1:8000")  # fmt: skip


def conf_lines(tmp_path: Path, net: BenchNetwork, hook: Path | None) -> list[str]:
    return dnsmasq_conf(
        net, tftp_root=tmp_path, lease_file=tmp_path / "l", log_file=tmp_path / "g", user="root", hook=hook
    ).splitlines()


def test_uefi_firmware_gets_shim_and_the_hook_runs_on_every_lease(tmp_path: Path) -> None:
    lines = conf_lines(tmp_path, BenchNetwork(**NET), tmp_path / "dhcp-hook")
    assert f"dhcp-boot=tag:!ipxe,tag:efi64,{SHIM_LOADER}" in lines
    assert "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe" in lines  # BIOS keeps iPXE
    assert f"dhcp-script={tmp_path / 'dhcp-hook'}" in lines and "script-on-renewal" in lines
    ipxe = conf_lines(tmp_path, BenchNetwork(**NET, uefi_boot="ipxe"), None)
    assert "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi" in ipxe and not any("dhcp-script" in x for x in ipxe)
    with pytest.raises(NetbootConfigError, match="uefi_boot must be one of shim, ipxe"):
        BenchNetwork(**NET, uefi_boot="grub")


def test_the_tftp_root_holds_shim_grub_and_grubs_fixed_config(tmp_path: Path) -> None:
    shim, grub = tmp_path / "shim.signed", tmp_path / "grub.signed"
    shim.write_bytes(b"MZ shim")
    grub.write_bytes(b"MZ grub")
    root = tmp_path / "tftp"
    install_signed_chain(root, shim=shim, grub=grub)
    assert (root / SHIM_LOADER).read_bytes() == b"MZ shim" and (root / GRUB_LOADER).read_bytes() == b"MZ grub"
    config = (root / GRUB_CONFIG).read_text()
    assert config == grub_loader_config() and "configfile $prefix/mac/${net_default_mac}.cfg" in config
    assert (root / "grub" / "mac").is_dir() and (root / "service").is_dir()
    with pytest.raises(SignedChainMissing, match="Debian package shim-signed"):
        install_signed_chain(root, shim=tmp_path / "absent", grub=grub)


def test_grub_gets_the_same_decision_as_ipxe_in_its_own_language(ctx: AppContext, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    register_netboot_bench(ctx, tmp_path)
    r = client.get(f"/netboot/grub/{MAC.replace(':', '-')}")
    assert r.status_code == 200 and r.headers["x-boot-decision"] == "service"
    assert "linux /service/bzImage console=tty0 console=ttyS0 panic=-1 " in r.text
    assert f"df.enrol=http://testserver/api/netboot/enrol df.mac={MAC} df.token=" in r.text
    assert "initrd /service/initramfs.cpio" in r.text and service_files_named(r.text) == ["bzImage", "initramfs.cpio"]
    # Its token enrols it, as iPXE's would; once its work is done GRUB boots its own system.
    device_id = receive(ctx, "LT-G1", ["NV-1"], new_stock=True)
    token = r.text.split("df.token=")[1].split()[0]
    enrolled = client.post("/api/netboot/enrol", json=report(MAC, "LT-G1", [("nvme", "NV-1")], token=token))
    assert enrolled.status_code == 200, enrolled.text
    move(ctx, device_id, Event.START_PROVISION)
    move(ctx, device_id, Event.PROVISIONED)
    local = client.get(f"/netboot/grub/{MAC}")
    assert local.headers["x-boot-decision"] == "local" and "df.token" not in local.text
    assert "chainloader ($esp)$loader" in local.text and "/EFI/Microsoft/Boot/bootmgfw.efi" in local.text
    assert client.get("/netboot/grub/not-a-mac").status_code == 422


def test_a_quarantined_laptop_is_held_at_grub(ctx: AppContext, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    register_netboot_bench(ctx, tmp_path)
    client.post("/api/netboot/enrol", json=report(MAC, "STRANGER-G", [("nvme", "NV-9")], token=boot(client, MAC)))
    held = client.get(f"/netboot/grub/{MAC}")
    assert held.headers["x-boot-decision"] == "hold" and "quarantined" in held.text and "linux" not in held.text
    # A reason can neither close GRUB's quotes nor start a command of its own.
    assert grub_hold_config("it's\nboot evil").splitlines()[1] == "echo 'Device Factory: held: it s boot evil'"


class FakeController(BaseHTTPRequestHandler):
    """The two routes the hook asks (``X-Boot-Decision``; ETag and one-byte ranges on files)."""

    decision = "service"
    file_requests: list[str] = []

    def do_GET(self) -> None:
        if self.path.startswith("/netboot/grub/"):
            body = f"linux /service/bzImage df.mac=x\ninitrd /service/initramfs.cpio\n# {self.path}\n".encode()
            self._send(200, body, {"X-Boot-Decision": self.decision})
        elif self.path.startswith("/netboot/files/"):
            ranged = self.headers.get("Range") == "bytes=0-0"
            self.file_requests.append(("range " if ranged else "whole ") + self.path.rsplit("/", 1)[1])
            body = b"K" if ranged else b"K" * 5000
            self._send(206 if ranged else 200, body, {"ETag": '"v1"'})
        else:
            self._send(404, b"", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def controller() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeController)
    FakeController.file_requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_hook_answers_only_the_firmwares_request() -> None:
    assert wanted("add", "br0 efi64") and wanted("old", "efi64 known")
    assert not wanted("add", "br0 efi64 ipxe") and not wanted("add", "br0") and not wanted("del", "efi64")


def test_the_hook_writes_the_decision_and_fetches_the_service_files_once(tmp_path: Path, controller: str) -> None:
    settings = HookSettings(tmp_path, controller)
    (tmp_path / "grub" / "mac").mkdir(parents=True)
    (tmp_path / "service").mkdir()
    assert refresh(settings, MAC) == "service"
    assert f"/netboot/grub/{MAC.replace(':', '-')}" in config_path(tmp_path, MAC).read_text()
    assert (tmp_path / "service" / "bzImage").read_bytes() == b"K" * 5000
    refresh(settings, MAC)  # the next boot: the controller's files have the same ETag
    assert FakeController.file_requests == [
        "range bzImage", "whole bzImage", "range initramfs.cpio", "whole initramfs.cpio",
        "range bzImage", "range initramfs.cpio",
    ]  # fmt: skip


def test_a_hook_that_cannot_reach_the_controller_leaves_no_stale_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file = tmp_path / "hook.json"
    settings_file.write_text(f'{{"tftp_root": "{tmp_path}", "controller_url": "http://127.0.0.1:9"}}')
    stale = config_path(tmp_path, MAC)
    stale.parent.mkdir(parents=True)
    stale.write_text("linux /service/bzImage df.token=spent\n")
    monkeypatch.setenv("DNSMASQ_TAGS", "br0 efi64")
    assert main([str(settings_file), "old", MAC.upper(), "198.18.0.101"]) == 0  # dnsmasq is never failed
    assert not stale.exists()
    assert capsys.readouterr().out.startswith(f"netboot hook: no boot decision for {MAC.upper()}: ")
