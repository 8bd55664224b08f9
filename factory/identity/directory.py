"""Sign-in against the force's directory (LDAP; Active Directory compatible), with group -> role.

Configured from the environment (``FACTORY_LDAP_*``, see docs/operations.md); without
``FACTORY_LDAP_URL`` there is no directory and only local accounts sign in. A sign-in:

1. binds as the service account (``search``) and finds the one entry the user filter names, or
   binds as the user straight away (``direct``: ``FACTORY_LDAP_USER_DN`` such as
   ``{username}@force.example``) and reads their own entry;
2. refuses a disabled account: Active Directory's ACCOUNTDISABLE bit of ``userAccountControl``,
   or OpenLDAP ppolicy's ``pwdAccountLockedTime``; many directories refuse such a bind
   themselves, but not every one does (ppolicy without a default policy does not);
3. proves the password with a bind as the user's DN (never an empty password: LDAP treats a
   simple bind without one as anonymous and "succeeds");
4. maps the user's groups (``memberOf`` and a group search) to a role: the first pair of
   ``FACTORY_LDAP_GROUP_ROLES`` whose group the user is in decides; no mapped group, no sign-in.

The network work happens before any database transaction (the directory may be slow or down);
:func:`provision` then keeps a local row for the user (their role refreshed at every sign-in), so
sessions, tokens and the custody records name them like anyone else. Such rows carry
``DIRECTORY_PASSWORD`` where a local account has its Argon2 hash: as ``!`` in ``/etc/shadow``,
it says the password is checked elsewhere, and no local password matches it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ldap3 import Connection
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from sqlmodel import Session

from factory.identity import audit
from factory.identity.errors import (
    DirectoryAccountDisabled,
    DirectoryUnavailable,
    LoginRefused,
    NoMappedGroup,
)
from factory.identity.ldap_wire import BAD_LOGIN, UNAVAILABLE, connection, normalise_dn, search
from factory.identity.models import Role, User
from factory.identity.views import find_user
from factory.kernel.clock import utc_now

log = logging.getLogger(__name__)

DIRECTORY_PASSWORD = "!directory"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")  # the local user name rule (service.add_user)
MAX_PASSWORD = 256
ACCOUNTDISABLE = 0x2  # Active Directory userAccountControl flag
_ATTRIBUTES = ["memberOf", "userAccountControl", "pwdAccountLockedTime"]


class DirectoryConfigError(ValueError):
    """A ``FACTORY_LDAP_*`` setting is missing or malformed (the message names it)."""


@dataclass(frozen=True)
class DirectoryConfig:
    urls: tuple[str, ...]
    base_dn: str
    bind: str = "search"  # "search": service account finds the user; "direct": bind as the user
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)  # never in a log line
    user_filter: str = "(&(objectClass=person)(uid={username}))"
    user_dn: str = ""  # direct bind only: "{username}@force.example" or "uid={username},ou=people,..."
    group_base_dn: str = ""
    group_filter: str = "(|(member={dn})(uniqueMember={dn}))"
    group_roles: tuple[tuple[str, str], ...] = ()  # (normalised group DN, role), first match wins
    domains: frozenset[str] = frozenset()  # lower case: "force" (FORCE\\name), "force.example" (name@...)
    start_tls: bool = False
    ca_file: str = ""
    timeout: float = 5.0


@dataclass(frozen=True)
class DirectoryUser:
    """What the directory vouched for: the local name, the entry's DN and the mapped role."""

    name: str
    dn: str
    role: str
    login: str = ""  # what was typed (lower case): "force\\jsmith" for the account "jsmith"


@dataclass(frozen=True)
class Directory:
    """The process's directory settings (``None``: not configured); one per AppContext."""

    config: DirectoryConfig | None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in {"", "0", "1", "true", "false", "yes", "no"}:
        raise DirectoryConfigError(f"{name} must be 1 or 0, not '{raw}'")
    return raw in {"1", "true", "yes"}


