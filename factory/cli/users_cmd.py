"""``factory users``: people who use the API and web pages, their tokens, sessions and lockouts.

Every change is written to the identity audit with the actor ``cli:<operating-system user>``.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from factory.cli.common import JsonFlag, fail, one_line_errors, print_json, unit_of_work

app = typer.Typer(help="Users, API tokens, browser sessions and sign-in lockouts.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Login name.")]
IdArg = Annotated[int, typer.Argument(help="The id shown by 'tokens' or 'sessions'.", min=1, max=2**62)]
DaysOpt = Annotated[
    int | None, typer.Option("--days", min=1, max=3650, help="Lifetime of the token (default FACTORY_TOKEN_DAYS).")
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (containers)
        return "cli:unknown"


@app.command("add")
@one_line_errors
def add_cmd(
    name: NameArg,
    role: str = typer.Option(..., "--role", help="technician, courier, auditor or admin."),
    days: DaysOpt = None,
) -> None:
    """Create a user; the API token is printed once, as the last line."""
    from factory.identity.service import add_user

    with unit_of_work() as (ctx, session):
        user, token = add_user(session, name, role, _actor(), days or ctx.settings.token_days)
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
    from factory.identity.service import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as (_ctx, session):
        user = set_password(session, name, password, _actor())
    typer.echo(f"password set for {user.name}; their browser sessions were ended")


@app.command("list")
@one_line_errors
def list_cmd(as_json: JsonFlag = False) -> None:
    """Every user with role and whether they are disabled."""
    from factory.identity.views import list_users

    with unit_of_work() as (_ctx, session):
        users = [
            {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at}
            for u in list_users(session)
        ]
    if as_json:
        print_json(users)
        return
    for u in users:
        typer.echo(f"{u['name']}\t{u['role']}\t{'disabled' if u['disabled'] else 'enabled'}")


def _set_disabled(name: str, disabled: bool) -> None:
    from factory.identity.service import set_disabled

    with unit_of_work() as (ctx, session):
        user, ended = set_disabled(session, name, disabled, _actor())
        bound = ctx.settings.token_cache_seconds
    if disabled:
        typer.echo(f"{user.name} disabled: {ended} browser sessions ended; API tokens refused within {bound:g} s")
    else:
        typer.echo(f"{user.name} enabled")


@app.command("disable")
@one_line_errors
def disable_cmd(name: NameArg) -> None:
    """Refuse a user everywhere: sessions end now, API tokens within FACTORY_TOKEN_CACHE_SECONDS."""
    _set_disabled(name, True)


@app.command("enable")
@one_line_errors
def enable_cmd(name: NameArg) -> None:
    """Let a disabled user in again (their tokens work again if not revoked or expired)."""
    _set_disabled(name, False)


@app.command("token")
@one_line_errors
def token_cmd(name: NameArg, days: DaysOpt = None) -> None:
    """Issue another API token for a user (e.g. before the old one expires); printed once, last."""
    from factory.identity.service import get_user, issue_token

    with unit_of_work() as (ctx, session):
        token = issue_token(session, get_user(session, name), _actor(), days or ctx.settings.token_days)
    typer.echo(f"API token for {name} (shown once):")
    typer.echo(token)


@app.command("tokens")
@one_line_errors
def tokens_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this user's.")] = None, as_json: JsonFlag = False
) -> None:
    """API tokens with their ids, expiry and whether they still work (the tokens themselves are never stored)."""
    from factory.identity.views import list_tokens

    with unit_of_work() as (_ctx, session):
        rows = [asdict(t) for t in list_tokens(session, name)]
    if as_json:
        print_json(rows)
        return
    for t in rows:
        status = "live" if t["live"] else ("revoked " + t["revoked_at"] if t["revoked_at"] else "expired")
        typer.echo(f"{t['id']}\t{t['user']}\tcreated {t['created_at']}\texpires {t['expires_at']}\t{status}")


@app.command("revoke-token")
@one_line_errors
def revoke_token_cmd(
    token_id: Annotated[int | None, typer.Argument(help="The token's id (see 'tokens').", min=1, max=2**62)] = None,
    user: str | None = typer.Option(None, "--user", help="Revoke every live token of this user instead."),
) -> None:
    """Revoke an API token: refused by every API process within FACTORY_TOKEN_CACHE_SECONDS."""
    from factory.identity.service import revoke_token, revoke_user_tokens

    if (token_id is None) == (user is None):
        fail("give a token id or --user NAME (not both)")
    with unit_of_work() as (ctx, session):
        if user is not None:
            count = revoke_user_tokens(session, user, _actor())
        else:
            revoke_token(session, token_id or 0, _actor())
            count = 1
        bound = ctx.settings.token_cache_seconds
    typer.echo(f"{count} token(s) revoked; refused everywhere within {bound:g} s")


@app.command("sessions")
@one_line_errors
def sessions_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this user's.")] = None, as_json: JsonFlag = False
) -> None:
    """Open browser sessions (not ended, not expired) with their ids."""
    from factory.identity.views import open_sessions

    with unit_of_work() as (_ctx, session):
        rows = [asdict(w) for w in open_sessions(session, name)]
    if as_json:
        print_json(rows)
        return
    for w in rows:
        typer.echo(f"{w['id']}\t{w['user']}\tsince {w['created_at']}\tlast seen {w['last_seen_at']}")


@app.command("end-session")
@one_line_errors
def end_session_cmd(session_id: IdArg) -> None:
    """End a browser session now: its next request goes back to the login page."""
    from factory.identity.service import end_session

    with unit_of_work() as (_ctx, session):
        end_session(session, session_id, _actor())
    typer.echo(f"session {session_id} ended")


@app.command("unlock")
@one_line_errors
def unlock_cmd(
    name: Annotated[str | None, typer.Argument(help="The account to unlock.")] = None,
    address: str | None = typer.Option(None, "--address", help="Unlock a client address instead."),
    officer: str | None = typer.Option(None, "--officer", help="Unlock an officer's acceptance PIN instead."),
) -> None:
    """Lift a sign-in lockout or delay (account, address) or an officer's PIN lockout."""
    from factory.identity.service import unlock

    given = [(k, v) for k, v in (("account", name), ("address", address), ("officer", officer)) if v is not None]
    if len(given) != 1:
        fail("give exactly one of NAME, --address or --officer")
    kind, subject = given[0]
    with unit_of_work() as (_ctx, session):
        lifted = unlock(session, kind, subject, _actor())
    typer.echo(f"{kind} {subject} unlocked" if lifted else f"nothing was counted against {kind} {subject}")


@app.command("locks")
@one_line_errors
def locks_cmd(as_json: JsonFlag = False) -> None:
    """Accounts, addresses and officers with failed attempts counted, locked ones first."""
    from factory.identity.views import throttled

    with unit_of_work() as (_ctx, session):
        rows = [asdict(v) for v in throttled(session)]
    if as_json:
        print_json(rows)
        return
    for v in rows:
        status = (
            "locked"
            if v["locked_at"]
            else (f"delayed until {v['blocked_until']}" if v["blocked_until"] else "counting")
        )
        typer.echo(f"{v['kind']}\t{v['subject']}\t{v['failures']} failures\t{status}")


@app.command("audit")
@one_line_errors
def audit_cmd(
    target: str | None = typer.Option(None, "--target", help="Only this target, e.g. user:alice or token:12."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: JsonFlag = False,
) -> None:
    """The identity audit, newest first: who changed what, when, on which target."""
    from factory.identity.views import audit_trail

    with unit_of_work() as (_ctx, session):
        rows = [r.model_dump() for r in audit_trail(session, target, limit)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['at']}\t{r['actor']}\t{r['action']}\t{r['target']}\t{r['detail']}")
