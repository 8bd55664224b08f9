"""``factory keys``: the site's Ed25519 signing key."""

from __future__ import annotations

import typer

from factory.cli.common import console, context, one_line_errors
from factory.kernel.site_keys import init_keys, public_key_info

app = typer.Typer(help="The site's certificate signing key.", no_args_is_help=True)


@app.command("init")
@one_line_errors
def init_cmd(force: bool = typer.Option(False, "--force", help="Replace an existing key.")) -> None:
    """Create the site signing key under FACTORY_HOME (private key mode 0600)."""
    ctx = context(require_schema=False)
    info = init_keys(ctx.settings, force=force)
    console.print(f"signing key created at {ctx.settings.private_key_path}")
    console.print(f"fingerprint {info.fingerprint}", markup=False)


@app.command("public")
@one_line_errors
def public_cmd() -> None:
    """Print the public key (PEM) and its fingerprint."""
    ctx = context(require_schema=False)
    info = public_key_info(ctx.settings)
    typer.echo(info.pem.rstrip())
    typer.echo(f"fingerprint {info.fingerprint}")
