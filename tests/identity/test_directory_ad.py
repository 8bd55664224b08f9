"""Sign-in against a directory shaped like a force's Active Directory (a real slapd, AD-like entries).

What AD does that a plain OpenLDAP tree does not: DNs with escaped commas and parentheses
(``CN=Smith\\, John (PC 123),OU=Officers,...``), people in more groups than one search page holds,
``DOMAIN\\name`` and ``name@upn.suffix`` logins, continuation references and referrals, and bind
refusals that say why (``data 775``). slapd has no in-chain matching rule, so the nested-group
filter is checked for how it is built and escaped, not for AD's answer; AD's bind diagnostics come
from a one-reply fake server speaking LDAP's wire format.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.slapd import BASE_DN, GROUPS_DN, PASSWORD, READER_DN, READER_PASSWORD, Slapd, _ssha, running_slapd
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.identity import directory, ldap_wire
from factory.identity.directory import Directory, DirectoryConfig, DirectoryConfigError, authenticate, load_config
from factory.identity.errors import DirectoryAccountDisabled, DirectoryUnavailable, LoginRefused, NoMappedGroup
from factory.identity.service import check_password, directory_sign_in
from factory.kernel.db.engine import session_scope

OFFICERS = f"OU=Officers,{BASE_DN}"
SMITH = f"CN=Smith\\, John (PC 123),{OFFICERS}"  # as AD writes a DN whose name holds a comma
RESPONSE = f"CN=Response Officers (North),{GROUPS_DN}"
NESTED = f"CN=Factory Technicians,{GROUPS_DN}"  # has the Response group as a member
AD_FILTER = "(&(objectCategory=person)(objectClass=user)(sAMAccountName={username}))"
MANY = 60  # jsmith's other groups: more than a page, and more than the old size limit of 50


def _ad_user(dn: str, cn: str, account: str) -> str:
    return (
        f"dn: {dn}\nobjectClass: user\ncn: {cn}\nsn: {cn}\nsAMAccountName: {account}\n"
        f"userAccountControl: 512\nuserPassword: {_ssha(PASSWORD)}"
    )


def _extra_ldif() -> str:
    entries = [
        f"dn: {OFFICERS}\nobjectClass: organizationalUnit\nou: Officers",
        _ad_user(SMITH, "Smith, John (PC 123)", "jsmith"),
        _ad_user(f"CN=Twin One,{OFFICERS}", "Twin One", "twin"),
        _ad_user(f"CN=Twin Two,{OFFICERS}", "Twin Two", "twin"),
        *(
            f"dn: CN=Team {i:02},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: Team {i:02}\nmember: {SMITH}"
            for i in range(MANY)
        ),
        f"dn: {RESPONSE}\nobjectClass: groupOfNames\ncn: Response Officers (North)\nmember: {SMITH}",
        f"dn: {NESTED}\nobjectClass: groupOfNames\ncn: Factory Technicians\nmember: {RESPONSE}",
        # Another partition: a subtree search from the base returns a continuation reference
        # (as AD's DomainDnsZones do); a search inside it is referred elsewhere.
        f"dn: ou=North,{BASE_DN}\nobjectClass: referral\nobjectClass: extensibleObject\nou: North\n"
        f"ref: ldap://127.0.0.1:1/ou=North,{BASE_DN}",
    ]
    return "\n\n".join(entries)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd"), _extra_ldif()) as server:
        yield server


def ad_env(server: Slapd, tmp_path: Path, **extra: str) -> dict[str, str]:
    secret = tmp_path / "reader-password"
    secret.write_text(READER_PASSWORD + "\n")
    # The role's group written with AD's escaping; slapd answers "\2C": the same DN.
    return {
        "FACTORY_LDAP_URL": server.url,
        "FACTORY_LDAP_ALLOW_PLAINTEXT": "1",
        "FACTORY_LDAP_BASE_DN": BASE_DN,
        "FACTORY_LDAP_BIND_DN": READER_DN,
        "FACTORY_LDAP_BIND_PASSWORD_FILE": str(secret),
        "FACTORY_LDAP_USER_FILTER": AD_FILTER.replace("objectCategory=person", "objectClass=person"),
        "FACTORY_LDAP_GROUP_ROLES": f"technician={RESPONSE.lower().replace(', ', ',')}",
        "FACTORY_LDAP_DOMAINS": "FORCE force.example",
        **extra,
    }


def ad_config(server: Slapd, tmp_path: Path, **extra: str) -> DirectoryConfig:
    config = load_config(ad_env(server, tmp_path, **extra))
    assert config is not None
    return config


@pytest.mark.parametrize("typed", ["jsmith", "JSmith", "FORCE\\jsmith", "force\\JSMITH", "jsmith@force.example"])
def test_the_login_forms_of_ad_sign_in_one_account(slapd: Slapd, tmp_path: Path, typed: str) -> None:
    """A DN with an escaped comma and parentheses, in more groups than one page holds."""
    who = authenticate(ad_config(slapd, tmp_path), typed, PASSWORD)
    assert (who.name, who.role) == ("jsmith", "technician")
    assert directory.normalise_dn(who.dn) == directory.normalise_dn(SMITH)


@pytest.mark.parametrize("typed", ["OTHER\\jsmith", "jsmith@other.example", "jsmith@", "\\jsmith"])
def test_another_domains_login_is_refused(slapd: Slapd, tmp_path: Path, typed: str) -> None:
    with pytest.raises(LoginRefused) as refused:
        authenticate(ad_config(slapd, tmp_path), typed, PASSWORD)
    assert type(refused.value) is LoginRefused


def test_a_down_level_login_signs_in_through_the_service(ctx, slapd: Slapd, tmp_path: Path) -> None:
    ctx.provide(Directory(ad_config(slapd, tmp_path)))
    vouched = directory_sign_in(ctx, "FORCE\\jsmith", PASSWORD)
    with session_scope(ctx.engine) as s:
        assert check_password(s, "FORCE\\jsmith", PASSWORD, vouched).name == "jsmith"


def test_every_group_page_counts(slapd: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapped group comes after the 60 others: a search cut at 50 entries missed it."""
    monkeypatch.setattr(ldap_wire, "PAGE_SIZE", 7)
    assert authenticate(ad_config(slapd, tmp_path), "jsmith", PASSWORD).role == "technician"
    monkeypatch.setattr(ldap_wire, "MAX_PAGES", 3)  # a filter gone wrong is the directory's fault, said so
    with pytest.raises(DirectoryUnavailable):
        authenticate(ad_config(slapd, tmp_path), "jsmith", PASSWORD)


