"""The provisioning config's Windows settings ([provisioning.windows]): read, checked, and given to
the playbooks as host variables and secrets (the share password hidden like the enrolment token)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from harness.provisioning_site import ENROLMENT_TOKEN, provisioning_config

from factory.kernel.context import AppContext
from factory.kernel.errors import InvalidInput
from factory.provisioning.inventory import ProvisionTarget, device_vars
from factory.provisioning.settings import load_provisioner

JAWS_KEY = r"HKLM:\SOFTWARE\Police\ATLicensing\JAWS!Server"
PASSWORD = "share-account-pass 1"


def config(tmp_path: Path, windows: str) -> Path:
    (tmp_path / "share-password").write_text(PASSWORD + "\n")
    return provisioning_config(tmp_path, 'os_family = "windows"\n' + windows)


def windows_laptop(tmp_path: Path) -> ProvisionTarget:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return ProvisionTarget(
        serial="PF3XK9Q2", asset_tag="DF-LAP-0042", kind="laptop", role="response", address="192.0.2.10", port=22,
        user="factory", private_key_path=tmp_path / "key", host_key=key, os_family="windows",
    )  # fmt: skip


def test_windows_settings_reach_the_playbooks_and_the_password_stays_a_secret(ctx: AppContext, tmp_path: Path) -> None:
    conf = config(
        tmp_path,
        "[provisioning.windows]\n"
        "installer_share = '\\\\deploy01\\at-installers'\n"
        "installer_share_user = 'FORCE\\svc-at'\n"
        f'installer_share_password_file = "{tmp_path / "share-password"}"\n'
        "[provisioning.windows.licence_evidence]\n"
        f"jaws = ['{JAWS_KEY}']\n",
    )
    provisioner = load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")

    windows = provisioner.site.windows
    assert windows is not None
    assert (windows.installer_share, windows.installer_share_user) == ("\\\\deploy01\\at-installers", "FORCE\\svc-at")
    assert provisioner.secrets.to_vars()["device_factory_secrets"]["installer_share_password"] == PASSWORD
    assert PASSWORD in provisioner.secrets.values()  # so the adapter hides it from what it logs
    assert PASSWORD not in repr(provisioner) and PASSWORD not in repr(provisioner.site)
    host = device_vars(windows_laptop(tmp_path), provisioner.site)["windows"]
    assert host["licence_evidence"] == {"jaws": [JAWS_KEY], "zoomtext": [], "dragon": []}
    assert host["installer_share_user"] == "FORCE\\svc-at" and "password" not in str(host)


def test_without_a_windows_table_the_playbook_defaults_apply(ctx: AppContext, tmp_path: Path) -> None:
    provisioner = load_provisioner(config(tmp_path, ""), engine=ctx.engine, work_dir=tmp_path / "w")
    assert provisioner.site.windows is None
    assert provisioner.secrets.to_vars() == {"device_factory_secrets": {"enrolment_token": ENROLMENT_TOKEN}}


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ("installer_share = 'deploy\\installers'\n", "is not a share"),
        (
            "installer_share_user = 'FORCE\\svc-at'\n",
            "user and installer_share_password_file go together",
        ),
        ('installer_share_password_file = "/nonexistent/pw"\n', "go together"),
        ("installer_sahre = 'x'\n", "unknown keys: installer_sahre"),
        (
            "[provisioning.windows.licence_evidence]\nnvda = ['C:\\x']\n",
            "licence_evidence.nvda: not a licensed product",
        ),
        ("[provisioning.windows.licence_evidence]\njaws = ['licensed']\n", "'licensed' is neither"),
        ("[provisioning.windows.licence_evidence]\njaws = 'C:\\x'\n", "must map each product to a list"),
    ],
)
def test_bad_windows_settings_are_refused_with_the_key(
    ctx: AppContext, tmp_path: Path, table: str, reason: str
) -> None:
    header = "" if table.startswith("[") else "[provisioning.windows]\n"
    conf = config(tmp_path, header + table)
    with pytest.raises(InvalidInput, match=reason) as refused:
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    assert str(refused.value).startswith(f"provisioning config {conf}:")


def test_a_missing_or_empty_password_file_is_refused(ctx: AppContext, tmp_path: Path) -> None:
    windows = "[provisioning.windows]\ninstaller_share_user = 'svc-at'\n"
    conf = config(tmp_path, windows + f'installer_share_password_file = "{tmp_path / "missing"}"\n')
    with pytest.raises(InvalidInput, match="No such file or directory"):
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
    (tmp_path / "empty").write_text("\n")
    conf = config(tmp_path, windows + f'installer_share_password_file = "{tmp_path / "empty"}"\n')
    with pytest.raises(InvalidInput, match="is empty"):
        load_provisioner(conf, engine=ctx.engine, work_dir=tmp_path / "w")
