"""What the Windows assistive-technology QA decides from what the laptop's probe saw.

The probe runs on Windows (roles/accessibility/files/probe_windows.ps1 under win_powershell), which
cannot run here; its judgement (filter_plugins/df_windows_at.py) is Python and is fed the result
shape win_powershell returns ($Ansible.Result under "result"), with the values the vendors' own
installers write (sources in WINDOWS_VARIANTS.md): NVDA's uninstall key "NVDA" with DisplayName
"NVDA <version>" in the 32-bit view and its Ease of Access name nvda_nvda_v1 (nvaccess/nvda
source/installer.py, easeOfAccess.py); JAWS as "Freedom Scientific JAWS <year>" with jfw.exe under
a versioned folder (its Chocolatey package's softwareName, public scripts' paths).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
_spec = importlib.util.spec_from_file_location("df_windows_at", PLAYBOOKS / "filter_plugins" / "df_windows_at.py")
assert _spec is not None and _spec.loader is not None
at = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(at)

NVDA_EXE = r"%ProgramFiles(x86)%\NVDA\nvda.exe"
JAWS_EXE = r"%ProgramFiles%\Freedom Scientific\JAWS\*\jfw.exe"
JAWS_LICENCE = r"HKLM:\SOFTWARE\Police\ATLicensing\JAWS!Server"


def programs() -> dict[str, Any]:
    """The programs table as the playbooks ship it, JAWS given the licence evidence a site would set."""
    table = yaml.safe_load((PLAYBOOKS / "vars" / "accessibility.yml").read_text())["accessibility_windows_programs"]
    table["jaws"]["licence_evidence"] = [JAWS_LICENCE]
    return table


def probe_result() -> dict[str, Any]:
    """A win_powershell result for a laptop with NVDA and a licensed JAWS, both working."""
    return {
        "changed": False,
        "failed": False,
        "output": [],
        "error": [],
        "host_out": "",
        "host_err": "",
        "result": {
            "uninstall": [
                {
                    "key": "NVDA",
                    "view": "Registry32",
                    "display_name": "NVDA 2025.1.2",
                    "display_version": "2025.1.2.52097",
                    "publisher": "NV Access",
                    "install_location": r"C:\Program Files (x86)\NVDA",
                },
                {
                    "key": "{7D0E4D0A-5C4B-4E2A-9F0B-1B2C3D4E5F60}",
                    "view": "Registry64",
                    "display_name": "Freedom Scientific JAWS 2025",
                    "display_version": "2025.2507.149.400",
                    "publisher": "Freedom Scientific",
                    "install_location": "",
                },
                {
                    "key": "Git_is1",
                    "view": "Registry64",
                    "display_name": "Git",
                    "display_version": "2.47.0",
                    "publisher": "The Git Development Community",
                    "install_location": r"C:\Program Files\Git",
                },
            ],
            "files": {
                NVDA_EXE: [{"path": r"C:\Program Files (x86)\NVDA\nvda.exe", "version": "2025.1.2.52097"}],
                r"%ProgramFiles%\NVDA\nvda.exe": [],
                JAWS_EXE: [
                    {"path": r"C:\Program Files\Freedom Scientific\JAWS\2025\jfw.exe", "version": "2025.2507.149.400"}
                ],
            },
            "ats": ["MagnifierPane", "Narrator", "nvda_nvda_v1", "osk"],
            "evidence": {JAWS_LICENCE: True},
            "errors": [],
        },
    }


def findings(result: dict[str, Any], required: list[str], table: dict[str, Any] | None = None) -> dict[str, Any]:
    return at.df_windows_at_findings(result, required, table or programs())


def test_installed_registered_and_licensed_products_are_ready() -> None:
    assert findings(probe_result(), ["jaws", "nvda"]) == {"ready": ["jaws", "nvda"], "missing": []}


def test_a_program_folder_without_a_programs_and_features_entry_is_not_installed() -> None:
    result = probe_result()
    result["result"]["uninstall"] = [e for e in result["result"]["uninstall"] if e["key"] != "NVDA"]
    assert findings(result, ["nvda"]) == {
        "ready": [],
        "missing": ["NVDA is not installed (not in Programs and Features)"],
    }


def test_an_entry_whose_program_file_is_gone_is_not_ready() -> None:
    result = probe_result()
    result["result"]["files"][NVDA_EXE] = []
    [problem] = findings(result, ["nvda"])["missing"]
    assert problem.startswith("NVDA is registered as installed but ") and "nvda.exe is missing" in problem


def test_an_nvda_registered_in_the_64_bit_view_counts_too() -> None:
    """NVDA is moving to a 64-bit build: the entry and exe may be in the native view and folder."""
    result = probe_result()
    result["result"]["uninstall"][0]["view"] = "Registry64"
    result["result"]["files"][NVDA_EXE] = []
    result["result"]["files"][r"%ProgramFiles%\NVDA\nvda.exe"] = [
        {"path": r"C:\Program Files\NVDA\nvda.exe", "version": ""}
    ]
    assert findings(result, ["nvda"])["ready"] == ["nvda"]


def test_a_screen_reader_not_registered_with_ease_of_access_cannot_start_at_sign_in() -> None:
    result = probe_result()
    result["result"]["ats"] = ["MagnifierPane", "Narrator"]
    assert findings(result, ["nvda"])["missing"] == [
        "NVDA is not registered with Windows Ease of Access, so it cannot start at sign-in"
    ]


def test_a_licensed_product_without_licence_evidence_configured_is_not_verified() -> None:
    table = programs()
    table["jaws"]["licence_evidence"] = []
    assert findings(probe_result(), ["jaws"], table)["missing"] == [
        "JAWS: licence not verified (no licence evidence is configured for it at this site)"
    ]


def test_a_licensed_product_whose_evidence_is_absent_is_reported() -> None:
    result = probe_result()
    result["result"]["evidence"] = {JAWS_LICENCE: False}
    assert findings(result, ["jaws"])["missing"] == [f"JAWS: no licence found ({JAWS_LICENCE})"]


def test_what_the_probe_could_not_read_fails_the_check() -> None:
    result = probe_result()
    result["result"]["errors"] = ["uninstall entries: Requested registry access is not allowed."]
    out = findings(result, ["nvda"])
    assert out["missing"] == ["the probe could not read: uninstall entries: Requested registry access is not allowed."]


@pytest.mark.parametrize(
    "result",
    [
        {"changed": False, "skipped": True},  # the probe task was skipped
        {"changed": False, "result": {}},  # a script that set no $Ansible.Result
        {"changed": False, "result": "System.Collections.Hashtable"},  # serialised past its depth
    ],
)
def test_a_result_that_is_not_the_probes_is_refused(result: dict[str, Any]) -> None:
    with pytest.raises(at.ProbeResultError):
        findings(result, ["nvda"])


def test_the_install_skips_only_products_that_are_installed_with_their_program() -> None:
    result = probe_result()
    assert at.df_windows_at_installed(result, ["jaws", "nvda"], programs()) == ["jaws", "nvda"]
    broken = copy.deepcopy(result)
    broken["result"]["files"][JAWS_EXE] = []
    assert at.df_windows_at_installed(broken, ["jaws", "nvda"], programs()) == ["nvda"]
    # An unlicensed product is installed: the install must not run its installer again.
    assert at.df_windows_at_installed(
        result, ["jaws"], {**programs(), "jaws": {**programs()["jaws"], "licence_evidence": []}}
    ) == ["jaws"]


def test_the_probe_is_asked_only_about_the_required_products() -> None:
    spec = at.df_windows_probe_spec(programs(), ["jaws"])
    assert spec == {"files": [JAWS_EXE], "evidence": [JAWS_LICENCE]}


@pytest.mark.parametrize(
    ("display_name", "product"),
    [
        ("NVDA 2024.4.2", "nvda"),
        ("Freedom Scientific JAWS 2024", "jaws"),
        ("JAWS 2023", "jaws"),
        ("Freedom Scientific Fusion 2025", "zoomtext"),
        ("ZoomText 2024", "zoomtext"),
        ("Dragon Professional 16", "dragon"),
        ("Dragon Law Enforcement 16", "dragon"),
    ],
)
def test_the_display_names_of_each_product_are_recognised(display_name: str, product: str) -> None:
    table = programs()
    matches = [name for name, p in table.items() if at._entries_for(p, [{"display_name": display_name}])]
    assert matches == [product]


def test_similar_names_are_not_taken_for_the_product() -> None:
    table = programs()
    for display_name in ("NVDA add-on: Remote", "JAWS Scripts For MuseScore3", "Dragon Centre"):
        matches = [name for name, p in table.items() if at._entries_for(p, [{"display_name": display_name}])]
        assert matches == [], display_name
