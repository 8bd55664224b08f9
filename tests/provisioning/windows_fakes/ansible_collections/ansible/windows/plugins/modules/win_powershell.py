#!/usr/bin/python
"""Stand-in for ansible.windows.win_powershell: answers the three scripts the playbooks run."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import glob, run

OPTIONS = ["script", "parameters", "depth", "error_action", "arguments", "chdir", "creates", "removes", "executable"]
ALLOWED = {"S-1-5-18", "S-1-5-32-544"}


def probe(state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    paths = list(state["program_files"])
    return {
        "uninstall": state["uninstall"],
        "files": {p: [{"path": f, "version": "1.0"} for f in glob(paths, p)] for p in params.get("Files") or []},
        "ats": state["ats"],
        "evidence": {p: bool(state["evidence"].get(p)) for p in params.get("Evidence") or []},
        "errors": [],
    }


def enrolment_acl(state: dict[str, Any], path: str) -> dict[str, Any]:
    if path not in state["files"]:
        return {"exists": False, "others": []}
    acl = state["acl"].get(path, {"inherit": True, "allow": []})
    inherited = ["S-1-5-18", "S-1-5-32-544", "S-1-5-32-545"] if acl["inherit"] else []
    return {"exists": True, "others": sorted(set(inherited + acl["allow"]) - ALLOWED)}


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    script, args = params["script"], params.get("parameters") or {}
    if "Get-UninstallEntry" in script:
        result = probe(state, args)
    elif "Get-BitLockerVolume" in script:
        result = state["bitlocker"]
    elif "Get-Acl" in script:
        result = enrolment_acl(state, args["Path"])
    else:
        return {"failed": True, "msg": "the stand-in does not know this script"}
    return {"changed": False, "result": result, "output": [], "error": [], "host_out": "", "host_err": ""}


if __name__ == "__main__":
    run(OPTIONS, act)
