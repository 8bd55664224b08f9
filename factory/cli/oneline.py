"""The CLI's last word on failure: one line on stderr and a non-zero exit, never a traceback.

Commands turn the errors they expect into a reason (``common.one_line_errors``); this group does the
same for what click refuses before a command runs (an unknown option, a value out of range) and, as
a safety net, for anything a command let escape. It imports only typer (whose click it catches),
so the console script's start-up stays light.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer >= 0.24 carries its own click; a bare group's help page is raised as this usage error
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on the real click
    from click.exceptions import NoArgsIsHelpError  # type: ignore[no-redef]

DEBUG_VARIABLE = "FACTORY_DEBUG"  # set to 1 to let an unexpected exception show its traceback


def say(message: str, code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"error: {line}", err=True)
    sys.exit(code)


def usage_message(exc: typer.TyperException) -> str:
    """A refused command line, prefixed with the command it was for."""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    return f"{where}{exc.format_message()}"


class OneLineGroup(TyperGroup):
    """A Typer group whose standalone run ends every failure with one line and a non-zero exit."""

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> Any:  # fmt: skip
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            exc.show()  # a bare group prints its help page, as before
            sys.exit(exc.exit_code)
        except typer.TyperException as exc:
            say(usage_message(exc), exc.exit_code)
        except typer.Abort:
            say("aborted", 1)
        except Exception as exc:  # the safety net: a bug must still not print a traceback at a user
            if os.environ.get(DEBUG_VARIABLE):
                raise
            detail = str(exc).strip().splitlines()
            say(f"unexpected {type(exc).__name__}: {detail[0] if detail else 'no detail'} "
                f"(a bug; {DEBUG_VARIABLE}=1 shows where)", 1)  # fmt: skip
        sys.exit(code if isinstance(code, int) else 0)