def test_the_in_chain_group_filter_is_built_with_the_escaped_dn(
    slapd: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries: list[str] = []
    real = directory.search
    monkeypatch.setattr(directory, "search", lambda c, b, q, *a, **k: queries.append(q) or real(c, b, q, *a, **k))
    roles = f"technician={NESTED}"
    in_chain = "(member:1.2.840.113556.1.4.1941:={dn})"
    config = ad_config(slapd, tmp_path, FACTORY_LDAP_GROUP_FILTER=in_chain, FACTORY_LDAP_GROUP_ROLES=roles)
    with pytest.raises(NoMappedGroup):  # slapd does not know AD's rule: it matches nothing, no error
        authenticate(config, "jsmith", PASSWORD)
    # slapd names jsmith "cn=Smith\2C John (PC 123),OU=Officers,..."; RFC 4515 escapes \ ( ) in the value.
    assert queries[-1] == f"(member:1.2.840.113556.1.4.1941:=cn=Smith\\5c2C John \\28PC 123\\29,ou=Officers,{BASE_DN})"


def test_two_entries_for_one_name_are_refused(slapd: Slapd, tmp_path: Path, caplog) -> None:
    with pytest.raises(LoginRefused) as refused:
        authenticate(ad_config(slapd, tmp_path), "twin", PASSWORD)
    assert refused.value.reason == "invalid user name or password"
    assert "more than one entry matches user twin" in caplog.text


def test_a_referral_is_not_followed_and_says_why(slapd: Slapd, tmp_path: Path, caplog) -> None:
    """ldap3 would chase it with the service account's password, to any host, in clear."""
    config = ad_config(slapd, tmp_path, FACTORY_LDAP_GROUP_BASE_DN=f"ou=Teams,ou=North,{BASE_DN}")
    with caplog.at_level(logging.WARNING), pytest.raises(DirectoryUnavailable):
        authenticate(config, "jsmith", PASSWORD)
    assert "was referred to ldap://127.0.0.1:1/" in caplog.text and "not followed" in caplog.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"FACTORY_LDAP_BIND_DN": ""}, "FACTORY_LDAP_BIND_DN"),
        ({"FACTORY_LDAP_DOMAINS": "FORCE\\"}, "FACTORY_LDAP_DOMAINS"),
        ({"FACTORY_LDAP_GROUP_ROLES": "admin=cn=a\\"}, "FACTORY_LDAP_GROUP_ROLES"),
    ],
)
def test_an_unusable_ad_setting_is_named(slapd: Slapd, tmp_path: Path, change: dict[str, str], named: str) -> None:
    with pytest.raises(DirectoryConfigError, match=named):
        load_config(ad_env(slapd, tmp_path, **change))


