"""CLI plumbing: one-line errors with a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlmodel import Session

from factory.cli.inputs import bounded
from factory.kernel import limits
from factory.kernel.config import Settings, load_settings
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.db.migrate import current_revision, head_revision
from factory.kernel.errors import FactoryError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

# Parameters many commands share, spelt once.
SerialArg = Annotated[str, typer.Argument(help="Device serial number.", callback=bounded("serial", limits.SERIAL))]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ActorOpt = Annotated[
    str, typer.Option("--actor", help="Who is acting (recorded).", callback=bounded("--actor", limits.PARTY))
]


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into 'error: <reason>' on stderr and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except FactoryError as exc:
            fail(exc.reason)
        except (OperationalError, ProgrammingError) as exc:
            fail(f"database error: {_first_line(exc)}")
        except SQLAlchemyError as exc:
            fail(f"database error: {_first_line(exc)}")
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        raise AssertionError("unreachable")

    return wrapper


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def settings() -> Settings:
    """The settings from the environment; a malformed variable is a one-line error."""
    try:
        return load_settings()
    except ValueError as exc:  # load_settings names the variable and what it must be
        fail(f"configuration: {exc}")
    raise AssertionError("unreachable")


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


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@contextmanager
def unit_of_work(require_schema: bool = True) -> Iterator[tuple[AppContext, Session]]:
    """The CLI's context and one database transaction (committed when the block ends cleanly)."""
    ctx = context(require_schema)
    with session_scope(ctx.engine) as session:
        yield ctx, session


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_json_result(data: Any, ok: bool) -> None:
    """``--json`` output of a check: the report, then exit 1 if it failed."""
    print_json(data)
    if not ok:
        raise typer.Exit(1)
