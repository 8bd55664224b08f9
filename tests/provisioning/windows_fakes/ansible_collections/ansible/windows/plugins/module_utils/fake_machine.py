"""A Windows laptop as a JSON file (path in DF_FAKE_WINDOWS), shared by the stand-in modules.

The stand-ins answer the way the real ansible.windows modules do (their documented return values)
so the playbooks' Windows branch runs through Ansible unchanged; what they do to the "laptop" is
recorded in the file for the test to read. Only the test suite uses this collection.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

PROGRAM_FILES = {"%ProgramFiles%": "C:\\Program Files", "%ProgramFiles(x86)%": "C:\\Program Files (x86)"}


def expand(pattern: str) -> str:
    for variable, value in PROGRAM_FILES.items():
        pattern = pattern.replace(variable, value)
    return pattern


def glob(paths: list[str], pattern: str) -> list[str]:
    """Windows wildcard matching, case-insensitive, * not crossing a folder."""
    parts = expand(pattern).lower().split("\\")
    return [
        p
        for p in paths
        if len(p.split("\\")) == len(parts)
        and all(fnmatch.fnmatchcase(a, b) for a, b in zip(p.lower().split("\\"), parts, strict=True))
    ]


def run(options: list[str], act: Callable[[dict[str, Any], dict[str, Any], bool], dict[str, Any]]) -> None:
    """Parse the options, apply ``act(state, params, check_mode)`` to the laptop and exit with its result."""
    module = AnsibleModule(argument_spec={o: {"type": "raw"} for o in options}, supports_check_mode=True)
    path = os.environ["DF_FAKE_WINDOWS"]
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    result = act(state, module.params, module.check_mode)
    state.setdefault("calls", []).append([module._name, {k: v for k, v in module.params.items() if v is not None}])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
    if result.get("failed"):
        module.fail_json(**{k: v for k, v in result.items() if k != "failed"})
    module.exit_json(**result)
