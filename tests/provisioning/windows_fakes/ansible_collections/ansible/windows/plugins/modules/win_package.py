#!/usr/bin/python
"""Stand-in for ansible.windows.win_package: runs the "installer" the laptop file describes."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["path", "arguments", "state", "product_id", "creates_path", "expected_return_code", "provider"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    installer = params["path"].rsplit("\\", 1)[-1]
    effect = state["installers"].get(installer)
    if effect is None:
        return {"failed": True, "msg": f"the specified path '{params['path']}' does not exist"}
    if not check_mode:
        state["uninstall"].append(effect["uninstall"])
        state["program_files"].extend(effect["files"])
        state["ats"].extend(effect.get("ats", []))
        state.setdefault("installed_with", []).append([installer, params.get("arguments")])
    # The real module sets failed=false itself when rc is an expected code (0, 3010): without it
    # Ansible would take any rc other than 0 for a failure.
    rc = effect.get("rc", 0)
    return {"changed": True, "failed": False, "rc": rc, "reboot_required": rc == 3010}


if __name__ == "__main__":
    run(OPTIONS, act)
