"""Site keys: rotation keeps earlier certificates verifying, revocation refuses later ones with the reason,
and a second site's keys in the same database audit cleanly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from harness.domain import move, receive, sanitise
from sqlalchemy import select
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel import clock
from factory.kernel.db.engine import session_scope
from factory.kernel.key_registry import KeyNotValid, keyring_from_list, register
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_private_key
from imaging import signing
from imaging.certificate import sign_certificate

runner = CliRunner()


def _envelopes(ctx, serial: str) -> list[str]:
    with session_scope(ctx.engine) as s:
        return list(s.execute(select(Certificate.envelope).where(Certificate.device_serial == serial)).scalars())


def _resigned(envelope: str, key, issued_at: str) -> str:
    """The same certificate content, issued at ``issued_at`` and signed by ``key``."""
    doc = json.loads(envelope)["certificate"]
    return json.dumps(sign_certificate({**doc, "issued_at": issued_at}, key))


def test_rotation_keeps_old_certificates_and_revocation_refuses_later_ones(ctx, tmp_path: Path) -> None:
    before = receive(ctx, "ROT-1", media=("R1",))
    sanitise(ctx, before)
    old_key = load_private_key(ctx.settings)
    old_fp = signing.key_fingerprint(old_key.public_key())
    rotated = runner.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    new_fp = signing.key_fingerprint(load_private_key(ctx.settings).public_key())
    assert new_fp != old_fp and f"endorsed by {old_fp}" in rotated.stdout
    after = receive(ctx, "ROT-2", media=("R2",))
    sanitise(ctx, after)  # the guard verifies the new certificate through the registry
    verify = ctx.site_keys.verifier()
    for serial, fp in (("ROT-1", old_fp), ("ROT-2", new_fp)):
        (envelope,) = _envelopes(ctx, serial)
        assert json.loads(envelope)["signature"]["key_fingerprint"] == fp
        verify(envelope)
    move(ctx, before, Event.REDISTRIBUTE, to_custodian="school:7")  # an old certificate still lets it leave
    # The retired key is revoked (it leaked): what it signed before stays, what it "signed" after fails.
    (old_envelope,) = _envelopes(ctx, "ROT-1")
    issued = datetime.fromisoformat(json.loads(old_envelope)["certificate"]["issued_at"].replace("Z", "+00:00"))
    revoked_at = clock.format_utc(issued + timedelta(microseconds=1))  # just after its last good signature
    result = runner.invoke(app, ["keys", "revoke", old_fp, "--reason", "laptop stolen", "--at", revoked_at])
    assert result.exit_code == 0, result.output
    ctx.site_keys.verifier()(old_envelope)
    late = _resigned(old_envelope, old_key, clock.utc_now())
    with pytest.raises(KeyNotValid, match=r"after it was revoked .*laptop stolen"):
        ctx.site_keys.verifier()(late)
    listed = runner.invoke(app, ["keys", "list", "--json"])
    statuses = {k["fingerprint"]: k["status"] for k in json.loads(listed.stdout)}
    assert statuses == {old_fp: "revoked", new_fp: "active"}
    # the published list: signed by the new key, trusted through the old fingerprint's endorsement
    out = tmp_path / "site-keys.json"
    assert runner.invoke(app, ["keys", "list", "--signed", str(out)]).exit_code == 0
    keyring = keyring_from_list(json.loads(out.read_text()), trusted=old_fp)
    assert set(keyring.records) == {old_fp, new_fp}
    with pytest.raises(KeyNotValid, match="not endorsed"):
        keyring_from_list(json.loads(out.read_text()), trusted="SHA256:" + "A" * 43)


def test_a_second_site_s_certificates_audit_cleanly(ctx) -> None:
    device = receive(ctx, "SITE-B-1", media=("B1",))
    sanitise(ctx, device)
    (envelope,) = _envelopes(ctx, "SITE-B-1")
    north = signing.generate_private_key()
    with session_scope(ctx.engine) as s:  # the other site registers its own key in the shared database
        register(s, "north-site", north.public_key(), clock.format_utc(clock.now() - timedelta(days=1)))
    theirs = _resigned(envelope, north, clock.utc_now())
    ctx.site_keys.verifier()(theirs)
    ctx.site_keys.verifier()(envelope)  # and ours still
    stranger = _resigned(envelope, signing.generate_private_key(), clock.utc_now())
    with pytest.raises(KeyNotValid, match="not in the site key list"):
        ctx.site_keys.verifier()(stranger)
    early = _resigned(envelope, north, clock.format_utc(clock.now() - timedelta(days=2)))
    with pytest.raises(KeyNotValid, match="before it was valid"):
        ctx.site_keys.verifier()(early)


def test_key_commands_refuse_bad_input_in_one_line(ctx) -> None:
    missing = runner.invoke(app, ["keys", "revoke", "SHA256:nope", "--reason", "x"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no site key with fingerprint")
    bad_time = runner.invoke(app, ["keys", "revoke", "SHA256:nope", "--reason", "x", "--at", "yesterday"])
    assert bad_time.exit_code == 1 and "--at must be an ISO 8601 time" in bad_time.stderr
