"""The one JSON object a command-line tool prints (``smartctl -j``, ``nvme ... -o json``)."""

from __future__ import annotations

import json
from typing import Any


def tool_json_object(text: str, tool: str, error: type[ValueError]) -> dict[str, Any]:
    """``text`` parsed as a JSON object; each parser raises its own ``error`` (naming ``tool``) when
    the output is not JSON or is JSON of another kind, so its callers catch what they already do."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{tool}: output is not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise error(f"{tool}: output is not a JSON object")
    return data
