"""``factory cert``: verify certificates offline."""

from __future__ import annotations

from pathlib import Path

import typer

from factory.cli.common import JsonFlag, console, fail, one_line_errors, print_json, settings
from factory.kernel.site_keys import load_public_key
from imaging.certificate import CertificateError, load_envelope, verify_certificate

app = typer.Typer(help="Sanitisation certificates.", no_args_is_help=True)


@app.command("verify")
@one_line_errors
def verify_cmd(
    cert: Path = typer.Argument(..., help="Certificate JSON (signed envelope)."),
    key: Path | None = typer.Option(None, "--key", help="Public key PEM (default: the site key in FACTORY_HOME)."),
    as_json: JsonFlag = False,
) -> None:
    """Check a certificate's digest and Ed25519 signature; exit 1 with the reason if it fails."""
    public_key = load_public_key(settings(), key)
    try:
        verified = verify_certificate(load_envelope(cert), public_key)
    except CertificateError as exc:
        fail(f"certificate {cert} does not verify: {exc}")
        return
    if as_json:
        print_json(
            {"ok": True, "certificate_id": verified.certificate_id, "digest_sha256": verified.digest_sha256,
             "key_fingerprint": verified.key_fingerprint}
        )  # fmt: skip
        return
    console.print(
        f"certificate {verified.certificate_id} verifies: digest {verified.digest_sha256}, "
        f"key {verified.key_fingerprint}",
        markup=False,
    )
