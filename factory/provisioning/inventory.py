"""Provisioning inputs and their translation into an Ansible inventory and known_hosts file.

The playbook reads everything per host from one namespaced variable, ``device_factory``; this
module builds that dict from a ``ProvisionTarget`` plus the site-wide ``SiteSettings``. Host
keys are pinned through ``HostKeyAlias=<serial>`` and a per-job known_hosts file, so a key is
bound to the device's identity rather than to an address that DHCP may hand to someone else.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from factory.kernel.models.device import DeviceKind  # the device's own kind, one enum for every area
from factory.provisioning.errors import InvalidTarget
from factory.provisioning.windows_settings import WindowsSettings

_SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ASSET_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,62}$")
OS_FAMILIES = ("linux", "windows")  # the branches the playbooks' roles take
_USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
# OpenSSH HostKeyAlgorithms accepted for each pinned key type.
_HOST_KEY_ALGORITHMS = {
    "ssh-ed25519": "ssh-ed25519",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "ssh-rsa": "rsa-sha2-512,rsa-sha2-256",
}


@dataclass(frozen=True)
class AccessibilityProfile:
    """Assistive technology recorded for the device's user, carried onto the new device."""

    user: str
    screen_reader: bool = False
    magnifier: bool = False
    magnifier_zoom: float = 2.0
    high_contrast: bool = False
    large_text: bool = False
    dictation: bool = False
    screen_reader_product: str = "nvda"  # Windows: nvda or jaws (Linux uses Orca)

    def __post_init__(self) -> None:
        if not _USER_RE.match(self.user):
            raise InvalidTarget(f"accessibility.user {self.user!r} is not a valid account name")
        if not 1.0 <= self.magnifier_zoom <= 32.0:
            raise InvalidTarget(f"accessibility.magnifier_zoom {self.magnifier_zoom} is outside 1-32")
        if self.screen_reader_product not in ("nvda", "jaws"):
            raise InvalidTarget(f"accessibility.screen_reader_product {self.screen_reader_product!r} is not nvda/jaws")

    @classmethod
    def for_officer(cls, staff_number: str, needs: Mapping[str, Any]) -> AccessibilityProfile:
        """An officer's profile: the account name is the staff number, made a valid user name."""
        user = re.sub(r"[^a-z0-9_.-]", "", staff_number.lower())[:31]
        user = user if user[:1].isalpha() or user[:1] == "_" else f"o{user}"[:32]
        known = {f: needs[f] for f in cls.__dataclass_fields__ if f != "user" and f in needs}
        return cls(user=user, **known)

    def to_vars(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "screen_reader": self.screen_reader,
            "magnifier": self.magnifier,
            "magnifier_zoom": self.magnifier_zoom,
            "high_contrast": self.high_contrast,
            "large_text": self.large_text,
            "dictation": self.dictation,
            "screen_reader_product": self.screen_reader_product,
        }


@dataclass(frozen=True)
class ProvisionTarget:
    """One device to provision and how to reach it."""

    serial: str
    asset_tag: str
    kind: DeviceKind
    role: str
    address: str
    port: int
    user: str
    private_key_path: Path
    host_key: str  # pinned, "ssh-ed25519 AAAA..."
    vehicle_fleet_number: str | None = None
    accessibility: AccessibilityProfile | None = None
    target_root: str = "/"
    python_interpreter: str = "auto_silent"
    os_family: str = "linux"  # linux or windows: the branch each role takes
    # Further per-device playbook inputs, deep-merged into ``device_factory`` last.
    extra_vars: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _SERIAL_RE.match(self.serial):
            raise InvalidTarget(f"serial {self.serial!r} must be 1-64 of [A-Za-z0-9._-]")
        if not _ASSET_TAG_RE.match(self.asset_tag):
            raise InvalidTarget(f"asset_tag {self.asset_tag!r} must be 2-63 of [A-Za-z0-9-]")
        object.__setattr__(self, "kind", DeviceKind(self.kind))
        if not self.role.strip():
            raise InvalidTarget("role must not be empty")
        if not 0 < self.port < 65536:
            raise InvalidTarget(f"port {self.port} is out of range")
        if self.os_family not in OS_FAMILIES:
            raise InvalidTarget(f"os_family {self.os_family!r} must be linux or windows")
        if not self.target_root.startswith("/"):
            raise InvalidTarget(f"target_root {self.target_root!r} must be absolute")
        if self.kind is DeviceKind.VEHICLE_TABLET and not self.vehicle_fleet_number:
            raise InvalidTarget(f"{self.serial}: a vehicle tablet needs vehicle_fleet_number")
        pinned_key_algorithms(self.host_key)

    @property
    def inventory_name(self) -> str:
        return self.serial


@dataclass(frozen=True)
class SiteSettings:
    """Build-site configuration shared by every device in a job."""

    site_ca_pem: str
    enrolment_server_url: str
    enrolment_tenant: str
    timezone: str = "Europe/London"
    vehicle_tether_ssid_prefix: str = "VEH-"
    windows: WindowsSettings | None = None  # None: the playbooks' defaults (vars/defaults.yml)

    def __post_init__(self) -> None:
        try:
            cert = x509.load_pem_x509_certificate(self.site_ca_pem.encode())
        except ValueError as exc:
            raise InvalidTarget(f"site_ca_pem is not a PEM certificate: {exc}") from exc
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise InvalidTarget("site_ca_pem is not a CA certificate (no basicConstraints CA:TRUE)")
        if not self.enrolment_server_url.startswith("https://"):
            raise InvalidTarget("enrolment_server_url must be https://")