def _group_roles(raw: str) -> tuple[tuple[str, str], ...]:
    roles = {r.value for r in Role}
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(";"))):
        role, sep, dn = item.partition("=")
        try:
            group = normalise_dn(dn) if sep and role.strip() in roles and "=" in dn else ""
        except ValueError:
            group = ""
        if not group:
            raise DirectoryConfigError(
                f"FACTORY_LDAP_GROUP_ROLES: '{item}' is not role=group DN (roles: {', '.join(sorted(roles))})"
            )
        pairs.append((group, role.strip()))
    if not pairs:
        raise DirectoryConfigError("FACTORY_LDAP_GROUP_ROLES must map at least one group to a role")
    return tuple(pairs)


def _service_account(env: Mapping[str, str]) -> tuple[str, str]:
    """The service account's DN and password (search binds). Neither may be empty: a simple bind
    with a DN and no password is an unauthenticated bind, which Active Directory lets "succeed"
    as anonymous; every search would then fail, or read only what anonymous may read."""
    dn = env.get("FACTORY_LDAP_BIND_DN", "").strip()
    if not dn:
        raise DirectoryConfigError("FACTORY_LDAP_BIND_DN is needed with FACTORY_LDAP_BIND=search")
    path = env.get("FACTORY_LDAP_BIND_PASSWORD_FILE", "").strip()
    if not path:
        raise DirectoryConfigError("FACTORY_LDAP_BIND_PASSWORD_FILE is needed with FACTORY_LDAP_BIND=search")
    try:
        password = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise DirectoryConfigError(f"FACTORY_LDAP_BIND_PASSWORD_FILE: cannot read {path}: {exc.strerror}") from None
    if not password:
        raise DirectoryConfigError(f"FACTORY_LDAP_BIND_PASSWORD_FILE: {path} is empty")
    return dn, password


def _domains(env: Mapping[str, str]) -> frozenset[str]:
    domains = frozenset(env.get("FACTORY_LDAP_DOMAINS", "").lower().replace(",", " ").split())
    if any(not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,252}", d) for d in domains):
        raise DirectoryConfigError(
            "FACTORY_LDAP_DOMAINS must be domain names (FORCE, force.example) separated by spaces"
        )
    return domains


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get("FACTORY_LDAP_TIMEOUT", "").strip() or "5"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 60:
        raise DirectoryConfigError(f"FACTORY_LDAP_TIMEOUT must be 0.1 to 60 seconds, not '{raw}'")
    return value


