"""Shared helpers for the provisioning tests and benchmark: site settings, sinks, targets."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from factory.provisioning.service import (
    AccessibilityProfile,
    DeviceKind,
    ProvisionSecrets,
    ProvisionTarget,
    SiteSettings,
)
from harness.sshd import SshdTarget

ENROLMENT_TOKEN = "dfenrol-7Qm2-SECRET-TOKEN-b41d9e"


@cache
def site_ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Device Factory Test Site CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def site() -> SiteSettings:
    return SiteSettings(
        site_ca_pem=site_ca_pem(),
        enrolment_server_url="https://mdm.devicefactory.test/enrol",
        enrolment_tenant="df-test",
        timezone="Europe/London",
    )


def secrets() -> ProvisionSecrets:
    return ProvisionSecrets(enrolment_token=ENROLMENT_TOKEN)


def provisioning_config(folder: Path, extra: str = "") -> Path:
    """A site's provisioning config (``[provisioning]``, then ``extra``) with the files it names,
    written into ``folder``: the site CA, the enrolment token file and an SSH key file."""
    (folder / "ca.pem").write_text(site_ca_pem())
    (folder / "token").write_text(ENROLMENT_TOKEN + "\n")
    (folder / "key").write_text("not used until a run")
    conf = folder / "prov.toml"
    conf.write_text(
        "[provisioning]\n"
        f'site_ca_file = "{folder / "ca.pem"}"\n'
        'enrolment_server_url = "https://mdm.example.test/enrol"\n'
        'enrolment_tenant = "devices"\n'
        f'enrolment_token_file = "{folder / "token"}"\n'
        f'ssh_private_key = "{folder / "key"}"\n' + extra
    )
    return conf


# One device of each interesting shape: a laptop whose user has a screen reader and magnifier,
# a vehicle tablet, a desktop with high contrast and dictation.
DEVICE_SHAPES: Sequence[Mapping[str, object]] = (
    {
        "kind": DeviceKind.LAPTOP,
        "role": "response",
        "accessibility": AccessibilityProfile(user="pc4711", screen_reader=True, magnifier=True),
    },
    {"kind": DeviceKind.VEHICLE_TABLET, "role": "response", "vehicle_fleet_number": "FL2093"},
    {
        "kind": DeviceKind.DESKTOP,
        "role": "control-room",
        "accessibility": AccessibilityProfile(user="cr0042", high_contrast=True, dictation=True),
    },
)


def provision_target(t: SshdTarget, index: int = 0, host_key: str | None = None) -> ProvisionTarget:
    shape = DEVICE_SHAPES[index % len(DEVICE_SHAPES)]
    return ProvisionTarget(
        serial=t.serial,
        asset_tag=f"DF-{t.serial[-5:-1]}-{index + 1:02d}",
        address="127.0.0.1",
        port=t.port,
        user="root",
        private_key_path=t.client_key,
        host_key=host_key or t.host_key_pub,
        target_root=str(t.root),
        python_interpreter="/usr/bin/python3",
        extra_vars={"set_live_hostname": True},
        **shape,  # type: ignore[arg-type]
    )


@dataclass
class RecordingSink:
    """A JobSink that keeps everything, optionally reacting to task events."""

    lines: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str, bool]] = field(default_factory=list)
    final_stats: dict[str, dict[str, int]] | None = None
    on_task_event: Callable[[str, str, str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def task_event(self, host: str, task: str, status: str, changed: bool) -> None:
        with self._lock:
            self.events.append((host, task, status, changed))
        if self.on_task_event is not None:
            self.on_task_event(host, task, status)

    def stats(self, per_host: Mapping[str, Mapping[str, int]]) -> None:
        self.final_stats = {h: dict(s) for h, s in per_host.items()}

    def text(self) -> str:
        return "\n".join(self.lines)
