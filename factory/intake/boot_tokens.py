"""One-time boot tokens: the credential of a network-booted service environment.

The controller makes one when it hands a NIC the service environment's iPXE script and puts it on
that boot's kernel command line; the enrolment agent sends it back. Like API tokens, only its
SHA-256 is stored. It is good once, for the MAC it was issued to, for a short time
(``DEFAULT_TTL_SECONDS``, overridable with ``FACTORY_BOOT_TOKEN_SECONDS``): long enough for a
laptop to boot the service environment, too short to be worth stealing from a console.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import timedelta

from sqlmodel import Session, select

from factory.intake.errors import BootTokenForAnotherMac, BootTokenRefused
from factory.intake.models import BootToken
from factory.kernel.clock import format_utc, now

DEFAULT_TTL_SECONDS = 900
TOKEN_BYTES = 24
MAX_TOKEN_CHARS = 128


def token_ttl_seconds() -> int:
    """The site's boot-token lifetime: ``FACTORY_BOOT_TOKEN_SECONDS`` (60-3600), else 15 minutes."""
    raw = os.environ.get("FACTORY_BOOT_TOKEN_SECONDS", "").strip()
    if not raw:
        return DEFAULT_TTL_SECONDS
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_TTL_SECONDS
    return min(3600, max(60, value))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_boot_token(session: Session, mac: str, *, ttl_seconds: int | None = None) -> str:
    """A fresh token for one boot of ``mac`` (normalised by the caller); only its hash is kept."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    issued = now()
    session.add(
        BootToken(
            token_sha256=token_digest(token),
            mac=mac,
            issued_at=format_utc(issued),
            expires_at=format_utc(issued + timedelta(seconds=ttl_seconds or token_ttl_seconds())),
        )
    )
    session.flush()
    return token


def use_boot_token(session: Session, token: str | None, mac: str) -> BootToken:
    """Check the token for an enrolment by ``mac`` and use it up (in the caller's transaction).

    :raises BootTokenRefused: no token, an unknown one, one already used, one expired.
    :raises BootTokenForAnotherMac: issued to another NIC's boot (left unused for its own NIC).
    """
    if not token or not token.strip():
        raise BootTokenRefused("no boot token: enrolment needs the token from this boot's kernel command line")
    if len(token) > MAX_TOKEN_CHARS:
        raise BootTokenRefused("boot token not recognised")
    stmt = select(BootToken).where(BootToken.token_sha256 == token_digest(token.strip()))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()  # two posts of one token: the second waits, then sees it used
    row = session.exec(stmt).first()
    if row is None:
        raise BootTokenRefused("boot token not recognised")
    if row.used_at is not None:
        raise BootTokenRefused(f"boot token already used at {row.used_at}: a token is good for one enrolment")
    if row.mac != mac:
        raise BootTokenForAnotherMac(f"boot token was issued to MAC {row.mac}, not {mac}")
    stamp = format_utc(now())
    if stamp >= row.expires_at:  # fixed-width UTC text compares in time order
        raise BootTokenRefused(f"boot token expired at {row.expires_at}: reboot the laptop for a new one")
    row.used_at = stamp
    session.add(row)
    session.flush()
    return row
