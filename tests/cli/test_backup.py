"""``factory backup`` / ``factory restore`` on both databases: a backup restores into an empty home
with its ledger and certificates verifying, and a tampered backup is refused with the reason
before anything is written."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from harness.audit_data import sanitised_device
from harness.domain import receive
from harness.waiting import wait_until
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from factory.cli.main import app
from factory.kernel.backup import ANCHOR, MANIFEST, PUBLIC_KEY, write_manifest
from factory.kernel.config import Settings
from factory.kernel.context import AppContext
from factory.kernel.db.append_only import APPEND_ONLY_TABLES, drop_statements
from factory.kernel.db.backup import POSTGRES_FILE, SQLITE_FILE
from factory.kernel.site_keys import init_keys, load_private_key

runner = CliRunner()
Target = tuple[Path, str]  # an empty home and the URL of an empty database of the source's kind


def _run(*args: str) -> object:
    return runner.invoke(app, list(args))


def _refused(result: object, needle: str) -> None:
    assert result.exit_code != 0  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


@pytest.fixture
def backup(ctx: AppContext, tmp_path: Path) -> Path:
    """A site with certificates (two sanitised devices) and one device just received, backed up."""
    sanitised_device(ctx, "BK-1", ("BK-1-M1", "BK-1-M2"))
    sanitised_device(ctx, "BK-2", ("BK-2-M1",))
    receive(ctx, "BK-3", ("BK-3-M1",))
    folder = tmp_path / "backup"
    result = _run("backup", "--out", str(folder))
    assert result.exit_code == 0, result.output
    assert f"at {folder}:" in result.stdout
    return folder


@pytest.fixture
def target(ctx: AppContext, tmp_path: Path) -> Iterator[Target]:
    home = tmp_path / "restored-home"
    if ctx.settings.is_sqlite:
        yield home, f"sqlite:///{home / 'factory.db'}"
        return
    source = make_url(ctx.settings.database_url)
    name = f"{source.database}_restored"
    admin = source.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    yield home, source.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _restore_into(monkeypatch: pytest.MonkeyPatch, target: Target, *args: str) -> object:
    monkeypatch.setenv("FACTORY_HOME", str(target[0]))
    monkeypatch.setenv("FACTORY_DATABASE_URL", target[1])
    return _run("restore", *args)


def _restore_over_newer_records(ctx: AppContext, backup: Path, needle: str) -> None:
    """Restore with --force over the source, which has a record made after the backup: only a check can stop
    it, and the refusal must leave that record where it was."""
    receive(ctx, "AFTER-BACKUP", ("AB-M1",))
    _refused(_run("restore", str(backup), "--force"), needle)
    assert json.loads(_run("device", "show", "AFTER-BACKUP", "--json").stdout)["serial"] == "AFTER-BACKUP"
    assert json.loads(_run("ledger", "verify", "--json").stdout)["ok"]


@pytest.mark.slow  # a second database, and on PostgreSQL a scratch one: a few seconds
def test_a_backup_restores_into_an_empty_home_and_its_ledger_and_certificates_verify(
    ctx: AppContext, backup: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ctx.engine.connect() as conn:
        entries = conn.execute(text("SELECT count(*) FROM custody_entry")).scalar_one()
        certificates = dict(conn.execute(text("SELECT id, envelope FROM certificate")).all())
    assert len(certificates) == 3

    result = _restore_into(monkeypatch, target, str(backup))
    assert result.exit_code == 0, result.output
    assert f"({entries} entries" in result.stdout and "3 certificate(s) verify" in result.stdout

    verified = _run("ledger", "verify", "--json", "--anchor", str(backup / ANCHOR))
    report = json.loads(verified.stdout)
    assert verified.exit_code == 0 and report["ok"] and report["entries"] == entries and report["anchors_checked"] == 1
    assert json.loads(_run("device", "show", "BK-1", "--json").stdout)["state"] == "sanitised"

    restored = AppContext(Settings(home=target[0], database_url=target[1], site_name="test-site"), pooled=False)
    with restored.engine.connect() as conn:
        assert dict(conn.execute(text("SELECT id, envelope FROM certificate")).all()) == certificates
    verify = restored.site_keys.verifier()
    assert {verify(envelope)["certificate_id"] for envelope in certificates.values()} == set(certificates)
    cert_file = target[0] / "cert.json"
    cert_file.write_text(next(iter(certificates.values())))
    assert _run("cert", "verify", str(cert_file)).exit_code == 0  # with the restored home's public key

    with pytest.raises(DBAPIError), restored.engine.begin() as conn:  # still append-only after a restore
        conn.execute(text("UPDATE custody_entry SET actor = 'someone.else' WHERE seq = 1"))
    if restored.settings.is_sqlite:
        assert stat.S_IMODE((target[0] / "factory.db").stat().st_mode) == 0o600
    restored.engine.dispose()


@pytest.mark.slow  # devices arrive for the whole backup, then a restore: seconds on PostgreSQL
def test_a_backup_taken_while_devices_arrive_restores_one_consistent_moment(
    ctx: AppContext, tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop, received, errors = threading.Event(), [], []

    def intake() -> None:  # the running service, booking devices in throughout
        try:
            while not stop.is_set():
                receive(ctx, f"LIVE-{len(received)}", (f"LIVE-{len(received)}-M",))
                received.append(1)
        except Exception as exc:  # reported below: the test thread cannot see it otherwise
            errors.append(exc)

    thread = threading.Thread(target=intake, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(received) >= 5 or errors, message="devices arriving before the backup")
        result = _run("backup", "--out", str(tmp_path / "live"))
        assert result.exit_code == 0, result.output
        during = len(received)
        wait_until(lambda: len(received) >= during + 3 or errors, message="devices arriving after the backup")
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    head = json.loads((tmp_path / "live" / MANIFEST).read_text())["head"]["seq"]
    with ctx.engine.connect() as conn:
        assert 5 <= head < conn.execute(text("SELECT count(*) FROM custody_entry")).scalar_one()

    restored = _restore_into(monkeypatch, target, str(tmp_path / "live"))
    assert restored.exit_code == 0, restored.output
    report = json.loads(_run("ledger", "verify", "--json", "--anchor", str(tmp_path / "live" / ANCHOR)).stdout)
    assert report["ok"] and report["entries"] == head


def test_a_database_holding_records_is_replaced_only_with_force(ctx: AppContext, backup: Path) -> None:
    receive(ctx, "AFTER-BACKUP", ("AB-M1",))
    _refused(_run("restore", str(backup)), "already holds records; restore with --force")
    assert json.loads(_run("device", "show", "AFTER-BACKUP", "--json").stdout)["serial"] == "AFTER-BACKUP"

    result = _run("restore", str(backup), "--force")
    assert result.exit_code == 0, result.output
    _refused(_run("device", "show", "AFTER-BACKUP"), "no device with serial AFTER-BACKUP")
    assert json.loads(_run("ledger", "verify", "--json", "--anchor", str(backup / ANCHOR)).stdout)["ok"]


def _copy_file(backup: Path) -> Path:
    return backup / (SQLITE_FILE if (backup / SQLITE_FILE).exists() else POSTGRES_FILE)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))


def _reseal(ctx: AppContext, backup: Path) -> None:
    """What an insider with the site key would do after editing: new digests, new signature."""
    write_manifest(backup, json.loads((backup / MANIFEST).read_text()), load_private_key(ctx.settings))


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (lambda b: _flip_last_byte(_copy_file(b)), "does not match its SHA-256 digest in the manifest"),
        (lambda b: _flip_last_byte(b / PUBLIC_KEY), f"{PUBLIC_KEY} does not match its SHA-256 digest"),
        (lambda b: _flip_last_byte(b / ANCHOR), f"{ANCHOR} does not match its SHA-256 digest"),
        (lambda b: (b / ANCHOR).unlink(), f"{ANCHOR} is listed in the manifest but missing"),
        (lambda b: (b / "extra.sql").write_text("DROP TABLE custody_entry;"), "extra.sql is in the backup but not in"),
        (lambda b: (b / MANIFEST).write_text("{}"), "is not a backup manifest"),
    ],
    ids=["database", "public-key", "signed-head", "missing-file", "added-file", "manifest"],
)
def test_an_altered_file_is_refused_and_nothing_is_restored(
    ctx: AppContext, backup: Path, tamper: Callable[[Path], None], needle: str
) -> None:
    tamper(backup)
    _restore_over_newer_records(ctx, backup, needle)


def test_new_digests_without_the_site_key_are_refused(ctx: AppContext, backup: Path, tmp_path: Path) -> None:
    other = Settings(home=tmp_path / "other", database_url="sqlite://", site_name="x")
    init_keys(other)
    _flip_last_byte(_copy_file(backup))
    write_manifest(backup, json.loads((backup / MANIFEST).read_text()), load_private_key(other))
    _restore_over_newer_records(ctx, backup, "the manifest is not signed by the backup's site key")


def _edit_entries(backup: Path, sqlite_sql: str, edit_line: Callable[[list[str], list[str]], list[str] | None]) -> None:
    """Change the custody entries inside the backup's copy of the database (around its triggers)."""
    if (backup / SQLITE_FILE).exists():
        with sqlite3.connect(backup / SQLITE_FILE) as conn:
            for table in APPEND_ONLY_TABLES:
                for statement in drop_statements("sqlite", table):
                    conn.execute(statement)
            conn.execute(sqlite_sql)
        return
    lines = (backup / POSTGRES_FILE).read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("COPY public.custody_entry "))
    columns = lines[start].split("(", 1)[1].split(")", 1)[0].split(", ")
    end = lines.index("\\.", start)
    rows = [edit_line(columns, line.split("\t")) for line in lines[start + 1 : end]]
    edited = ["\t".join(row) for row in rows if row is not None]
    (backup / POSTGRES_FILE).write_text("\n".join([*lines[: start + 1], *edited, *lines[end:]]))


