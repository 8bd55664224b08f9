"""The playbook's own modules (playbooks/library), run locally the way Ansible runs them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks" / "library"


def run_module(name: str, tmp_path: Path, check_mode: bool = False, **args: Any) -> dict[str, Any]:
    args_file = tmp_path / f"{name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}))
    proc = subprocess.run([sys.executable, str(LIBRARY / f"{name}.py"), str(args_file)], capture_output=True, text=True)
    return json.loads(proc.stdout)


def test_df_files_converges_idempotently(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    files = {
        "etc/hostname": "df-1\n",
        "etc/secret.conf": {"content": "token = x\n", "mode": "0600"},
        "etc/localtime": {"state": "link", "src": "/usr/share/zoneinfo/Europe/London"},
    }
    first = run_module("df_files", tmp_path, root=str(root), files=files)
    assert first["changed"] and sorted(first["changed_paths"]) == sorted(files)
    assert (root / "etc/hostname").read_text() == "df-1\n"
    assert stat.S_IMODE((root / "etc/secret.conf").stat().st_mode) == 0o600
    assert (root / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/Europe/London")
    assert "token" not in json.dumps(first["changed_paths"])

    second = run_module("df_files", tmp_path, root=str(root), files=files)
    assert not second["changed"] and second["changed_paths"] == []

    (root / "etc/secret.conf").chmod(0o644)
    third = run_module("df_files", tmp_path, root=str(root), files=files)
    assert third["changed_paths"] == ["etc/secret.conf"]
    assert stat.S_IMODE((root / "etc/secret.conf").stat().st_mode) == 0o600
    assert not [p for p in (root / "etc").iterdir() if p.name.startswith(".df-")]


def test_df_files_check_mode_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = run_module("df_files", tmp_path, check_mode=True, root=str(root), files={"etc/hostname": "x\n"})
    assert result["changed"] and not (root / "etc").exists()


def test_df_files_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for bad in ("../escape", "/etc/passwd", "etc/../../escape"):
        result = run_module("df_files", tmp_path, root=str(root), files={bad: "x"})
        assert result["failed"] and "stay under the root" in result["msg"]
    assert not (tmp_path / "escape").exists()


def _provisioned_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/device-factory").mkdir(parents=True)
    (root / "etc/crypttab").write_text("# comment\ncryptroot UUID=1 none luks,discard\n")
    enrolment = root / "etc/device-factory/enrolment.conf"
    enrolment.write_text("[enrolment]\nserver_url = https://x\ndevice_serial = S1\ntoken = t0k3n\n")
    enrolment.chmod(0o600)
    (root / "var/lib/device-factory/packages").mkdir(parents=True)
    (root / "var/lib/device-factory/packages/orca.present").write_text("x\n")
    return root


def test_qa_probe_passes_a_provisioned_root(tmp_path: Path) -> None:
    root = _provisioned_root(tmp_path)
    result = run_module("df_qa_probe", tmp_path, root=str(root), required_packages=["orca"])
    assert not result["changed"]
    assert result["encryption"]["ok"] and result["encryption"]["volumes"] == ["cryptroot"]
    assert result["enrolment"]["ok"] and result["assistive_technology"]["ok"]
    assert "t0k3n" not in json.dumps(result)


def test_qa_probe_reports_each_unmet_gate(tmp_path: Path) -> None:
    root = _provisioned_root(tmp_path)
    (root / "etc/crypttab").write_text("# cryptroot UUID=1 none luks\nswap /dev/sdb none plain\n")
    (root / "etc/device-factory/enrolment.conf").chmod(0o644)
    result = run_module("df_qa_probe", tmp_path, root=str(root), required_packages=["orca", "magnus"])
    assert not result["encryption"]["ok"]
    assert not result["enrolment"]["ok"] and "readable by others" in result["enrolment"]["detail"]
    assert result["assistive_technology"] == {"ok": False, "missing": ["magnus"]}

    (root / "etc/device-factory/enrolment.conf").write_text("server_url = https://x\ntoken =\n")
    result = run_module("df_qa_probe", tmp_path, root=str(root))
    assert "lacks device_serial, token" in result["enrolment"]["detail"]