def test_an_empty_service_password_file_is_refused(slapd: Slapd, tmp_path: Path) -> None:
    """A DN with an empty password is an unauthenticated bind: AD lets it "succeed" as anonymous."""
    env = ad_env(slapd, tmp_path)
    Path(env["FACTORY_LDAP_BIND_PASSWORD_FILE"]).write_text("\n")
    with pytest.raises(DirectoryConfigError, match="is empty"):
        load_config(env)


def _length(n: int) -> bytes:
    return bytes([n]) if n < 128 else bytes([0x82]) + n.to_bytes(2, "big")


def _bind_refused(message_id: bytes, diagnostic: str) -> bytes:
    """An LDAP BindResponse: invalidCredentials (49) with AD's diagnostic message."""
    text = diagnostic.encode()
    result = b"\x0a\x01\x31" + b"\x04\x00" + b"\x04" + _length(len(text)) + text
    op = b"\x61" + _length(len(result)) + result
    body = message_id + op  # the request's messageID INTEGER, as it came
    return b"\x30" + _length(len(body)) + body


@pytest.fixture
def fake_ad() -> Iterator[tuple[str, list[str]]]:
    """A server that answers each bind as AD does for the account state in ``state[0]``."""
    state: list[str] = ["52e"]
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(4096)
                start = 2 + (request[1] & 0x7F if request[1] & 0x80 else 0)  # past the SEQUENCE header
                diagnostic = (
                    f"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {state[0]}, v4563"
                )
                conn.sendall(_bind_refused(request[start : start + 2 + request[start + 1]], diagnostic))
                conn.recv(4096)  # the unbind

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"ldap://127.0.0.1:{listener.getsockname()[1]}", state
    listener.close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("533", "is disabled"),
        ("775", "locked out"),
        ("701", "has expired"),
        ("532", "password has expired"),
        ("773", "must be changed"),
        ("530", "at this time"),
    ],
)
def test_ad_says_why_the_bind_was_refused(fake_ad, tmp_path: Path, caplog, code: str, says: str) -> None:
    url, state = fake_ad
    state[0] = code
    env = {"FACTORY_LDAP_URL": url, "FACTORY_LDAP_BASE_DN": BASE_DN, "FACTORY_LDAP_ALLOW_PLAINTEXT": "1"}
    env |= {"FACTORY_LDAP_BIND": "direct", "FACTORY_LDAP_USER_DN": "{username}@force.example"}
    env |= {"FACTORY_LDAP_GROUP_ROLES": f"admin={RESPONSE}"}
    config = load_config(env)
    assert config is not None
    with caplog.at_level(logging.INFO), pytest.raises(DirectoryAccountDisabled, match=says):
        authenticate(config, "jsmith", "Secret-Pa55word")
    assert f"data {code}" in caplog.text and "Secret-Pa55word" not in caplog.text
    state[0] = "52e"  # the wrong password: one reason, whatever the account
    with pytest.raises(LoginRefused) as refused:
        authenticate(config, "jsmith", "Secret-Pa55word")
    assert type(refused.value) is LoginRefused and refused.value.reason == "invalid user name or password"