def load_config(env: Mapping[str, str] | None = None) -> DirectoryConfig | None:
    """The directory settings from ``env`` (the process environment by default); None if unset.

    :raises DirectoryConfigError: a setting is missing or malformed, or passwords would cross
        the network in clear (``ldap://`` without StartTLS and without ``FACTORY_LDAP_ALLOW_PLAINTEXT``).
    """
    env = os.environ if env is None else env
    urls = tuple(env.get("FACTORY_LDAP_URL", "").split())
    if not urls:
        return None
    if any(not u.startswith(("ldap://", "ldaps://")) for u in urls):
        raise DirectoryConfigError("FACTORY_LDAP_URL must be ldap:// or ldaps:// URLs, separated by spaces")
    base_dn = env.get("FACTORY_LDAP_BASE_DN", "").strip()
    if "=" not in base_dn:
        raise DirectoryConfigError("FACTORY_LDAP_BASE_DN must be a DN such as dc=force,dc=example")
    bind = env.get("FACTORY_LDAP_BIND", "search").strip() or "search"
    if bind not in {"search", "direct"}:
        raise DirectoryConfigError(f"FACTORY_LDAP_BIND must be 'search' or 'direct', not '{bind}'")
    start_tls = _flag(env, "FACTORY_LDAP_START_TLS")
    plain = [u for u in urls if u.startswith("ldap://")]
    if plain and not start_tls and not _flag(env, "FACTORY_LDAP_ALLOW_PLAINTEXT"):
        raise DirectoryConfigError(
            "FACTORY_LDAP_URL is plain ldap://: set FACTORY_LDAP_START_TLS=1 or use ldaps://, "
            "or FACTORY_LDAP_ALLOW_PLAINTEXT=1 for a directory on this host only"
        )
    user_dn = env.get("FACTORY_LDAP_USER_DN", "").strip()
    if bind == "direct" and "{username}" not in user_dn:
        raise DirectoryConfigError("FACTORY_LDAP_USER_DN must contain {username} with FACTORY_LDAP_BIND=direct")
    defaults = DirectoryConfig(urls=urls, base_dn=base_dn)
    user_filter = env.get("FACTORY_LDAP_USER_FILTER", "").strip() or defaults.user_filter
    if "{username}" not in user_filter:
        raise DirectoryConfigError("FACTORY_LDAP_USER_FILTER must contain {username}")
    account = _service_account(env) if bind == "search" else ("", "")
    return DirectoryConfig(
        urls=urls,
        base_dn=base_dn,
        bind=bind,
        bind_dn=account[0],
        bind_password=account[1],
        user_filter=user_filter,
        user_dn=user_dn,
        group_base_dn=env.get("FACTORY_LDAP_GROUP_BASE_DN", "").strip() or base_dn,
        group_filter=env.get("FACTORY_LDAP_GROUP_FILTER", "").strip() or defaults.group_filter,
        group_roles=_group_roles(env.get("FACTORY_LDAP_GROUP_ROLES", "")),
        start_tls=start_tls,
        ca_file=env.get("FACTORY_LDAP_CA_FILE", "").strip(),
        timeout=_timeout(env),
        domains=_domains(env),
    )


def _is_disabled(entry: dict) -> bool:
    control = entry.get("userAccountControl")
    control = control[0] if isinstance(control, list) and control else control
    try:
        ad_disabled = bool(int(control or 0) & ACCOUNTDISABLE)
    except (TypeError, ValueError):
        ad_disabled = True  # an unreadable flag word is not proof the account is enabled
    return ad_disabled or bool(entry.get("pwdAccountLockedTime"))


def _dn_key(dn: str) -> str:
    try:
        return normalise_dn(dn)
    except ValueError:  # not a DN the parser reads: compared as it is (it will match no group)
        return dn.strip().lower()


def _role(config: DirectoryConfig, conn: Connection, entry: dict) -> str | None:
    """The role of the first configured group the entry belongs to (memberOf or a group search).

    ``{dn}`` is filled with the entry's DN escaped as a filter value (RFC 4515: ``\\`` ``*`` ``(``
    ``)``), so ``CN=Smith\\, John (PC 1),OU=...`` works in ``(member={dn})`` and in AD's in-chain
    ``(member:1.2.840.113556.1.4.1941:={dn})`` alike. The search is paged: AD users are often in
    more groups than one page (or a size limit) holds, and a cut-off list would miss their group.
    """
    groups = {_dn_key(g) for g in entry.get("memberOf") or []}
    query = config.group_filter.replace("{dn}", escape_filter_chars(entry["dn"]))
    groups |= {_dn_key(g["dn"]) for g in search(conn, config.group_base_dn, query, [])}
    return next((role for dn, role in config.group_roles if dn in groups), None)


def _user_entry(config: DirectoryConfig, conn: Connection, name: str) -> dict:
    """The one entry the user filter finds for ``name``: none or several is a refusal."""
    query = config.user_filter.replace("{username}", escape_filter_chars(name))
    found = search(conn, config.base_dn, query, _ATTRIBUTES, limit=2)
    if len(found) != 1:
        if len(found) > 1:
            log.warning("directory: more than one entry matches user %s; refusing", name)
        raise LoginRefused(BAD_LOGIN)
    return found[0]


def _prove_password(config: DirectoryConfig, dn: str, password: str) -> None:
    with connection(config, dn, password) as conn:
        if isinstance(conn, LoginRefused):
            raise conn


