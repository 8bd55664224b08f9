#!/usr/bin/python
"""Stand-in for ansible.windows.win_acl: allow entries kept per path."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["path", "user", "rights", "type", "state", "inherit", "propagation"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    acl = state["acl"].setdefault(params["path"], {"inherit": True, "allow": []})
    changed = params["user"] not in acl["allow"]
    if changed and not check_mode:
        acl["allow"].append(params["user"])
    return {"changed": changed}


if __name__ == "__main__":
    run(OPTIONS, act)
