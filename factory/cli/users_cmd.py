"""``factory users``: people who use the API and web pages."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from factory.cli.common import one_line_errors, unit_of_work
from factory.identity.service import add_user, set_password

app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Login name.")]


@app.command("add")
@one_line_errors
def add_cmd(
    name: NameArg, role: str = typer.Option(..., "--role", help="technician, courier, auditor or admin.")
) -> None:
    """Create a user; the API token is printed once, as the last line."""
    with unit_of_work() as (_ctx, session):
        user, token = add_user(session, name, role)
    typer.echo(f"user {user.name} ({user.role}) created; API token (shown once):")
    typer.echo(token)


@app.command("passwd")
@one_line_errors
def passwd_cmd(
    name: NameArg,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin (for scripts)."
    ),
) -> None:
    """Set a user's web login password (Argon2id); the user's open browser sessions end."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as (_ctx, session):
        user = set_password(session, name, password)
    typer.echo(f"password set for {user.name}; their browser sessions were ended")
