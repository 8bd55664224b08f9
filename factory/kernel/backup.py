"""Backups that restore: the database, the site's public key and a signed ledger head, under a signed manifest.

A backup folder holds a consistent copy of the database (``db/backup.py``), the site's public
key, an anchor signed over the ledger head *inside that copy* (``ledger/anchor.py``) and
``manifest.json``: the SHA-256 and size of every other file, signed with the site key. The
private key is not in a backup: it is a secret, and a backup travels; keep it as the README says.

``restore_backup`` believes nothing it has not checked, in this order: the manifest lists exactly
the files present and each matches its digest; the manifest is signed by the backup's key, which
must be the home's key if the home has one; the anchor is signed by that key and names the head
the manifest names; then the copy is loaded into a scratch database where the whole chain is
recomputed, the anchor's head is found in it and every certificate's signature verifies. Only then
is the target replaced, and never a target holding records unless ``force`` is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, text
from sqlalchemy.pool import NullPool

from factory.kernel.canonical import canonical_bytes
from factory.kernel.clock import now, utc_now
from factory.kernel.config import Settings
from factory.kernel.db import backup as db_copy
from factory.kernel.db.engine import make_engine
from factory.kernel.errors import FactoryError
from factory.kernel.ledger.anchor import AnchorFormatError, LedgerAnchor, check_anchor, parse_anchor, sign_entry
from factory.kernel.ledger.verify import verify_ledger
from factory.kernel.site_keys import load_private_key, load_public_key
from imaging import signing
from imaging.certificate import CertificateError, verify_certificate

BACKUP_FORMAT = "device-factory/backup/1"
MANIFEST = "manifest.json"
PUBLIC_KEY = "keys/site-signing-key.pub.pem"
ANCHOR = "ledger-head.json"


class BackupRefused(FactoryError, status=409, code="backup_refused"):
    """A backup that cannot be made, or that is not restored (the reason says which check failed)."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    database: str  # "sqlite" or "postgresql"
    entries: int  # custody entries up to the signed head (0: empty ledger)
    head_hash: str | None
    key_fingerprint: str


@dataclass(frozen=True)
class RestoreReport:
    database: str
    entries: int
    head_hash: str | None
    certificates: int
    key_fingerprint: str


def new_backup_dir(settings: Settings) -> Path:
    """A new folder for one backup: FACTORY_HOME/backups/SITE-YYYYmmddTHHMMSSZ (0700)."""
    parent = settings.home / "backups"
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem = f"{settings.site_name}-{now().strftime('%Y%m%dT%H%M%SZ')}"
    for n in range(1, 100):
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # two backups within one second
        return folder
    raise BackupRefused(f"{parent} already has 99 backups named {stem}*")


