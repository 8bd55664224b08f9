"""Search by site (the keys a site signs with, from the key registry) and by wave, as the CLI and
the web search take them, and the wave's summary PDF from the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.audit_data import sanitised_device
from harness.custody_data import officer
from harness.domain import move
from sqlmodel import select
from typer.testing import CliRunner

from factory.audit.views import CertificateQuery, Outcome, search_certificates
from factory.cli.main import app
from factory.custody.service import allocate, create_wave
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.models.ledger_tree import SiteKey
from imaging import signing

EPOCH = "2000-01-01T00:00:00.000000Z"  # valid for every certificate of the test


def _register_site_key(ctx: AppContext) -> None:
    key = ctx.site_keys.public_key()
    fingerprint = signing.key_fingerprint(key)
    with session_scope(ctx.engine) as s:
        if s.get(SiteKey, fingerprint) is None:
            pem = signing.public_key_to_pem(key).decode()
            s.add(SiteKey(fingerprint=fingerprint, site="test-site", public_key_pem=pem, valid_from=EPOCH))


def _serials(ctx: AppContext, **filters: str) -> set[str]:
    with session_scope(ctx.engine) as s:
        page = search_certificates(s, CertificateQuery(outcome=Outcome.ANY, **filters))
    return {item.device_serial for item in page.items}


def test_search_by_site_and_by_wave(ctx: AppContext, tmp_path: Path) -> None:
    in_wave, [cert_id] = sanitised_device(ctx, "WAVE-1", ("WAVE-1-M",))
    sanitised_device(ctx, "OTHER-1", ("OTHER-1-M",))
    _register_site_key(ctx)
    for event in (Event.START_PROVISION, Event.PROVISIONED):
        move(ctx, in_wave, event)
    staff = officer(ctx, "PC2001")
    with session_scope(ctx.engine) as s:
        create_wave(s, name="W-7", cohort="North", target_devices=10)
    with session_scope(ctx.engine) as s:
        allocate(s, serial="WAVE-1", actor="tech.one", staff_number=staff, wave="W-7")

    assert _serials(ctx, wave="W-7") == {"WAVE-1"}
    assert _serials(ctx, site="test-site") == {"WAVE-1", "OTHER-1"}
    assert _serials(ctx, site="another-site") == set()

    env = {"FACTORY_HOME": str(ctx.settings.home), "FACTORY_DATABASE_URL": ctx.settings.database_url}
    done = CliRunner().invoke(app, ["audit", "search", "--wave", "W-7", "--json"], env=env)
    assert done.exit_code == 0 and cert_id in done.output and "OTHER-1" not in done.output, done.output
    out = tmp_path / "wave.pdf"
    done = CliRunner().invoke(app, ["audit", "summary", "--wave", "W-7", "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    with session_scope(ctx.engine) as s:
        digest = s.exec(select(Certificate.digest_sha256).where(Certificate.id == cert_id)).one()
    assert "Sanitisation summary: wave W-7" in text and digest in text.replace("\n", "")
    refused = CliRunner().invoke(app, ["audit", "summary", "--out", str(out)], env=env)
    assert refused.exit_code == 1 and "a wave or a date range" in refused.output
