"""The CLI: one-line errors with a non-zero exit, nothing half-written, tokens shown once."""

from __future__ import annotations

import json
import os
import stat

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from factory.cli.main import app
from factory.identity.models import ApiToken
from factory.identity.service import authenticate_token, hash_token
from factory.kernel.db.engine import session_scope
from factory.kernel.models.device import Device, StorageMedium

runner = CliRunner()


def _run(*args: str) -> object:
    return runner.invoke(app, list(args))


def _assert_one_line_error(result, needle: str) -> None:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_receive_show_roundtrip(ctx) -> None:
    r = _run("device", "receive", "SN-100", "--kind", "laptop", "--make", "Dell", "--asset-tag", "MPS-1",
             "--from", "officer:123", "--media", "nvme:NV1:512G:PM9A1", "--media", "sd:SD1:64G")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = _run("device", "show", "SN-100", "--json")
    view = json.loads(r.stdout)
    assert view["state"] == "received" and view["asset_tag"] == "MPS-1"
    assert {m["serial"]: m["capacity_bytes"] for m in view["media"]} == {"NV1": 512 * 10**9, "SD1": 64 * 10**9}
    assert [e["event"] for e in view["history"]] == ["receive"]
    assert view["history"][0]["from_custodian"] == "officer:123"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["device", "receive", "", "--kind", "laptop"], "serial must not be empty"),
        (["device", "receive", "   ", "--kind", "laptop"], "serial must not be empty"),
        (["device", "receive", "SN-1", "--kind", "toaster"], "kind 'toaster'"),
        (["device", "receive", "SN-1", "--kind", "laptop", "--media", "nvme"], "TYPE:SERIAL"),
        (["device", "receive", "SN-1", "--kind", "laptop", "--media", "floppy:X"], "media type 'floppy'"),
        (["device", "receive", "SN-1", "--kind", "laptop", "--media", "nvme:X:lots"], "capacity 'lots'"),
        (["device", "receive", "SN-1", "--kind", "laptop", "--media", "nvme:X", "--media", "sd:X"], "listed twice"),
        (["device", "show", "NOPE"], "no device with serial NOPE"),
        (["users", "add", "Bad Name!", "--role", "technician"], "user name"),
        (["users", "add", "bob", "--role", "janitor"], "role 'janitor'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(ctx, args: list[str], needle: str) -> None:
    _assert_one_line_error(_run(*args), needle)
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Device)).all() == [] and s.exec(select(StorageMedium)).all() == []


def test_receiving_a_device_twice_is_refused(ctx) -> None:
    assert _run("device", "receive", "SN-2", "--kind", "tablet").exit_code == 0
    _assert_one_line_error(_run("device", "receive", "SN-2", "--kind", "tablet"), "already known")
    r = _run("ledger", "verify", "--json")
    assert json.loads(r.stdout)["entries"] == 1


def test_users_add_prints_token_once_and_stores_only_its_hash(ctx) -> None:
    r = _run("users", "add", "alice", "--role", "auditor")
    assert r.exit_code == 0
    token = r.stdout.strip().splitlines()[-1]
    with session_scope(ctx.engine) as s:
        stored = s.exec(select(ApiToken)).one()
        assert stored.token_sha256 == hash_token(token) and token not in stored.token_sha256
        assert authenticate_token(s, token).name == "alice"
    _assert_one_line_error(_run("users", "add", "alice", "--role", "auditor"), "already exists")


def test_keys_init_is_private_and_refuses_overwrite(ctx, tmp_path, monkeypatch) -> None:
    home = tmp_path / "fresh-home"
    monkeypatch.setenv("FACTORY_HOME", str(home))
    r = _run("keys", "init")
    assert r.exit_code == 0, r.output
    key = home / "keys" / "site-signing-key.pem"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    before = key.read_bytes()
    _assert_one_line_error(_run("keys", "init"), "--force")
    assert key.read_bytes() == before
    pub = _run("keys", "public")
    assert "BEGIN PUBLIC KEY" in pub.stdout and "fingerprint SHA256:" in pub.stdout
    assert _run("keys", "init", "--force").exit_code == 0
    assert key.read_bytes() != before


def test_uninitialised_database_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACTORY_HOME", str(tmp_path))
    monkeypatch.delenv("FACTORY_DATABASE_URL", raising=False)
    _assert_one_line_error(_run("device", "show", "X"), "factory db upgrade")
    assert _run("db", "upgrade").exit_code == 0
    _assert_one_line_error(_run("device", "show", "X"), "no device with serial X")
