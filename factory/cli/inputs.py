"""Checks of command-line values against the limits the API applies (``factory.kernel.limits``).

Each returns a Typer callback, so a value past a limit is refused while the command line is read:
one line naming the option and the limit, before anything is opened or written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from factory.kernel.limits import text_problem


def bounded(what: str, limit: int, *, count: int | None = None) -> Callable[[Any], Any]:
    """A callback refusing text longer than ``limit`` or with control characters (each item of a list),
    and more than ``count`` items."""

    def check(value: Any) -> Any:
        items = [] if value is None else [value] if isinstance(value, str) else value
        if count is not None and len(items) > count:
            raise typer.BadParameter(f"at most {count} {what} values are allowed, not {len(items)}")
        for item in items:
            if problem := text_problem(what, item, limit):
                raise typer.BadParameter(problem)
        return value

    return check
