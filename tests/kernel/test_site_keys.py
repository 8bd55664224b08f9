"""The one verifier service: the site's public key is read once and again only when its file changes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.errors import KeyStoreError
from factory.kernel.site_keys import SiteKeys, init_keys, load_private_key, site_keys
from imaging import signing
from imaging.certificate import CertificateError, KeyMismatchError, sign_certificate


def _fingerprint(keys: SiteKeys) -> str:
    return signing.key_fingerprint(keys.public_key())


def test_the_key_is_read_once_while_the_file_is_unchanged(ctx: AppContext) -> None:
    keys = ctx.site_keys
    first = keys.public_key()
    for _ in range(50):
        assert keys.public_key() is first
        keys.verifier()
    assert keys.loads == 1
    assert ctx.site_keys is keys  # one per context


def test_the_key_reloads_after_keys_init_force(ctx: AppContext) -> None:
    keys = ctx.site_keys
    before = _fingerprint(keys)
    result = CliRunner().invoke(app, ["keys", "init", "--force"])
    assert result.exit_code == 0, result.output
    after = _fingerprint(keys)
    assert after != before
    assert after == signing.key_fingerprint(load_private_key(ctx.settings).public_key())
    assert keys.loads == 2
    _fingerprint(keys)
    assert keys.loads == 2


def test_a_verifier_checks_against_the_key_current_when_it_was_made(ctx: AppContext) -> None:
    old_verifier = ctx.site_keys.verifier()
    init_keys(ctx.settings, force=True)
    envelope = json.dumps(sign_certificate({"certificate_id": "x"}, load_private_key(ctx.settings)))
    with pytest.raises(KeyMismatchError):
        old_verifier(envelope)
    try:
        ctx.site_keys.verifier()(envelope)
    except CertificateError as exc:  # the toy document is refused, but not for its key
        assert not isinstance(exc, KeyMismatchError)
    assert ctx.site_keys.loads == 2


def test_no_key_is_an_error_and_is_not_remembered(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", database_url="sqlite://", site_name="t")
    keys = SiteKeys(settings)
    with pytest.raises(KeyStoreError, match="keys init"):
        keys.public_key()
    init_keys(settings)
    assert _fingerprint(keys) == signing.key_fingerprint(load_private_key(settings).public_key())


def test_without_a_public_key_file_the_private_key_serves(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", database_url="sqlite://", site_name="t")
    init_keys(settings)
    settings.public_key_path.unlink()
    assert _fingerprint(SiteKeys(settings)) == signing.key_fingerprint(load_private_key(settings).public_key())


def test_callers_without_a_context_share_one_store(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", database_url="sqlite://", site_name="t")
    init_keys(settings)
    assert site_keys(settings) is site_keys(Settings(home=tmp_path / "home", database_url="sqlite://", site_name="u"))
    site_keys(settings).public_key()
    site_keys(settings).public_key()
    assert site_keys(settings).loads == 1
