#!/usr/bin/python
"""Read-only QA probe for a provisioned device (disk encryption, enrolment, AT packages).

Runs on the device. Reports findings only; the qa role's asserts decide pass or fail, so each
unmet gate fails under its own task name. Never returns file contents: the enrolment file
holds a secret token.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: df_qa_probe
short_description: Probe a provisioned device for the device-factory QA gates
options:
  root: {type: path, required: true, description: target root the device was provisioned under}
  live: {type: bool, default: false, description: also require an active dm-crypt mapping}
  required_packages: {type: list, elements: str, default: [], description: AT packages}
"""


def luks_volumes(crypttab: str) -> list[str]:
    """Names of crypttab entries that are LUKS (the default type when no options are given)."""
    try:
        with open(crypttab) as f:
            rows = [ln.split() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    except FileNotFoundError:
        return []
    return [r[0] for r in rows if len(r) >= 2 and (len(r) < 4 or "luks" in r[3].split(","))]


def active_crypt_mappings() -> list[str]:
    names = []
    for uuid_file in glob.glob("/sys/block/dm-*/dm/uuid"):
        with open(uuid_file) as f:
            if f.read().startswith("CRYPT-"):
                names.append(uuid_file.split("/")[3])
    return names


def encryption_state(root: str, live: bool) -> dict[str, Any]:
    crypttab = os.path.join(root, "etc/crypttab")
    volumes = luks_volumes(crypttab)
    state: dict[str, Any] = {
        "ok": bool(volumes),
        "volumes": volumes,
        "detail": f"LUKS volumes in {crypttab}: {', '.join(volumes) or 'none'}",
    }
    if live:
        mappings = active_crypt_mappings()
        state["active_mappings"] = mappings
        if not mappings:
            state.update(ok=False, detail="no active dm-crypt mapping on the running system")
    return state


def enrolment_state(root: str) -> dict[str, Any]:
    path = os.path.join(root, "etc/device-factory/enrolment.conf")
    try:
        mode = os.stat(path).st_mode
        with open(path) as f:
            filled = {k.strip(): bool(v.strip()) for k, _, v in (ln.partition("=") for ln in f if "=" in ln)}
    except FileNotFoundError:
        return {"ok": False, "detail": f"{path} is missing"}
    missing = [k for k in ("server_url", "device_serial", "token") if not filled.get(k)]
    if missing:
        return {"ok": False, "detail": f"{path} lacks {', '.join(missing)}"}
    if mode & 0o077:
        return {"ok": False, "detail": f"{path} is readable by others (mode {mode & 0o777:o})"}
    return {"ok": True, "detail": f"{path} present"}


def assistive_technology_state(root: str, packages: list[str]) -> dict[str, Any]:
    marker_dir = os.path.join(root, "var/lib/device-factory/packages")
    missing = [p for p in packages if not os.path.isfile(os.path.join(marker_dir, f"{p}.present"))]
    return {"ok": not missing, "missing": missing}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "live": {"type": "bool", "default": False},
            "required_packages": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    module.exit_json(
        changed=False,
        encryption=encryption_state(root, module.params["live"]),
        enrolment=enrolment_state(root),
        assistive_technology=assistive_technology_state(root, module.params["required_packages"]),
    )


if __name__ == "__main__":
    main()
