#!/usr/bin/python
"""Stand-in for ansible.windows.win_reboot (an action plugin on the real collection): counts restarts."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if not check_mode:
        state["reboots"] = state.get("reboots", 0) + 1
    return {"changed": True, "rebooted": True, "elapsed": 0}


if __name__ == "__main__":
    run(["reboot_timeout", "msg", "pre_reboot_delay", "post_reboot_delay", "test_command"], act)
