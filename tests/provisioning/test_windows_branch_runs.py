"""The playbooks' Windows branch run through ansible-playbook, with the inventory the adapter writes,
against a stand-in for ansible.windows (tests/provisioning/windows_fakes): each stand-in module
answers with the real module's documented return values and records what it did to a "laptop"
kept in a JSON file. What runs for real is everything on the controller: the roles' task flow,
the Jinja, the filter that judges the AT probe, the QA asserts and their messages. What does not
run is the PowerShell on the laptop (no Windows host here; see WINDOWS_VARIANTS.md)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from harness.provisioning_site import secrets, site

from factory.provisioning.inventory import AccessibilityProfile, ProvisionTarget, build_inventory
from factory.provisioning.windows_settings import WindowsSettings

pytestmark = pytest.mark.slow  # several ansible-playbook runs

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
FAKES = Path(__file__).resolve().parent / "windows_fakes"
JAWS_LICENCE = r"HKLM:\SOFTWARE\Police\ATLicensing\JAWS!Server"
INSTALLERS = {
    "nvda-installer.exe": {
        "uninstall": {
            "key": "NVDA",
            "view": "Registry32",
            "display_name": "NVDA 2025.1.2",
            "publisher": "NV Access",
            "display_version": "2025.1.2.52097",
            "install_location": r"C:\Program Files (x86)\NVDA",
        },
        "files": [r"C:\Program Files (x86)\NVDA\nvda.exe"],
        "ats": ["nvda_nvda_v1"],
    },
    "jaws-installer.exe": {
        "uninstall": {
            "key": "{3F1F7C2E-JAWS}",
            "view": "Registry64",
            "display_name": "Freedom Scientific JAWS 2025",
            "publisher": "Freedom Scientific",
            "display_version": "2025.2507.149.400",
            "install_location": "",
        },
        "files": [r"C:\Program Files\Freedom Scientific\JAWS\2025\jfw.exe"],
    },
}


def laptop() -> dict[str, Any]:
    """A freshly imaged laptop: no AT programs, Windows' own ATs registered, BitLocker on."""
    return {
        "hostname": "DESKTOP-4J2K9QX",
        "uninstall": [],
        "program_files": [],
        "ats": ["MagnifierPane", "Narrator", "osk"],
        "evidence": {},
        "installers": copy.deepcopy(INSTALLERS),
        "registry": {},
        "files": {},
        "acl": {},
        "bitlocker": {"protection": "On", "volume": "FullyEncrypted"},
    }


def inventory(
    tmp_path: Path, profile: AccessibilityProfile, windows: dict[str, Any] | WindowsSettings
) -> dict[str, Any]:
    """The adapter's inventory for one Windows laptop, then pointed at the stand-in (local, sh).
    ``windows``: the site's settings (as the provisioning config gives them), or host variables."""
    on_site = isinstance(windows, WindowsSettings)
    host_key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    target = ProvisionTarget(
        serial="PF3XK9Q2",
        asset_tag="DF-LAP-0042",
        kind="laptop",
        role="response",
        address="192.0.2.10",
        port=22,
        user="factory",
        private_key_path=tmp_path / "key",
        host_key=host_key,
        os_family="windows",
        accessibility=profile,
        extra_vars={} if on_site else {"windows": windows},
    )
    inv = build_inventory([target], replace(site(), windows=windows) if on_site else site(), tmp_path / "known_hosts")
    host = inv["all"]["hosts"]["PF3XK9Q2"]
    assert host["ansible_shell_type"] == "powershell"  # what a Windows OpenSSH with DefaultShell=PowerShell needs
    host.update(ansible_connection="local", ansible_shell_type="sh", ansible_python_interpreter=sys.executable)
    return inv


