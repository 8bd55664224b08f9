#!/usr/bin/python
"""Read-only QA probe of the assistive technology on a Linux target: for each enabled feature,
are its Debian packages installed (the dpkg database under the target root says
"install ok installed") and does the dconf keyfile hold the values the profile sets?

Reports what is missing in words a technician can act on ("screen reader: orca is not
installed"); the role's assert decides. A marker file written by the playbook proves nothing
about an install, so only the package database counts.
"""

from __future__ import annotations

import configparser
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: df_at_probe
short_description: Check that the assistive technology of a profile is installed and configured
options:
  root: {type: path, required: true, description: target root the device was provisioned under}
  enabled: {type: list, elements: str, required: true, description: features the profile enables}
  labels: {type: dict, required: true, description: feature -> words for a technician}
  packages: {type: dict, required: true, description: feature -> Debian packages}
  settings: {type: dict, required: true, description: feature -> {"section/key" -> value}}
  settings_file: {type: str, required: true, description: dconf keyfile, relative to root}
"""


def installed_packages(root: str) -> set[str]:
    """Packages the dpkg database under ``root`` records as installed."""
    installed: set[str] = set()
    try:
        with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8", errors="replace") as f:
            stanzas = f.read().split("\n\n")
    except FileNotFoundError:
        return installed
    for stanza in stanzas:
        fields = dict(ln.split(": ", 1) for ln in stanza.splitlines() if ": " in ln and not ln.startswith(" "))
        if fields.get("Status", "").strip() == "install ok installed" and "Package" in fields:
            installed.add(fields["Package"].strip())
    return installed


def keyfile_values(path: str) -> dict[str, str] | None:
    """``section/key`` -> value of a dconf keyfile; None when there is none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # dconf keys are case-sensitive
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return None
    return {
        f"{section}/{key}": value.strip() for section in parser.sections() for key, value in parser[section].items()
    }


def missing_items(params: dict[str, Any]) -> list[str]:
    installed = installed_packages(params["root"])
    keyfile = os.path.join(params["root"], params["settings_file"])
    values = keyfile_values(keyfile)
    missing: list[str] = []
    for feature in params["enabled"]:
        label = params["labels"].get(feature, feature)
        for package in params["packages"].get(feature, []):
            if package not in installed:
                missing.append(f"{label}: {package} is not installed")
        for key, want in (params["settings"].get(feature) or {}).items():
            if values is None:
                missing.append(f"{label}: no settings file {params['settings_file']}")
                break
            have = values.get(key)
            if have != str(want):
                missing.append(f"{label}: {key} is {have if have is not None else 'unset'}, not {want}")
    return missing


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "enabled": {"type": "list", "elements": "str", "required": True},
            "labels": {"type": "dict", "required": True},
            "packages": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
            "settings_file": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, missing=missing_items(module.params))


if __name__ == "__main__":
    main()
