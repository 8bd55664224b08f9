"""The site's Ed25519 signing key on disk under FACTORY_HOME (private key mode 0600).

``SiteKeys`` is the one verifier service: it reads the public key once and again only when the key
file changes (``factory keys init --force``, ``factory keys rotate``), so a request that checks
certificates costs a ``stat``, not a file read and a PEM parse. Its verifier picks the key each
certificate names by fingerprint from the key registry (``key_registry.py``; every site sharing
the database) and checks that key could sign at the certificate's ``issued_at``; the key on disk
counts as registered while it is not. ``AppContext.site_keys`` holds one per process; code
without a context calls ``site_keys(settings)``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session

from factory.kernel.clock import utc_now
from factory.kernel.config import Settings
from factory.kernel.errors import KeyStoreError
from factory.kernel.key_files import (  # noqa: F401 - re-exported: the key files' API
    PublicKeyInfo,
    init_keys,
    load_private_key,
    load_public_key,
    public_key_info,
)
from factory.kernel.key_registry import KeyRecord, Keyring, ensure_registered, read_registry, register, retire
from factory.kernel.lifecycle.guards import CertificateVerifier
from imaging import signing
from imaging.certificate import verify_certificate


def make_verifier(public_key: Ed25519PublicKey, keyring: Keyring | None = None) -> CertificateVerifier:
    """A verifier of stored envelopes (raises a ``CertificateError`` with the reason if one fails).

    With a ``keyring`` the key is the one the signature names, valid at the certificate's
    ``issued_at``; without one, ``public_key`` only. A malformed envelope is left to
    ``verify_certificate`` to name.
    """

    def verify(envelope_text: str) -> Mapping[str, Any]:
        envelope = json.loads(envelope_text)
        if keyring is None or not isinstance(envelope, dict) or not isinstance(envelope.get("signature"), dict):
            return verify_certificate(envelope, public_key).certificate
        fingerprint = envelope["signature"].get("key_fingerprint")
        # The signature first (a malformed document is named as such), then the key's validity then.
        certificate = verify_certificate(envelope, keyring.public_key(fingerprint)).certificate
        keyring.check_time(str(fingerprint), certificate.get("issued_at"))
        return certificate

    return verify


def rotate_keys(settings: Settings, session: Session) -> tuple[KeyRecord, KeyRecord]:
    """Retire the current signing key and register a new one it endorses; return (old, new).

    What the old key signed while valid keeps verifying; the old private key is deleted (a
    retired key never signs again). The registry rows are written in ``session``; the new key
    files replace the old ones only after the caller commits (``commit_rotation``).

    :raises KeyStoreError: no current key.
    """
    old_key = load_private_key(settings)
    old = ensure_registered(session, settings.site_name, old_key.public_key())
    now = utc_now()
    retire(session, old.fingerprint, now)
    new_key = signing.generate_private_key()
    new = register(session, settings.site_name, new_key.public_key(), now, endorsed_by=old_key)
    staged = settings.private_key_path.with_suffix(".next")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, signing.private_key_to_pem(new_key))
        os.fsync(fd)
    finally:
        os.close(fd)
    return old, new


def commit_rotation(settings: Settings) -> None:
    """Put the staged key of ``rotate_keys`` in place (after its registry rows were committed)."""
    staged = settings.private_key_path.with_suffix(".next")
    key = signing.private_key_from_pem(staged.read_bytes())
    settings.public_key_path.write_bytes(signing.public_key_to_pem(key.public_key()))
    os.replace(staged, settings.private_key_path)


def abandon_rotation(settings: Settings) -> None:
    settings.private_key_path.with_suffix(".next").unlink(missing_ok=True)


# What identifies one version of a key file: a rewrite in place changes mtime or size, a replace the inode.
_Stamp = tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class SiteKeys:
    """The site's public key and a certificate verifier over it, re-read only when the key changes.

    The stamp covers the private key too: without a public key file the public half is derived
    from the private key (``load_public_key``). Failures are never cached, so a key created after
    the process started is found on the next call.
    """

    def __init__(self, settings: Settings, engine: Callable[[], Engine] | None = None) -> None:
        self.settings = settings
        self._engine = engine
        self._lock = threading.Lock()
        # One tuple, replaced whole: a reader never pairs one version's stamp with another's key.
        self._loaded: tuple[_Stamp, Ed25519PublicKey] | None = None
        self.loads = 0  # how often the key was read from disk (tests check it is not per request)

    def public_key(self) -> Ed25519PublicKey:
        """The current public key.

        :raises KeyStoreError: no key, or an unreadable one.
        """
        stamp = (_stat(self.settings.public_key_path), _stat(self.settings.private_key_path))
        loaded = self._loaded
        if loaded is not None and loaded[0] == stamp:
            return loaded[1]
        with self._lock:
            if self._loaded is None or self._loaded[0] != stamp:
                self._loaded = (stamp, load_public_key(self.settings))
                self.loads += 1
            return self._loaded[1]

    def keyring(self) -> Keyring:
        """The registry as it is now (every site's keys), with the key on disk if it is not registered."""
        try:
            own: Ed25519PublicKey | None = self.public_key()
        except KeyStoreError:  # an auditor's copy of the database may come without the site key
            own = None
        return Keyring.of(self.registry(), own, self.settings.site_name)

    def registry(self) -> list[KeyRecord]:
        engine = self._registry_engine()
        return read_registry(engine) if engine is not None else []

    def _registry_engine(self) -> Engine | None:
        if self._engine is not None:
            return self._engine()
        settings = self.settings
        if settings.is_sqlite and not (settings.home / "factory.db").exists() and "factory.db" in settings.database_url:
            return None  # no database yet: do not create one just to find it empty
        if settings.database_url in ("sqlite://", "sqlite:///:memory:"):
            return None
        from sqlalchemy.pool import NullPool

        from factory.kernel.db.engine import make_engine

        built = make_engine(settings.database_url, poolclass=NullPool)
        self._engine = lambda: built
        return built

    def verifier(self) -> CertificateVerifier:
        """A verifier over the key registry as it is now (one unit of work checks all its certificates with it).

        :raises KeyStoreError: no key, or an unreadable one.
        """
        return make_verifier(self.public_key(), self.keyring())


_by_home: dict[tuple[Path, Path], SiteKeys] = {}
_by_home_lock = threading.Lock()


def site_keys(settings: Settings) -> SiteKeys:
    """The process's ``SiteKeys`` for these settings' key files, for code that holds no ``AppContext``."""
    where = (settings.public_key_path, settings.private_key_path)
    with _by_home_lock:
        found = _by_home.get(where)
        if found is None:
            found = _by_home[where] = SiteKeys(settings)
        return found
