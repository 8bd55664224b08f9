"""``factory keys``: the site's Ed25519 signing key and the registry of every site's keys."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from factory.cli.common import JsonFlag, console, context, fail, one_line_errors, print_json
from factory.kernel.db.engine import session_scope
from factory.kernel.key_registry import ensure_registered, list_keys, revoke, signed_key_list
from factory.kernel.site_keys import (
    abandon_rotation,
    commit_rotation,
    init_keys,
    load_private_key,
    public_key_info,
    rotate_keys,
)  # fmt: skip

app = typer.Typer(help="The site's certificate signing key.", no_args_is_help=True)


@app.command("init")
@one_line_errors
def init_cmd(force: bool = typer.Option(False, "--force", help="Replace an existing key.")) -> None:
    """Create the site signing key under FACTORY_HOME (private key mode 0600).

    To replace a key in use, prefer 'factory keys rotate': it keeps what the old key signed verifiable.
    """
    ctx = context(require_schema=False)
    info = init_keys(ctx.settings, force=force)
    console.print(f"signing key created at {ctx.settings.private_key_path}")
    console.print(f"fingerprint {info.fingerprint}", markup=False, soft_wrap=True)


@app.command("public")
@one_line_errors
def public_cmd() -> None:
    """Print the public key (PEM) and its fingerprint."""
    ctx = context(require_schema=False)
    info = public_key_info(ctx.settings)
    typer.echo(info.pem.rstrip())
    typer.echo(f"fingerprint {info.fingerprint}")


@app.command("rotate")
@one_line_errors
def rotate_cmd() -> None:
    """Retire the current signing key and start a new one it endorses; earlier signatures keep verifying."""
    ctx = context()
    try:
        with session_scope(ctx.engine) as session:
            old, new = rotate_keys(ctx.settings, session)
    except BaseException:
        abandon_rotation(ctx.settings)
        raise
    commit_rotation(ctx.settings)
    console.print(f"retired {old.fingerprint} (valid to {new.valid_from})", markup=False, soft_wrap=True)
    console.print(f"new signing key {new.fingerprint}, endorsed by {old.fingerprint}", markup=False, soft_wrap=True)


@app.command("list")
@one_line_errors
def list_cmd(
    as_json: JsonFlag = False,
    signed: Path | None = typer.Option(
        None, "--signed", help="Write the signed key list (to publish, and for auditors) to this file."
    ),
) -> None:
    """Every site's registered signing keys: fingerprint, validity, retired or revoked (with the reason)."""
    ctx = context()
    key = load_private_key(ctx.settings) if signed is not None else None
    with session_scope(ctx.engine) as session:
        if key is not None:
            ensure_registered(session, ctx.settings.site_name, key.public_key())
        records = list_keys(session)
    if signed is not None and key is not None:
        doc = signed_key_list(records, key, ctx.settings.site_name)
        with signed.open("xb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    if as_json:
        print_json([{**r.as_dict(), "status": r.status} for r in records])
        return
    for r in records:
        until = r.valid_to or "-"
        why = f"  revoked {r.revoked_at}: {r.revoked_reason}" if r.revoked_at else ""
        console.print(
            f"{r.site}  {r.fingerprint}  {r.status}  from {r.valid_from} to {until}{why}", markup=False, soft_wrap=True
        )
    if not records:
        console.print("no keys registered yet (the site key registers itself when it first signs a head)")


@app.command("revoke")
@one_line_errors
def revoke_cmd(
    fingerprint: str = typer.Argument(..., help="The key's fingerprint (SHA256:...)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded, and shown with every refusal)."),
    at: str | None = typer.Option(None, "--at", help="Revoked from this UTC time (default now), e.g. when it leaked."),
) -> None:
    """Revoke a key: anything it signed at or after the revocation time no longer verifies."""
    if not reason.strip() or len(reason) > 500:
        fail("--reason must be 1 to 500 characters")
    ctx = context()
    with session_scope(ctx.engine) as session:
        record = revoke(session, fingerprint, reason.strip(), _stamp(at) if at else None)
    console.print(
        f"revoked {record.fingerprint} from {record.revoked_at}: {record.revoked_reason}", markup=False, soft_wrap=True
    )


def _stamp(value: str) -> str:
    from datetime import datetime

    from factory.kernel.clock import format_utc

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--at must be an ISO 8601 time, not {value!r}")
        raise
    if moment.tzinfo is None:
        fail("--at must name its time zone (e.g. 2026-01-31T08:00:00Z)")
    return format_utc(moment)
