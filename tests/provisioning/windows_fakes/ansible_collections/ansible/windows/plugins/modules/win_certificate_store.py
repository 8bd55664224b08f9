#!/usr/bin/python
"""Stand-in for ansible.windows.win_certificate_store: the imported files per store."""

from __future__ import annotations

from typing import Any

from ansible_collections.ansible.windows.plugins.module_utils.fake_machine import run

OPTIONS = ["path", "store_name", "store_location", "state", "file_type", "thumbprint", "password", "key_exportable"]


def act(state: dict[str, Any], params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    if params["path"] not in state["files"]:
        return {"failed": True, "msg": f"cannot find file {params['path']}"}
    store = state.setdefault("cert_store", {}).setdefault(f"{params['store_location']}\\{params['store_name']}", [])
    changed = params["path"] not in store
    if changed and not check_mode:
        store.append(params["path"])
    return {"changed": changed, "thumbprints": []}


if __name__ == "__main__":
    run(OPTIONS, act)
