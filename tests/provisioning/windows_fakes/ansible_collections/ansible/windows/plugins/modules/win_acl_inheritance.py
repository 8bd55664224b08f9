#!/usr/bin/python
"""Stand-in for ansible.windows.win_acl_inheritance: whether a path inherits its folder's access."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["path", "state", "reorganize"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    acl = state["acl"].setdefault(params["path"], {"inherit": True, "allow": []})
    want = params.get("state", "absent") == "present"
    changed = acl["inherit"] != want
    if changed and not check_mode:
        acl["inherit"] = want
    return {"changed": changed}


if __name__ == "__main__":
    run(OPTIONS, act)
