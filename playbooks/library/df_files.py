#!/usr/bin/python
"""Converge a set of files and symlinks under a target root in one module run.

The roles render every file on the controller (template lookups) and hand the whole set to
this module, so a role costs one remote round trip instead of a stat + transfer + copy per
file: on a build bench provisioning many devices at once that is most of the run time.
Writes are atomic (temp file + rename in the same directory) and idempotent: an unchanged
file is neither rewritten nor reported. Returns paths only, never contents.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: df_files
short_description: Write rendered files and symlinks under a target root, idempotently
options:
  root: {type: path, required: true, description: directory the relative paths live under}
  files:
    type: dict
    required: true
    description: >
      relative path -> content string, or -> dict with content, mode, or state=link and src
  mode: {type: str, default: "0644", description: default file mode}
  dir_mode: {type: str, default: "0755", description: mode of directories this module creates}
"""


class Invalid(Exception):
    pass


def resolve(root: str, rel: str) -> str:
    if os.path.isabs(rel) or ".." in rel.split("/") or not rel.strip("/"):
        raise Invalid(f"path {rel!r} must be relative and stay under the root")
    return os.path.join(root, rel)


def make_parents(path: str, dir_mode: int, check: bool) -> bool:
    parent = os.path.dirname(path)
    if os.path.isdir(parent):
        return False
    if not check:
        os.makedirs(parent, mode=dir_mode, exist_ok=True)
    return True


def converge_file(path: str, content: bytes, mode: int, dir_mode: int, check: bool) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            same = f.read() == content
        if same and stat.S_IMODE(st.st_mode) == mode:
            return False
        if same:
            if not check:
                os.chmod(path, mode)
            return True
    elif st is not None and stat.S_ISDIR(st.st_mode):
        raise Invalid(f"{path} is a directory")
    if check:
        return True
    make_parents(path, dir_mode, check)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".df-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def converge_link(path: str, src: str, dir_mode: int, check: bool) -> bool:
    if os.path.islink(path) and os.readlink(path) == src:
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        raise Invalid(f"{path} is a directory")
    if check:
        return True
    make_parents(path, dir_mode, check)
    tmp = os.path.join(os.path.dirname(path), f".df-link-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(src, tmp)
    os.replace(tmp, path)
    return True


def parse_mode(value: Any, name: str) -> int:
    if isinstance(value, int):  # YAML already read an unquoted 0644 as a number
        return value
    try:
        return int(str(value), 8)
    except ValueError as exc:
        raise Invalid(f"{name} {value!r} is not an octal mode") from exc


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "files": {"type": "dict", "required": True},
            "mode": {"type": "str", "default": "0644"},
            "dir_mode": {"type": "str", "default": "0755"},
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    check = module.check_mode
    changed: list[str] = []
    try:
        if not os.path.isdir(root):
            raise Invalid(f"target root {root} is not a directory")
        default_mode = parse_mode(module.params["mode"], "mode")
        dir_mode = parse_mode(module.params["dir_mode"], "dir_mode")
        for rel, spec in module.params["files"].items():
            path = resolve(root, rel)
            spec = spec if isinstance(spec, dict) else {"content": spec}
            if spec.get("state", "file") == "link":
                did = converge_link(path, str(spec["src"]), dir_mode, check)
            else:
                content = str(spec.get("content", "")).encode()
                mode = parse_mode(spec["mode"], f"mode of {rel}") if "mode" in spec else default_mode
                did = converge_file(path, content, mode, dir_mode, check)
            if did:
                changed.append(rel)
    except (Invalid, OSError) as exc:
        module.fail_json(msg=str(exc), changed_paths=changed)
    module.exit_json(changed=bool(changed), changed_paths=changed, count=len(module.params["files"]))


if __name__ == "__main__":
    main()