@dataclass(frozen=True)
class ProvisionSecrets:
    """Secrets the playbook needs; kept out of ``repr`` so they cannot leak through logging."""

    enrolment_token: str = field(repr=False)
    installer_share_password: str | None = field(default=None, repr=False)  # Windows AT installer share

    def __post_init__(self) -> None:
        if len(self.enrolment_token) < 8:
            raise InvalidTarget("enrolment_token is too short")
        if self.installer_share_password is not None and not self.installer_share_password:
            raise InvalidTarget("installer_share_password is empty")

    def values(self) -> tuple[str, ...]:
        """Every secret, so the adapter can hide each from what it logs and stores."""
        return tuple(v for v in (self.enrolment_token, self.installer_share_password) if v)

    def to_vars(self) -> dict[str, Any]:
        secrets = {"enrolment_token": self.enrolment_token}
        if self.installer_share_password:
            secrets["installer_share_password"] = self.installer_share_password
        return {"device_factory_secrets": secrets}


def pinned_key_algorithms(host_key: str) -> str:
    """The HostKeyAlgorithms value for a pinned key; raises ``InvalidTarget`` if malformed."""
    parts = host_key.split()
    if len(parts) < 2 or parts[0] not in _HOST_KEY_ALGORITHMS:
        raise InvalidTarget(f"host_key must be '<type> <base64>' of {sorted(_HOST_KEY_ALGORITHMS)}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise InvalidTarget(f"host_key is not valid base64: {exc}") from exc
    if blob[4 : 4 + len(parts[0])] != parts[0].encode():
        raise InvalidTarget(f"host_key blob does not encode a {parts[0]} key")
    return _HOST_KEY_ALGORITHMS[parts[0]]


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def device_vars(target: ProvisionTarget, site: SiteSettings) -> dict[str, Any]:
    """The ``device_factory`` dict the playbook reads for one host."""
    dfv: dict[str, Any] = {
        "target_root": target.target_root,
        "os_family": target.os_family,
        "serial": target.serial,
        "asset_tag": target.asset_tag,
        "kind": str(target.kind),
        "role": target.role,
        "timezone": site.timezone,
        "site_ca_pem": site.site_ca_pem,
        "enrolment": {"server_url": site.enrolment_server_url, "tenant": site.enrolment_tenant},
        "vehicle": {
            "fleet_number": target.vehicle_fleet_number or "",
            "tether_ssid_prefix": site.vehicle_tether_ssid_prefix,
        },
    }
    if target.accessibility is not None:
        dfv["accessibility"] = target.accessibility.to_vars()
    if site.windows is not None:
        dfv["windows"] = site.windows.to_vars()
    return _deep_merge(dfv, target.extra_vars)


def ssh_common_args(target: ProvisionTarget, known_hosts: Path) -> str:
    """OpenSSH options that accept only the pinned key, looked up by the device's serial."""
    return " ".join(
        [
            f"-o UserKnownHostsFile={known_hosts}",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o StrictHostKeyChecking=yes",
            f"-o HostKeyAlias={target.serial}",
            f"-o HostKeyAlgorithms={pinned_key_algorithms(target.host_key)}",
            "-o CheckHostIP=no",
            "-o UpdateHostKeys=no",
            "-o IdentitiesOnly=yes",
            "-o BatchMode=yes",
        ]
    )


def known_hosts_text(targets: Sequence[ProvisionTarget]) -> str:
    """known_hosts lines keyed by serial (the HostKeyAlias), one pinned key per device."""
    return "".join(f"{t.serial} {' '.join(t.host_key.split()[:2])}\n" for t in targets)


def _windows_connection(target: ProvisionTarget) -> dict[str, Any]:
    """A Windows laptop is reached over its OpenSSH server, whose shell is PowerShell."""
    return {"ansible_shell_type": "powershell"} if target.os_family == "windows" else {}


def build_inventory(targets: Sequence[ProvisionTarget], site: SiteSettings, known_hosts: Path) -> dict[str, Any]:
    """A YAML/JSON inventory with every target in group ``all``."""
    names = [t.inventory_name for t in targets]
    if len(set(names)) != len(names):
        raise InvalidTarget(f"duplicate serials in job: {sorted(n for n in names if names.count(n) > 1)}")
    hosts = {
        t.inventory_name: {
            "ansible_host": t.address,
            "ansible_port": t.port,
            "ansible_user": t.user,
            "ansible_ssh_private_key_file": str(t.private_key_path),
            "ansible_ssh_common_args": ssh_common_args(t, known_hosts),
            "ansible_python_interpreter": t.python_interpreter,
            "device_factory": device_vars(t, site),
        }
        | _windows_connection(t)
        for t in targets
    }
    return {"all": {"hosts": hosts}}