def make_backup(settings: Settings, out: Path) -> BackupReport:
    """Write a backup of the site into the new or empty folder ``out``.

    :raises BackupRefused: ``out`` holds files already.
    :raises KeyStoreError: no site signing key (the head and manifest are signed with it).
    :raises DatabaseCopyError: the copy failed.
    """
    if out.exists() and any(out.iterdir()):
        raise BackupRefused(f"{out} is not empty; back up into a new folder")
    try:
        return _write_backup(settings, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # half a backup must not lie about being one
        raise


def _write_backup(settings: Settings, out: Path) -> BackupReport:
    private_key = load_private_key(settings)
    (out / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)  # the copy holds users, tokens' hashes and the whole custody record
    _, head = db_copy.dump_database(settings.database_url, out)
    public_key = private_key.public_key()
    (out / PUBLIC_KEY).write_bytes(signing.public_key_to_pem(public_key))
    if head is not None:
        (out / ANCHOR).write_bytes(sign_entry(private_key, settings.site_name, head[0], head[1]).dumps())
    manifest = write_manifest(
        out,
        {
            "format": BACKUP_FORMAT,
            "site": settings.site_name,
            "created_at": utc_now(),
            "database": _kind(settings.database_url),
            "head": {"seq": head[0], "entry_hash": head[1]} if head else None,
            "key_fingerprint": signing.key_fingerprint(public_key),
        },
        private_key,
    )
    return BackupReport(out, manifest["database"], head[0] if head else 0, head[1] if head else None,
                        manifest["key_fingerprint"])  # fmt: skip


def write_manifest(folder: Path, body: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Digest every file in ``folder`` into ``body``, sign it all and write it as the folder's manifest."""
    manifest = {k: v for k, v in body.items() if k not in ("files", "signature")}
    manifest["files"] = {name: _digest(folder / name) for name in _files(folder)}
    manifest["signature"] = base64.b64encode(signing.sign(private_key, canonical_bytes(manifest))).decode("ascii")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def restore_backup(settings: Settings, backup: Path, *, force: bool = False) -> RestoreReport:
    """Check ``backup`` through and through, then load it into the configured database and home.

    :raises BackupRefused: with the first check that failed, or a target holding records without ``force``.
    :raises DatabaseCopyError: loading failed (the target is left as it was).
    """
    manifest = _read_manifest(backup)
    public_key = _checked_key(settings, backup, manifest)
    anchor = _checked_anchor(backup, manifest, public_key)
    copy = backup / (db_copy.SQLITE_FILE if manifest["database"] == "sqlite" else db_copy.POSTGRES_FILE)
    if manifest["database"] != _kind(settings.database_url):
        raise BackupRefused(
            f"the backup holds a {manifest['database']} database; the target is {_kind(settings.database_url)}"
        )
    _refuse_target_with_records(settings, force)
    with db_copy.scratch_copy(settings.database_url, copy) as scratch:
        _check_database(scratch, anchor, public_key, "the backup's")
    db_copy.load_database(settings.database_url, copy)
    report = _check_database(settings.database_url, anchor, public_key, "the restored")
    _install_public_key(settings, backup / PUBLIC_KEY)
    return report


def _kind(url: str) -> str:
    return "sqlite" if db_copy.is_sqlite(url) else "postgresql"


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` but the manifest, as sorted relative POSIX paths."""
    found = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in found if name != MANIFEST)


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return {"sha256": sha.hexdigest(), "bytes": path.stat().st_size}


def _read_manifest(backup: Path) -> dict[str, Any]:
    path = backup / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{backup} is not a backup: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"{path} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupRefused(f"{path} is not a backup manifest (format must be {BACKUP_FORMAT!r})")
    files = manifest.get("files")
    if not isinstance(files, dict) or manifest.get("database") not in ("sqlite", "postgresql"):
        raise BackupRefused(f"{path} lacks its file list or database kind")
    present = _files(backup)
    for name in sorted(set(present) - set(files)):
        raise BackupRefused(f"{name} is in the backup but not in its manifest")
    for name, expected in sorted(files.items()):
        if name not in present:
            raise BackupRefused(f"{name} is listed in the manifest but missing from the backup")
        if _digest(backup / name) != expected:
            raise BackupRefused(f"{name} does not match its SHA-256 digest in the manifest: the file was altered")
    return manifest


def _checked_key(settings: Settings, backup: Path, manifest: dict[str, Any]) -> Ed25519PublicKey:
    """The backup's public key, once it has verified the manifest and agrees with the home's key."""
    if PUBLIC_KEY not in manifest["files"]:
        raise BackupRefused(f"the backup has no public key ({PUBLIC_KEY})")
    key = load_public_key(settings, backup / PUBLIC_KEY)
    fingerprint = signing.key_fingerprint(key)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
        signing.verify(key, canonical_bytes(body), signature)
    except (binascii.Error, signing.SigningError) as exc:
        raise BackupRefused(f"the manifest is not signed by the backup's site key {fingerprint} ({exc})") from exc
    if settings.public_key_path.exists() or settings.private_key_path.exists():
        home = signing.key_fingerprint(load_public_key(settings))
        if home != fingerprint:
            raise BackupRefused(
                f"the backup is signed by key {fingerprint} but this home's key is {home}; "
                "restore into a home with the backup's key or with none"
            )
    return key


def _checked_anchor(backup: Path, manifest: dict[str, Any], key: Ed25519PublicKey) -> LedgerAnchor | None:
    head = manifest.get("head")
    if head is None:
        return None
    if ANCHOR not in manifest["files"]:
        raise BackupRefused(f"the manifest names a ledger head but the backup has no signed head ({ANCHOR})")
    try:
        anchor = parse_anchor((backup / ANCHOR).read_bytes())
    except AnchorFormatError as exc:
        raise BackupRefused(f"{ANCHOR}: {exc.reason}") from exc
    if not isinstance(head, dict) or (anchor.seq, anchor.entry_hash) != (head.get("seq"), head.get("entry_hash")):
        raise BackupRefused(f"{ANCHOR} signs entry {anchor.seq}, not the head the manifest names")
    return anchor


def _refuse_target_with_records(settings: Settings, force: bool) -> None:
    if force:
        return
    if db_copy.is_sqlite(settings.database_url) and not db_copy.sqlite_path(settings.database_url).exists():
        return  # nothing there yet (and do not create it just to look)
    engine = make_engine(settings.database_url, poolclass=NullPool)
    try:
        if db_copy.has_rows(engine):
            raise BackupRefused("the target database already holds records; restore with --force to replace them")
    finally:
        engine.dispose()


def _check_database(url: str, anchor: LedgerAnchor | None, key: Ed25519PublicKey, whose: str) -> RestoreReport:
    engine = make_engine(url, poolclass=NullPool)
    try:
        report = verify_ledger(engine)
        if not report.ok:
            raise BackupRefused(f"{whose} ledger does not verify: {report.reason}")
        if anchor is None and report.entries:
            raise BackupRefused(f"{whose} ledger has {report.entries} entries but the backup signs no head")
        problem = check_anchor(engine, anchor, key) if anchor is not None else None
        if problem is not None:
            raise BackupRefused(f"{whose} ledger does not hold the signed head: {problem}")
        certificates = _verify_certificates(engine, key, whose)
    finally:
        engine.dispose()
    return RestoreReport(_kind(url), report.entries, report.head_hash, certificates, signing.key_fingerprint(key))


def _verify_certificates(engine: Engine, key: Ed25519PublicKey, whose: str) -> int:
    count = 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, digest_sha256, envelope FROM certificate ORDER BY id"))
        for cert_id, digest, envelope in rows:
            try:
                verified = verify_certificate(json.loads(envelope), key)
            except (CertificateError, ValueError) as exc:
                raise BackupRefused(f"{whose} certificate {cert_id} does not verify: {exc}") from exc
            if (verified.certificate_id, verified.digest_sha256) != (cert_id, digest):
                raise BackupRefused(f"{whose} certificate {cert_id} is stored under another id or digest")
            count += 1
    return count


def _install_public_key(settings: Settings, source: Path) -> None:
    if settings.public_key_path.exists():
        return  # the same key (checked above)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new home is private, as serve makes it
    settings.keys_dir.mkdir(exist_ok=True, mode=0o700)
    settings.public_key_path.write_bytes(source.read_bytes())
