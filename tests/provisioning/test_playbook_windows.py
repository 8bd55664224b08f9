"""The playbooks' Windows branch, which cannot run here (no Windows host): ansible-lint with the
production profile, ``ansible-playbook --syntax-check`` (which resolves every module of both
branches, so a misspelt ansible.windows module fails it), and the contract the Windows branch
shares with the Linux one (the Linux branch runs for real against sshd in the other tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from factory.custody.at_needs import SCREEN_READERS, AtNeeds

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
BIN = Path(sys.executable).parent


def _yaml(rel: str) -> Any:
    return yaml.safe_load((PLAYBOOKS / rel).read_text())


def _modules(tasks: list[dict[str, Any]]) -> set[str]:
    keywords = {
        "name",
        "when",
        "loop",
        "loop_control",
        "register",
        "vars",
        "no_log",
        "check_mode",
        "notify",
        "changed_when",
        "become",
        "become_method",
        "become_flags",
    }
    return {key for task in tasks for key in task if key not in keywords}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_LIBRARY": "library"}
    return subprocess.run(argv, cwd=PLAYBOOKS, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow  # ansible-lint loads every collection it checks against
def test_ansible_lint_production_profile_passes() -> None:
    result = _run(str(BIN / "ansible-lint"), "--nocolor")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.slow  # two ansible-playbook start-ups
@pytest.mark.parametrize("playbook", ["provision.yml", "personalise.yml"])
def test_syntax_check_resolves_both_branches(playbook: str) -> None:
    result = _run(str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    ("dispatcher", "linux", "windows"),
    [
        ("accessibility/tasks/main.yml", "linux.yml", "windows.yml"),
        ("accessibility/tasks/verify.yml", "verify_linux.yml", "verify_windows.yml"),
        ("base/tasks/main.yml", "linux.yml", "windows.yml"),
        ("profile/tasks/main.yml", "linux.yml", "windows.yml"),
        ("qa/tasks/main.yml", "linux.yml", "windows.yml"),
    ],
)
def test_each_branched_role_picks_its_branch_by_os_family(dispatcher: str, linux: str, windows: str) -> None:
    tasks = _yaml(f"roles/{dispatcher}")
    imports = {t["ansible.builtin.import_tasks"]: t["when"] for t in tasks if "ansible.builtin.import_tasks" in t}
    assert imports == {linux: "df.os_family != 'windows'", windows: "df.os_family == 'windows'"}


# Controller-side steps the Windows branch may use besides ansible.windows modules: facts, and
# the accessibility role's one probe (probe_windows.yml), shared by its install, its verify and qa.
CONTROLLER_STEPS = {"ansible.builtin.set_fact", "ansible.builtin.import_tasks", "ansible.builtin.include_role"}


def test_windows_tasks_use_windows_modules_and_linux_tasks_none() -> None:
    for role, branch in [("accessibility", "windows.yml"), ("accessibility", "verify_windows.yml"),
                         ("accessibility", "probe_windows.yml"), ("base", "windows.yml"), ("profile", "windows.yml"),
                         ("qa", "windows.yml")]:  # fmt: skip
        modules = _modules(_yaml(f"roles/{role}/tasks/{branch}"))
        assert modules and all(m.startswith("ansible.windows.") or m in CONTROLLER_STEPS for m in modules), (
            role, branch, modules,
        )  # fmt: skip
    linux = [("accessibility", "linux.yml"), ("accessibility", "verify_linux.yml"), ("base", "linux.yml"),
             ("profile", "linux.yml"), ("qa", "linux.yml")]  # fmt: skip
    for role, branch in linux:
        assert not any(m.startswith("ansible.windows.") for m in _modules(_yaml(f"roles/{role}/tasks/{branch}")))


def test_both_verify_branches_hand_the_same_result_to_the_one_qa_assert() -> None:
    facts = {}
    for branch in ("verify_linux.yml", "verify_windows.yml"):
        [last] = [t for t in _yaml(f"roles/accessibility/tasks/{branch}") if "ansible.builtin.set_fact" in t]
        facts[branch] = last["ansible.builtin.set_fact"]
    assert {k: sorted(v["accessibility_qa"]) for k, v in facts.items()} == {
        "verify_linux.yml": ["missing", "ok"],
        "verify_windows.yml": ["missing", "ok"],
    }
    [qa] = [t for t in _yaml("roles/accessibility/tasks/verify.yml") if "ansible.builtin.assert" in t]
    assert qa["name"] == "QA assistive technology is installed and configured"
    assert "accessibility_qa.missing" in qa["ansible.builtin.assert"]["fail_msg"]


def test_every_feature_is_provided_and_configured_on_both_os_families() -> None:
    av = _yaml("vars/accessibility.yml")
    defaults = _yaml("vars/defaults.yml")["device_factory_defaults"]["accessibility"]
    features = av["accessibility_features"]
    for table in ("accessibility_labels", "accessibility_packages", "accessibility_dconf",
                  "accessibility_windows_by_feature", "accessibility_windows_values"):  # fmt: skip
        assert sorted(av[table]) == sorted(features), table
    # Each feature either installs something or sets something, on both branches.
    for feature in features:
        assert av["accessibility_packages"][feature] or av["accessibility_dconf"][feature], feature
        assert av["accessibility_windows_by_feature"][feature] or av["accessibility_windows_values"][feature], feature
    # The officer's structured profile (custody) is exactly what the playbooks read, on both branches.
    assert sorted(AtNeeds.__dataclass_fields__) == sorted(k for k in defaults if k != "user")
    assert set(SCREEN_READERS) <= set(av["accessibility_windows_programs"])
    programs = {p for ps in av["accessibility_windows_by_feature"].values() for p in ps if "{{" not in p}
    assert programs <= set(av["accessibility_windows_programs"])
    assert {"nvda", "jaws", "zoomtext", "dragon"} <= set(av["accessibility_windows_programs"])


def test_branches_read_only_the_shared_inputs() -> None:
    """Both branches of a role read the profile through the same variables; the Windows branch adds
    only its df.windows settings (and the CA's name, a file name there), and the Linux branch only
    what places files under its target root."""
    read = {}
    for role in ("accessibility", "base", "profile", "qa"):
        for branch in ("linux", "windows"):
            text = (PLAYBOOKS / f"roles/{role}/tasks/{branch}.yml").read_text()
            read[(role, branch)] = set(re.findall(r"\bdf\.([a-z_]+)", text))
    shared = {"accessibility": {"install_packages", "target_root"}, "base": {"target_root", "site_ca_pem"},
              "profile": {"target_root"}, "qa": {"target_root"}}  # fmt: skip
    for role in ("accessibility", "base", "profile", "qa"):
        windows_only = read[(role, "windows")] - read[(role, "linux")]
        assert windows_only <= {"windows", "site_ca_name"}, (role, windows_only)
        assert read[(role, "linux")] - read[(role, "windows")] <= shared[role] | {"set_live_hostname"}, role


def test_both_qa_branches_hand_the_same_findings_to_the_build_gates(tmp_path: Path) -> None:
    """The Linux findings come from df_qa_probe; the Windows branch builds the same shape."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("df_qa_probe", PLAYBOOKS / "library" / "df_qa_probe.py")
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    linux = {
        "encryption": sorted(probe.encryption_state(str(tmp_path), False)),
        "enrolment": sorted(probe.enrolment_state(str(tmp_path))),
        "assistive_technology": sorted(probe.assistive_technology_state(str(tmp_path), [])),
    }
    [collect] = [t for t in _yaml("roles/qa/tasks/windows.yml") if "ansible.builtin.set_fact" in t]
    windows = {k: sorted(v) for k, v in collect["ansible.builtin.set_fact"]["qa_probe"].items()}
    assert windows == {"encryption": ["detail", "ok"], "enrolment": ["detail", "ok"],
                       "assistive_technology": ["missing", "ok"]}  # fmt: skip
    assert {k: [f for f in v if f in ("ok", "detail", "missing")] for k, v in linux.items()} == windows
