"""The auditor's checks (certificate check, device history, exception report) use the site key list:
after a key rotation a certificate signed by the retired key still checks out, and one "signed" by a
revoked key after its revocation is named as such."""

from __future__ import annotations

import json

from harness.domain import receive, sanitise
from sqlalchemy import select
from typer.testing import CliRunner

from factory.audit.views import check_certificate, device_history, exception_report
from factory.cli.main import app
from factory.kernel import clock
from factory.kernel.db.engine import session_scope
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_private_key
from imaging import signing
from imaging.certificate import sign_certificate

runner = CliRunner()


def _certificate(ctx, serial: str) -> Certificate:
    with session_scope(ctx.engine) as s:
        cert = s.execute(select(Certificate).where(Certificate.device_serial == serial)).scalar_one()
        s.expunge(cert)
        return cert


def test_certificates_signed_before_a_rotation_still_audit_clean(ctx) -> None:
    device = receive(ctx, "AROT-1", media=("AR1",))
    sanitise(ctx, device)
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    cert = _certificate(ctx, "AROT-1")
    with session_scope(ctx.engine) as s:
        check = check_certificate(s, cert, ctx.site_keys.keyring())
        history = device_history(s, "AROT-1", ctx.site_keys.keyring()).as_dict()
        report = exception_report(s, ctx.site_keys.keyring(), days=1).as_dict()
    assert check.ok and check.signature_ok, check.problems
    assert [c["check"]["ok"] for c in history["certificates"]] == [True]
    assert report["uncertified_departures"] == []


def test_a_certificate_signed_by_a_revoked_key_after_revocation_fails_its_check(ctx) -> None:
    device = receive(ctx, "AROT-2", media=("AR2",))
    sanitise(ctx, device)
    old_key = load_private_key(ctx.settings)
    old_fp = signing.key_fingerprint(old_key.public_key())
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 0
    revoked = runner.invoke(app, ["keys", "revoke", old_fp, "--reason", "key leaked", "--at", clock.utc_now()])
    assert revoked.exit_code == 0, revoked.output
    cert = _certificate(ctx, "AROT-2")
    doc = json.loads(cert.envelope)["certificate"]
    # The attacker holding the leaked key signs a certificate dated after the revocation.
    forged = sign_certificate({**doc, "issued_at": clock.utc_now()}, old_key)
    cert.envelope = json.dumps(forged)
    with session_scope(ctx.engine) as s:
        check = check_certificate(s, cert, ctx.site_keys.keyring())
    assert not check.ok and not check.signature_ok
    assert any("revoked" in p and "key leaked" in p for p in check.problems), check.problems
