"""What commands share that costs nothing to import: parameters, ``fail`` and JSON output.

factory/cli/common.py re-exports all of it beside the session helpers (which load SQLAlchemy);
a command meant to start quickly (``factory device show``) imports from here instead.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from factory.cli.inputs import bounded
from factory.kernel import limits
from factory.kernel.config import Settings, load_settings
from factory.kernel.errors import FactoryError

P = ParamSpec("P")
R = TypeVar("R")

# Parameters many commands share, spelt once.
SerialArg = Annotated[str, typer.Argument(help="Device serial number.", callback=bounded("serial", limits.SERIAL))]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ActorOpt = Annotated[
    str, typer.Option("--actor", help="Who is acting (recorded).", callback=bounded("--actor", limits.PARTY))
]


def fail(message: str, code: int = 1) -> None:
    """'error: <message>' as one line on stderr (never wrapped, no markup), then exit ``code``."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def plain_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures (the factory's typed errors, the OS's) into 'error: <reason>' and exit 1.
    ``common.one_line_errors`` adds the database's on top."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except FactoryError as exc:
            fail(exc.reason)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        raise AssertionError("unreachable")

    return wrapper


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """``common.one_line_errors`` (database errors too), which loads SQLAlchemy only when the
    command runs: for the commands of a module whose other commands must start quickly."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from factory.cli.common import one_line_errors as with_database_errors

        return with_database_errors(func)(*args, **kwargs)

    return wrapper


def settings() -> Settings:
    """The settings from the environment; a malformed variable is a one-line error."""
    try:
        return load_settings()
    except ValueError as exc:  # load_settings names the variable and what it must be
        fail(f"configuration: {exc}")
    raise AssertionError("unreachable")
