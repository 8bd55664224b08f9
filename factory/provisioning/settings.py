r"""Load the site's provisioning settings (TOML) and build the line's Ansible provisioner.

[provisioning]
site_ca_file = "/etc/factory/site-ca.pem"
enrolment_server_url = "https://mdm.example.police.uk/enrol"
enrolment_tenant = "met-devices"
enrolment_token_file = "/etc/factory/enrolment-token"   # mode 0600; never in the config itself
ssh_private_key = "/etc/factory/service-env-key"        # the service environment's client key
timezone = "Europe/London"
reboot_grace_seconds = 300                              # a device restarted by a playbook may be away this long
os_family = "windows"                                   # the golden image's: linux (default) or windows

[provisioning.windows]                                  # optional: factory/provisioning/windows_settings.py
installer_share_user = 'FORCE\svc-at-installers'
installer_share_password_file = "/etc/factory/at-installers-password"   # mode 0600
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from sqlalchemy import Engine

from factory.kernel.errors import InvalidInput
from factory.line.service import DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS
from factory.provisioning.inventory import OS_FAMILIES, InvalidTarget, ProvisionSecrets, SiteSettings
from factory.provisioning.line_provisioner import AnsibleProvisioner
from factory.provisioning.windows_settings import WindowsSettings, windows_settings_from

_REQUIRED = ("site_ca_file", "enrolment_server_url", "enrolment_tenant", "enrolment_token_file", "ssh_private_key")


def load_provisioner(path: Path, *, engine: Engine, work_dir: Path) -> AnsibleProvisioner:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")).get("provisioning", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"provisioning config {path}: {exc}") from exc
    missing = [k for k in _REQUIRED if not str(data.get(k, "")).strip()]
    if missing:
        raise InvalidInput(f"provisioning config {path}: [provisioning] needs {', '.join(missing)}")
    try:
        ca_pem = Path(data["site_ca_file"]).read_text(encoding="utf-8")
        token = Path(data["enrolment_token_file"]).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"provisioning config {path}: {exc.strerror}: {exc.filename}") from exc
    key = Path(data["ssh_private_key"])
    if not key.is_file():
        raise InvalidInput(f"provisioning config {path}: ssh_private_key {key} does not exist")
    windows_table = data.get("windows")
    try:
        windows = _windows(windows_table) if windows_table is not None else None
        site = SiteSettings(
            site_ca_pem=ca_pem,
            enrolment_server_url=str(data["enrolment_server_url"]),
            enrolment_tenant=str(data["enrolment_tenant"]),
            timezone=str(data.get("timezone", "Europe/London")),
            windows=windows,
        )
        secrets = ProvisionSecrets(enrolment_token=token, installer_share_password=_share_password(path, windows_table))
    except InvalidTarget as exc:
        raise InvalidInput(f"provisioning config {path}: {exc}") from exc
    return AnsibleProvisioner(
        engine=engine, site=site, secrets=secrets, private_key_path=key, work_dir=work_dir, **_line_options(path, data)
    )


def _line_options(path: Path, data: dict[str, object]) -> dict[str, object]:
    """The optional settings: the reboot grace, and the OS family of the line's golden image."""
    grace = data.get("reboot_grace_seconds", DEFAULT_GRACE_SECONDS)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 < grace <= MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"provisioning config {path}: reboot_grace_seconds must be a number in 1-{MAX_GRACE_SECONDS:g}"
        )
    os_family = data.get("os_family", "linux")
    if os_family not in OS_FAMILIES:
        raise InvalidInput(f"provisioning config {path}: os_family must be one of {', '.join(OS_FAMILIES)}")
    return {"reboot_grace_s": float(grace), "os_family": os_family}


def _windows(table: object) -> WindowsSettings:
    if not isinstance(table, dict):
        raise InvalidTarget("[provisioning.windows] must be a table")
    settings = windows_settings_from(table)
    if bool(settings.installer_share_user) != bool(table.get("installer_share_password_file")):
        raise InvalidTarget("[provisioning.windows] installer_share_user and installer_share_password_file go together")
    return settings


def _share_password(path: Path, table: object) -> str | None:
    """The installer share account's password, from its own file (never the config itself)."""
    file = table.get("installer_share_password_file") if isinstance(table, dict) else None
    if not file:
        return None
    try:
        password = Path(str(file)).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidTarget(f"installer_share_password_file: {exc.strerror}: {exc.filename}") from exc
    if not password:
        raise InvalidTarget(f"installer_share_password_file {file} is empty")
    return password