def _vouch(config: DirectoryConfig, conn: Connection, entry: dict, name: str) -> DirectoryUser:
    if _is_disabled(entry):
        raise DirectoryAccountDisabled(BAD_LOGIN)
    role = _role(config, conn, entry)
    if role is None:
        raise NoMappedGroup(f"'{name}' is in no directory group that grants a role here: ask an administrator")
    return DirectoryUser(name=name, dn=entry["dn"], role=role)


def login_name(config: DirectoryConfig | None, typed: str) -> str:
    """The account name in what was typed: lower case, and for the domains of
    ``FACTORY_LDAP_DOMAINS`` without the domain (``FORCE\\jsmith``, ``jsmith@force.example`` ->
    ``jsmith``). Another domain's form stays as typed, so it matches no account name."""
    name = (typed or "").strip().lower()
    domain, backslash, rest = name.partition("\\")
    if backslash and config is not None and domain in config.domains:
        return rest
    rest, at, domain = name.rpartition("@")
    if at and config is not None and domain in config.domains:
        return rest
    return name


def authenticate(config: DirectoryConfig, name: str, password: str) -> DirectoryUser:
    """Ask the directory whether ``password`` is ``name``'s, and which role their groups give.

    :raises LoginRefused: unknown name or wrong password (one reason for both), or the subclasses
        ``DirectoryAccountDisabled`` (with AD's reason when its bind said why) and ``NoMappedGroup``.
    :raises DirectoryUnavailable: the directory cannot be reached, stops answering, refuses the
        service account or refers the search elsewhere.
    """
    try:
        return replace(_authenticate(config, name, password), login=(name or "").strip().lower())
    except (LDAPException, OSError) as exc:  # the directory went away (or hung) during the sign-in
        log.warning("directory failed during a sign-in: %s", exc)
        raise DirectoryUnavailable(UNAVAILABLE) from None


def _authenticate(config: DirectoryConfig, name: str, password: str) -> DirectoryUser:
    name = login_name(config, name)  # AD account names ignore case; local names are lower case
    if not _NAME.match(name) or not password or len(password) > MAX_PASSWORD:
        raise LoginRefused(BAD_LOGIN)
    if config.bind == "direct":
        with connection(config, config.user_dn.replace("{username}", name), password) as conn:
            if isinstance(conn, LoginRefused):
                raise conn
            return _vouch(config, conn, _user_entry(config, conn, name), name)
    with connection(config, config.bind_dn, config.bind_password) as conn:
        if isinstance(conn, LoginRefused):
            log.error("directory refused the service account %s", config.bind_dn)
            raise DirectoryUnavailable(UNAVAILABLE)
        entry = _user_entry(config, conn, name)
        if _is_disabled(entry):  # before the bind: a disabled account's password is not tried
            raise DirectoryAccountDisabled(BAD_LOGIN)
        _prove_password(config, entry["dn"], password)
        return _vouch(config, conn, entry, name)


DIRECTORY_ACTOR = "directory"  # the actor of changes made by a directory sign-in


def provision(session: Session, who: DirectoryUser) -> User:
    """The local row of a directory user, created at first sign-in, its role refreshed at each.

    :raises LoginRefused: the name belongs to a local account, or the row was disabled here.
    """
    user = find_user(session, who.name)
    created = user is None
    if user is None:
        user = User(name=who.name, role=who.role, password_hash=DIRECTORY_PASSWORD, created_at=utc_now())
    elif user.password_hash != DIRECTORY_PASSWORD:
        log.warning("directory user %s shares a name with a local account; refused", who.name)
        raise LoginRefused(f"'{who.name}' is a local account here and cannot sign in through the directory")
    elif user.disabled:
        raise LoginRefused(BAD_LOGIN)
    if created or user.role != who.role:  # who may do what changed: the identity audit says so
        action = "add-user" if created else "change-role"
        audit.record(session, DIRECTORY_ACTOR, action, f"user:{who.name}", f"role {who.role} from the directory")
    user.role = who.role
    session.add(user)
    session.flush()
    return user
