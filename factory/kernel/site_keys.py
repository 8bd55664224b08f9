"""The site's Ed25519 signing key on disk under FACTORY_HOME (private key mode 0600).

``SiteKeys`` is the one verifier service: it reads the public key once and again only when the key
file changes (``factory keys init --force``), so a request that checks certificates costs a
``stat``, not a file read and a PEM parse. ``AppContext.site_keys`` holds one per process;
code without a context calls ``site_keys(settings)``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from factory.kernel.config import Settings
from factory.kernel.errors import KeyStoreError
from factory.kernel.lifecycle.guards import CertificateVerifier
from imaging import signing
from imaging.certificate import verify_certificate


@dataclass(frozen=True)
class PublicKeyInfo:
    pem: str
    fingerprint: str


def init_keys(settings: Settings, *, force: bool = False) -> PublicKeyInfo:
    """Create the site's signing key pair (private key mode 0600, in a 0700 folder).

    :raises KeyStoreError: a key already exists and ``force`` is not set.
    """
    priv_path, pub_path = settings.private_key_path, settings.public_key_path
    if priv_path.exists() and not force:
        raise KeyStoreError(f"signing key already exists at {priv_path}; use --force to replace it")
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(priv_path.parent, 0o700)
    key = signing.generate_private_key()
    _write_private(priv_path, signing.private_key_to_pem(key))
    pub_pem = signing.public_key_to_pem(key.public_key())
    pub_path.write_bytes(pub_pem)
    return PublicKeyInfo(pem=pub_pem.decode(), fingerprint=signing.key_fingerprint(key.public_key()))


def _write_private(path: Path, pem: bytes) -> None:
    # Create with 0600 from the start (no window where the key is world-readable); replace atomically.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_private_key(settings: Settings) -> Ed25519PrivateKey:
    """:raises KeyStoreError: no signing key, or an unreadable one."""
    path = settings.private_key_path
    if not path.exists():
        raise KeyStoreError(f"no signing key at {path}; run 'factory keys init'")
    try:
        return signing.private_key_from_pem(path.read_bytes())
    except signing.SigningError as exc:
        raise KeyStoreError(f"signing key at {path} is unreadable: {exc}") from exc


def load_public_key(settings: Settings, path: Path | None = None) -> Ed25519PublicKey:
    """Read a public key from ``path`` (default: the site's; derived from the private key if only that exists).

    Services use ``SiteKeys``, which calls this only when the key file changed.

    :raises KeyStoreError: no key, or an unreadable one.
    """
    path = path or settings.public_key_path
    if not path.exists():
        if path == settings.public_key_path and settings.private_key_path.exists():
            return load_private_key(settings).public_key()
        raise KeyStoreError(f"no public key at {path}; run 'factory keys init' or pass --key")
    try:
        return signing.public_key_from_pem(path.read_bytes())
    except signing.SigningError as exc:
        raise KeyStoreError(f"public key at {path} is unreadable: {exc}") from exc


def public_key_info(settings: Settings) -> PublicKeyInfo:
    """The site's public key as PEM with its fingerprint. :raises KeyStoreError: no key."""
    key = load_public_key(settings)
    return PublicKeyInfo(pem=signing.public_key_to_pem(key).decode(), fingerprint=signing.key_fingerprint(key))


def make_verifier(public_key: Ed25519PublicKey) -> CertificateVerifier:
    """A verifier of stored envelopes against ``public_key`` (raises with the reason if one fails)."""

    def verify(envelope_text: str) -> Mapping[str, Any]:
        envelope = json.loads(envelope_text)
        return verify_certificate(envelope, public_key).certificate

    return verify


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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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

    def verifier(self) -> CertificateVerifier:
        """A verifier bound to the current key (one unit of work checks all its certificates with it).

        :raises KeyStoreError: no key, or an unreadable one.
        """
        return make_verifier(self.public_key())


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
