#!/usr/bin/python
"""Stand-in for ansible.windows.win_regedit: values kept per hive file and key, check mode honoured."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["path", "name", "data", "type", "state", "hive", "delete_key"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    key = f"{params.get('hive') or ''}|{params['path']}"
    values = state["registry"].setdefault(key, {})
    want = [params.get("type") or "string", str(params.get("data"))]
    changed = values.get(params["name"]) != want
    if changed and not check_mode:
        values[params["name"]] = want
    return {"changed": changed, "data_changed": changed, "data_type_changed": False}


if __name__ == "__main__":
    run(OPTIONS, act)
