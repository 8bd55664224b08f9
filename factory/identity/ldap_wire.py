"""The LDAP conversation of a directory sign-in, as Active Directory and OpenLDAP answer it.

Kept apart from the settings and the sign-in steps (directory.py): opening a verified TLS
connection, binding, searching (paged, without chasing referrals), reading why a bind was refused
(Active Directory's ``data NNN`` code) and comparing DNs however the server escaped them.
"""

from __future__ import annotations

import logging
import math
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from factory.identity.errors import DirectoryAccountDisabled, DirectoryUnavailable, LoginRefused

log = logging.getLogger(__name__)

BAD_LOGIN = "invalid user name or password"
UNAVAILABLE = "the directory cannot be reached, so directory accounts cannot sign in now (local accounts can)"
PAGE_SIZE = 500  # under Active Directory's MaxPageSize (1000) and OpenLDAP's default sizelimit (500)
MAX_PAGES = 20  # 10,000 entries: more groups than any one person is in; more is a filter gone wrong
_PAGED = "1.2.840.113556.1.4.319"  # the simple paged results control (RFC 2696)
_REFERRAL, _SIZE_LIMIT, _NO_SUCH_OBJECT = 10, 4, 32

# Active Directory's reason for refusing a bind: "80090308: LdapErr: DSID-..., comment:
# AcceptSecurityContext error, data 775, v4563". 525/52e (no such user, wrong password) are the
# generic refusal; the others come with the right password (775, lockout, whatever the password).
_AD_DATA = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
_AD_REFUSALS = {
    "530": "your directory account may not sign in at this time of day",
    "531": "your directory account may not sign in from this computer",
    "532": "your directory password has expired: change it, then sign in again",
    "533": "your directory account is disabled",
    "701": "your directory account has expired",
    "773": "your directory password must be changed before first use: change it, then sign in again",
    "775": "your directory account is locked out: wait for the lockout to end or ask the service desk",
}


class Settings(Protocol):
    """What the conversation needs of the directory settings (directory.DirectoryConfig)."""

    urls: tuple[str, ...]
    start_tls: bool
    ca_file: str
    timeout: float


def _server(config: Settings, url: str) -> Server:
    # Python's default context (TLS 1.2+); ldap3 then checks the certificate names the server.
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file or None)
    return Server(
        url, use_ssl=url.startswith("ldaps://"), tls=tls, get_info=NONE, connect_timeout=config.timeout,
        allowed_referral_hosts=[("*", False)],  # never hand our credentials to a host a server names
    )  # fmt: skip


def refusal(result: dict) -> LoginRefused:
    """The error for a refused bind: AD's account states by name, anything else one reason."""
    code = _AD_DATA.search(str(result.get("message") or ""))
    reason = _AD_REFUSALS.get(code.group(1).lower()) if code else None
    if reason is None:
        return LoginRefused(BAD_LOGIN)
    return DirectoryAccountDisabled(reason)


@contextmanager
def connection(config: Settings, user: str, password: str) -> Iterator[Connection | LoginRefused]:
    """A connection bound as ``user`` (the first server that answers; StartTLS when configured),
    or the refusal (:func:`refusal`) when the directory refused the credentials.

    :raises DirectoryUnavailable: no server could be reached (or none over verified TLS).
    """
    for url in config.urls:
        # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds. Referrals are not chased:
        # ldap3 would follow them with these credentials to any host, over plain LDAP if so named.
        conn = Connection(
            _server(config, url), user=user, password=password, authentication=SIMPLE,
            receive_timeout=math.ceil(config.timeout), auto_bind=False, raise_exceptions=False,
            auto_referrals=False,
        )  # fmt: skip
        try:
            conn.open()
            if config.start_tls and not conn.start_tls():
                raise LDAPException(f"StartTLS refused: {conn.result.get('description')}")
            bound = conn.bind()
        except (LDAPException, OSError) as exc:
            log.warning("directory %s unavailable: %s", url, exc)
            with suppress(LDAPException, OSError):  # the socket may already be gone
                conn.unbind()
            continue
        if not bound:  # the server's diagnostic (AD: "... data 52e ..."); it never holds the password
            result = conn.result or {}
            log.info(
                "directory %s refused the bind of %s: %s %s",
                url,
                user,
                result.get("description"),
                result.get("message"),
            )
        try:
            yield conn if bound else refusal(conn.result or {})
        finally:
            with suppress(LDAPException, OSError):
                conn.unbind()
        return
    raise DirectoryUnavailable(UNAVAILABLE)


def search(conn: Connection, base: str, query: str, attributes: list[str], limit: int = 0) -> list[dict]:
    """Entries (dn + attributes) of a subtree search, page by page; at most ``limit`` (0: all).

    Continuation references (AD's DomainDnsZones, Configuration...) are skipped; a referral, a
    failed search or more than ``MAX_PAGES`` pages is the directory's fault (DirectoryUnavailable).
    """
    entries: list[dict] = []
    cookie: bytes | None = None
    for _page in range(MAX_PAGES):
        conn.search(
            base, query, search_scope=SUBTREE, attributes=attributes, size_limit=limit,
            paged_size=None if limit else PAGE_SIZE, paged_cookie=cookie,
        )  # fmt: skip
        result = conn.result or {}
        entries += [
            {"dn": e["dn"], **e.get("attributes", {})} for e in conn.response or [] if e.get("type") == "searchResEntry"
        ]
        if result.get("result") not in (0, _NO_SUCH_OBJECT, _SIZE_LIMIT if limit else 0):
            _search_failed(base, result)
        cookie = (result.get("controls") or {}).get(_PAGED, {}).get("value", {}).get("cookie")
        if limit or not cookie:
            return entries
    log.warning("directory search under %s gave more than %d entries: narrow the filter", base, len(entries))
    raise DirectoryUnavailable(UNAVAILABLE)


def _search_failed(base: str, result: dict) -> None:
    if result.get("result") == _REFERRAL:
        log.warning(
            "directory search under %s was referred to %s (not followed): set the base DN to a naming "
            "context this server holds, or use a Global Catalog URL (port 3268/3269)",
            base, " ".join(result.get("referrals") or []),
        )  # fmt: skip
    else:
        log.warning("directory search under %s failed: %s %s", base, result.get("description"), result.get("message"))
    raise DirectoryUnavailable(UNAVAILABLE)


_HEX = re.compile(r"\\([0-9a-fA-F]{2})|\\(.)")


def _unescape(value: str) -> str:
    """An RDN value as characters: ``Smith\\, John`` and ``Smith\\2C John`` are the same name."""
    raw = bytearray()
    pos = 0
    for match in _HEX.finditer(value):
        raw += value[pos : match.start()].encode()
        raw += bytes.fromhex(match.group(1)) if match.group(1) else match.group(2).encode()
        pos = match.end()
    raw += value[pos:].encode()
    return raw.decode("utf-8", errors="replace")


def normalise_dn(dn: str) -> str:
    """DNs compare without case, without spaces around separators and whatever the escaping
    (``CN=Smith\\, John,OU=B`` == ``cn=smith\\2c john, ou=b``).

    :raises ValueError: ``dn`` is not a DN.
    """
    try:
        rdns = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        raise ValueError(f"'{dn}' is not a DN") from None
    parts = []
    for attr, value, sep in rdns:
        canonical = re.sub(r'([,+"\\<>;=])', r"\\\1", _unescape(value.strip()).lower())
        parts.append(f"{attr.strip().lower()}={canonical}{sep}")
    return "".join(parts)
