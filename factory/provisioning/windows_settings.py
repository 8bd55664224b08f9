"""The site's settings for Windows laptops: where the assistive-technology installers are, the
account that reads them, and what proves each licensed product is licensed.

From the provisioning config::

    [provisioning.windows]
    installer_share = '\\\\deploy\\installers'
    installer_share_user = 'FORCE\\svc-at-installers'
    installer_share_password_file = "/etc/factory/at-installers-password"   # 0600, never inline
    [provisioning.windows.licence_evidence]
    jaws = ['HKLM:\\SOFTWARE\\Freedom Scientific\\JAWS\\2025\\Registration!Serial']
    zoomtext = ['C:\\ProgramData\\Freedom Scientific\\ZoomText\\licence.dat']

Over SSH with a key a laptop's session has no credentials to pass on to a file share (the double
hop), so the installers are read with the share account's password (runas, network-only logon).
A licensed product (JAWS, ZoomText/Fusion, Dragon) with no evidence named here is reported
"licence not verified" by the QA and its officer's device is not issued
(playbooks/filter_plugins/df_windows_at.py says why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from factory.provisioning.errors import InvalidTarget

LICENSED_PRODUCTS = ("jaws", "zoomtext", "dragon")  # playbooks/vars/accessibility.yml: licensed: true
# A UNC share (\\server\share[\dir...]): what ansible.windows.win_package reads installers from.
_SHARE = re.compile(r"^\\\\[^\\/:*?\"<>|\s]+\\[^\\/:*?\"<>|]+(\\[^\\/:*?\"<>|]+)*$")
# DOMAIN\user or user@domain or a local user name.
_ACCOUNT = re.compile(r"^([A-Za-z0-9._-]{1,64}\\)?[A-Za-z0-9._ -]{1,104}(@[A-Za-z0-9.-]{1,253})?$")
# What probe_windows.ps1 tests: a registry value "HKLM:\Key!Value", or a file / registry key path.
_EVIDENCE = re.compile(r"^(HK(LM|CU|CR|U|CC):\\[^!]+!.+|HK(LM|CU|CR|U|CC):\\.+|[A-Za-z]:\\.+|%[A-Za-z_]+%\\.+)$")


@dataclass(frozen=True)
class WindowsSettings:
    """Everything here is site-wide; the share password is a secret and lives in ProvisionSecrets."""

    installer_share: str | None = None  # None: the playbooks' default (vars/defaults.yml)
    installer_share_user: str = ""
    licence_evidence: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.installer_share is not None and not _SHARE.match(self.installer_share):
            raise InvalidTarget(f"windows.installer_share {self.installer_share!r} is not a share (\\\\server\\share)")
        if self.installer_share_user and not _ACCOUNT.match(self.installer_share_user):
            raise InvalidTarget(f"windows.installer_share_user {self.installer_share_user!r} is not an account name")
        for product, paths in self.licence_evidence.items():
            if product not in LICENSED_PRODUCTS:
                raise InvalidTarget(
                    f"windows.licence_evidence.{product}: not a licensed product ({', '.join(LICENSED_PRODUCTS)})"
                )
            for path in paths:
                if not _EVIDENCE.match(path):
                    raise InvalidTarget(
                        f"windows.licence_evidence.{product}: {path!r} is neither 'HKLM:\\Key!Value' nor a path"
                    )

    def to_vars(self) -> dict[str, Any]:
        """The ``device_factory.windows`` keys the roles read (merged over playbooks/vars/defaults.yml)."""
        given = {"installer_share": self.installer_share} if self.installer_share is not None else {}
        return given | {
            "installer_share_user": self.installer_share_user,
            "licence_evidence": {p: list(self.licence_evidence.get(p, ())) for p in LICENSED_PRODUCTS},
        }


def windows_settings_from(table: Mapping[str, Any]) -> WindowsSettings:
    """A ``[provisioning.windows]`` table read into settings (``InvalidTarget`` names the bad key)."""
    known = {"installer_share", "installer_share_user", "installer_share_password_file", "licence_evidence"}
    if unknown := sorted(set(table) - known):
        raise InvalidTarget(f"[provisioning.windows] has unknown keys: {', '.join(unknown)}")
    evidence = table.get("licence_evidence", {})
    if not isinstance(evidence, Mapping) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in evidence.values()
    ):
        raise InvalidTarget("windows.licence_evidence must map each product to a list of paths")
    for key in ("installer_share", "installer_share_user"):
        if key in table and not isinstance(table[key], str):
            raise InvalidTarget(f"windows.{key} must be a string")
    return WindowsSettings(
        installer_share=table.get("installer_share"),
        installer_share_user=table.get("installer_share_user", ""),
        licence_evidence={product: tuple(paths) for product, paths in evidence.items()},
    )