def run_playbook(
    tmp_path: Path,
    playbook: str,
    state: dict[str, Any],
    profile: AccessibilityProfile,
    windows: dict[str, Any] | WindowsSettings,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (tmp_path / "laptop.json").write_text(json.dumps(state))
    (tmp_path / "inventory.json").write_text(json.dumps(inventory(tmp_path, profile, windows)))
    (tmp_path / "secrets.json").write_text(json.dumps(secrets().to_vars()))
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(FAKES),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",  # the stand-in, never the installed ansible.windows
        "ANSIBLE_LIBRARY": "library",
        "ANSIBLE_NOCOLOR": "1",
        "DF_FAKE_WINDOWS": str(tmp_path / "laptop.json"),
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
            "-e", f"@{tmp_path / 'secrets.json'}", playbook]  # fmt: skip
    proc = subprocess.run(argv, cwd=PLAYBOOKS, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, json.loads((tmp_path / "laptop.json").read_text())


def recap_changed(stdout: str) -> int:
    [line] = [ln for ln in stdout.splitlines() if ln.startswith("PF3XK9Q2") and "changed=" in ln]
    return int(line.split("changed=")[1].split()[0])


NVDA_OFFICER = AccessibilityProfile(user="pc4411", screen_reader=True, screen_reader_product="nvda", large_text=True)
JAWS_OFFICER = AccessibilityProfile(user="pc5120", screen_reader=True, screen_reader_product="jaws")
DEFAULT_HIVE = r"C:\Users\Default\NTUSER.DAT"


def test_personalise_installs_configures_and_verifies_then_changes_nothing(tmp_path: Path) -> None:
    first, state = run_playbook(tmp_path, "personalise.yml", laptop(), NVDA_OFFICER, {})
    assert first.returncode == 0, first.stdout[-3000:]
    assert state["installed_with"] == [
        ["nvda-installer.exe", "--minimal --install-silent --enable-start-on-logon=True"]
    ]
    accessibility = DEFAULT_HIVE + r"|HKLM:\ANSIBLE\Software\Microsoft\Windows NT\CurrentVersion\Accessibility"
    assert state["registry"][accessibility] == {"Configuration": ["string", "nvda_nvda_v1"]}
    text_size = state["registry"][DEFAULT_HIVE + r"|HKLM:\ANSIBLE\Software\Microsoft\Accessibility"]
    assert text_size == {"TextScaleFactor": ["dword", "125"]}
    record = json.loads(state["files"][r"C:\ProgramData\DeviceFactory\accessibility\pc4411.json"])
    assert record["packages"] == ["nvda"] and record["features"] == ["screen_reader", "large_text"]

    again, state = run_playbook(tmp_path, "personalise.yml", state, NVDA_OFFICER, {})
    assert again.returncode == 0, again.stdout[-3000:]
    assert len(state["installed_with"]) == 1 and recap_changed(again.stdout) == 0


def test_a_licensed_screen_reader_is_not_passed_until_its_licence_is_proven(tmp_path: Path) -> None:
    unverified, state = run_playbook(tmp_path, "personalise.yml", laptop(), JAWS_OFFICER, {})
    assert unverified.returncode != 0
    assert "QA failed: assistive technology not ready: JAWS: licence not verified" in unverified.stdout
    assert [i for i, _ in state["installed_with"]] == ["jaws-installer.exe"]

    # Named in the site's provisioning config ([provisioning.windows.licence_evidence]), as a site would.
    site_licensing = WindowsSettings(licence_evidence={"jaws": (JAWS_LICENCE,)})
    absent, state = run_playbook(tmp_path, "personalise.yml", state, JAWS_OFFICER, site_licensing)
    assert absent.returncode != 0 and f"JAWS: no licence found ({JAWS_LICENCE})" in absent.stdout

    state["evidence"] = {JAWS_LICENCE: True}
    licensed, state = run_playbook(tmp_path, "personalise.yml", state, JAWS_OFFICER, site_licensing)
    assert licensed.returncode == 0, licensed.stdout[-3000:]
    assert len(state["installed_with"]) == 1  # installed once, never re-run


def test_a_screen_reader_that_cannot_start_at_sign_in_fails_the_check(tmp_path: Path) -> None:
    state = laptop()
    state["installers"]["nvda-installer.exe"]["ats"] = []
    proc, _ = run_playbook(tmp_path, "personalise.yml", state, NVDA_OFFICER, {})
    assert proc.returncode != 0
    assert "NVDA is not registered with Windows Ease of Access, so it cannot start at sign-in" in proc.stdout


def test_provision_locks_the_enrolment_file_and_passes_the_build_gates(tmp_path: Path) -> None:
    proc, state = run_playbook(tmp_path, "provision.yml", laptop(), NVDA_OFFICER, {})
    assert proc.returncode == 0, proc.stdout[-3000:]
    enrolment = r"C:\ProgramData\DeviceFactory\enrolment.conf"
    assert state["acl"][enrolment] == {"inherit": False, "allow": ["S-1-5-18", "S-1-5-32-544"]}
    assert state["hostname"] == "DF-LAP-0042" and state["reboots"] == 1
    assert secrets().enrolment_token not in proc.stdout


def test_provision_fails_while_bitlocker_is_still_encrypting(tmp_path: Path) -> None:
    state = laptop()
    state["bitlocker"] = {"protection": "Off", "volume": "EncryptionInProgress"}
    proc, _ = run_playbook(tmp_path, "provision.yml", state, NVDA_OFFICER, {})
    assert proc.returncode != 0
    assert "QA failed: disk encryption is off (BitLocker on the system drive: protection Off" in proc.stdout


def test_an_installer_asking_for_a_restart_gets_one_before_the_check(tmp_path: Path) -> None:
    state = laptop()
    state["installers"]["nvda-installer.exe"]["rc"] = 3010
    proc, state = run_playbook(tmp_path, "personalise.yml", state, NVDA_OFFICER, {})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert state["reboots"] == 1 and "Restart to finish the assistive-technology installs" in proc.stdout
