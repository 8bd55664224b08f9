#!/usr/bin/python
"""Stand-in for ansible.windows.win_hostname: a rename needs a restart, as on Windows."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    old = state["hostname"]
    changed = old.lower() != params["name"].lower()
    if changed and not check_mode:
        state["hostname"] = params["name"]
    return {"changed": changed, "old_name": old, "reboot_required": changed}


if __name__ == "__main__":
    run(["name"], act)