def _set_actor_of_entry_2(columns: list[str], row: list[str]) -> list[str]:
    if row[columns.index("seq")] == "2":
        row[columns.index("actor")] = "someone.else"
    return row


def test_an_edited_entry_is_refused_even_with_new_digests_and_signature(ctx: AppContext, backup: Path) -> None:
    _edit_entries(backup, "UPDATE custody_entry SET actor = 'someone.else' WHERE seq = 2", _set_actor_of_entry_2)
    _reseal(ctx, backup)
    needle = "the backup's ledger does not verify: custody entry 2: entry_hash does not match"
    _restore_over_newer_records(ctx, backup, needle)


def test_a_cut_off_tail_is_refused_by_the_signed_head(ctx: AppContext, backup: Path) -> None:
    with ctx.engine.connect() as conn:
        last = conn.execute(text("SELECT max(seq) FROM custody_entry")).scalar_one()
    _edit_entries(
        backup,
        f"DELETE FROM custody_entry WHERE seq = {last}",
        lambda columns, row: None if row[columns.index("seq")] == str(last) else row,
    )
    _reseal(ctx, backup)
    _restore_over_newer_records(ctx, backup, "the backup's ledger does not hold the signed head: ledger truncated")


def test_a_home_with_another_key_is_not_overwritten(
    ctx: AppContext, backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_home = tmp_path / "other-home"
    init_keys(Settings(home=other_home, database_url=ctx.settings.database_url, site_name="other-site"))
    monkeypatch.setenv("FACTORY_HOME", str(other_home))
    _refused(_run("restore", str(backup), "--force"), "but this home's key is")
    assert json.loads(_run("ledger", "verify", "--json").stdout)["ok"]


def test_each_backup_gets_its_own_folder_and_a_failed_one_leaves_none(ctx: AppContext) -> None:
    assert _run("backup").exit_code == 0
    assert _run("backup").exit_code == 0  # within the same second, too
    folders = sorted((ctx.settings.home / "backups").iterdir())
    assert len(folders) == 2 and all((f / MANIFEST).is_file() for f in folders)
    assert stat.S_IMODE(folders[0].stat().st_mode) == 0o700

    ctx.settings.private_key_path.unlink()
    _refused(_run("backup"), "no signing key")
    assert sorted((ctx.settings.home / "backups").iterdir()) == folders


def test_a_folder_holding_files_is_not_backed_up_into(ctx: AppContext, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    _refused(_run("backup", "--out", str(tmp_path / "busy")), "is not empty; back up into a new folder")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
