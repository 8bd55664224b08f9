#!/usr/bin/python
"""Stand-in for ansible.windows.win_copy with content: the file's text kept in the laptop file."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["content", "dest", "src", "backup", "force", "remote_src", "decrypt", "local_follow"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    changed = state["files"].get(params["dest"]) != params["content"]
    if changed and not check_mode:
        state["files"][params["dest"]] = params["content"]
    return {"changed": changed, "dest": params["dest"], "operation": "file_copy"}


if __name__ == "__main__":
    run(OPTIONS, act)
