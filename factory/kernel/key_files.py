"""The site's Ed25519 key files under FACTORY_HOME: create, load, describe (private key mode 0600).

Only the files: no database, so a one-shot command that signs (``factory wipe``) loads neither the
database layers nor the key registry. ``site_keys.py`` re-exports these beside the registry-aware
verifier (``SiteKeys``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from factory.kernel.config import Settings
from factory.kernel.errors import KeyStoreError
from imaging import signing


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
