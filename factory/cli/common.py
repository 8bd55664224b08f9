"""CLI plumbing: one-line errors with a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

# Re-exported: the light half of what commands share (factory/cli/params.py).
from factory.cli.params import ActorOpt, JsonFlag, SerialArg, fail, plain_errors, print_json, settings  # noqa: F401
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.db.migrate import current_revision, head_revision
from factory.kernel.db.readonly import safe_url as _safe_url

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def rich_console() -> Console:
    """Rich's console, made (and Rich imported, ~50 ms of a command's start) on first use: a command
    asked for --json, or one that only echoes, never prints through it."""
    from rich.console import Console

    return Console()


class _ConsoleOnFirstUse:
    """Stands for ``rich_console()`` to the commands that print through ``console``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(rich_console(), name)


console = cast("Console", _ConsoleOnFirstUse())

P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into 'error: <reason>' on stderr and exit 1 (the database's included)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            fail(f"database error: {_first_line(exc)}")
        raise AssertionError("unreachable")

    return plain_errors(wrapper)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def context(require_schema: bool = True) -> AppContext:
    config = settings()
    ctx = AppContext(config, pooled=False)
    try:
        ctx.engine  # noqa: B018 - made now, so a malformed URL is named here (nothing connects yet)
    except ValueError as exc:  # SQLAlchemy's URL parser, e.g. a port that is not a number
        fail(f"configuration: FACTORY_DATABASE_URL {_safe_url(config.database_url)} is not a database URL: {exc}")
        raise
    if require_schema:
        current = current_revision(ctx.engine)
        if current != head_revision(ctx.settings.database_url):
            fail(
                f"database at {_safe_url(ctx.settings.database_url)} is not initialised or not up to date "
                f"(revision {current}); run 'factory db upgrade'"
            )
    return ctx


@contextmanager
def unit_of_work(require_schema: bool = True) -> Iterator[tuple[AppContext, Session]]:
    """The CLI's context and one database transaction (committed when the block ends cleanly)."""
    ctx = context(require_schema)
    with session_scope(ctx.engine) as session:
        yield ctx, session


def print_json_result(data: Any, ok: bool) -> None:
    """``--json`` output of a check: the report, then exit 1 if it failed."""
    print_json(data)
    if not ok:
        raise typer.Exit(1)


def read_csv(file: Path, max_bytes: int) -> str:
    """The text of a CSV file to import (a spreadsheet's may start with a BOM), or a one-line failure."""
    try:
        if file.stat().st_size > max_bytes:
            fail(f"{file} is larger than {max_bytes // 2**20} MiB")
        return file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
        raise  # fail() has exited; this only tells the type checker
