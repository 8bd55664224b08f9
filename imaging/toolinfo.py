"""Identity of this erase tool as it appears on results: name, version and a hash of its code."""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

TOOL_NAME = "device-factory-imaging"
DISTRIBUTION = "device-factory"
PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def tool_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def code_sha256() -> str:
    """SHA-256 over the package's .py sources in sorted path order, each prefixed by its path."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
