"""Sign-in against the directory: a real slapd (Debian's) seeded with people, groups and disabled accounts.

The directory is started once per module (tests/harness/slapd.py); tests that stop it start it
again. Each case signs in the way the web login does: ``directory_sign_in`` (network, before the
transaction), then ``check_password`` in the unit of work.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.slapd import BASE_DN, PASSWORD, READER_DN, READER_PASSWORD, USERS, Slapd, group_dn, running_slapd
from harness.web import PASSWORD as LOCAL_PASSWORD
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)
from sqlmodel import select

from factory.identity.directory import (
    DIRECTORY_PASSWORD,
    Directory,
    DirectoryConfig,
    DirectoryConfigError,
    authenticate,
    load_config,
)
from factory.identity.errors import DirectoryAccountDisabled, DirectoryUnavailable, LoginRefused, NoMappedGroup
from factory.identity.models import IdentityAudit, User
from factory.identity.service import add_user, check_password, directory_sign_in, set_password
from factory.kernel.db.engine import session_scope

ROLES = "admin={admins};technician={techs};auditor={auditors};courier={couriers}".format(
    admins=group_dn("factory-admins"),
    techs=group_dn("factory-technicians"),
    auditors=group_dn("factory-auditors"),
    couriers=group_dn("factory-couriers"),
)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


def env_for(server: Slapd, tmp_path: Path, **extra: str) -> dict[str, str]:
    secret = tmp_path / "reader-password"
    secret.write_text(READER_PASSWORD + "\n")
    return {
        "FACTORY_LDAP_URL": server.url,
        "FACTORY_LDAP_ALLOW_PLAINTEXT": "1",  # loopback only; StartTLS has its own test
        "FACTORY_LDAP_BASE_DN": BASE_DN,
        "FACTORY_LDAP_BIND_DN": READER_DN,
        "FACTORY_LDAP_BIND_PASSWORD_FILE": str(secret),
        # OpenLDAP people by uid, AD-shaped ones by sAMAccountName: one filter finds both.
        "FACTORY_LDAP_USER_FILTER": "(|(uid={username})(sAMAccountName={username}))",
        "FACTORY_LDAP_GROUP_ROLES": ROLES,
        **extra,
    }


def config_for(server: Slapd, tmp_path: Path, **extra: str) -> DirectoryConfig:
    config = load_config(env_for(server, tmp_path, **extra))
    assert config is not None
    return config


def sign_in(ctx, name: str, password: str) -> User:
    """As the web login does it: the directory first, then the unit of work."""
    vouched = directory_sign_in(ctx, name, password)
    with session_scope(ctx.engine) as s:
        user = check_password(s, name, password, vouched)
        s.expunge(user)
        return user


_LOGIN_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_login(client, name: str, password: str):
    """Post the login form as a browser would; the response is returned, whatever it is."""
    token = _LOGIN_FORM_TOKEN.search(client.get("/login").text)
    assert token is not None
    data = {"username": name, "password": password, "csrf_token": token.group(1)}
    return client.post("/login", data=data, follow_redirects=False)


@pytest.fixture
def with_directory(ctx, slapd: Slapd, tmp_path: Path):
    ctx.provide(Directory(config_for(slapd, tmp_path)))
    return ctx


@pytest.mark.parametrize(
    ("name", "role"),
    [("alice", "technician"), ("bob", "admin"), ("erin", "courier"), ("GRACE", "auditor")],
)
def test_a_directory_user_signs_in_with_the_role_of_their_group(with_directory, name: str, role: str) -> None:
    """bob is in both technicians and admins: the first configured pair (admin) decides; erin and
    grace are AD-shaped (sAMAccountName, memberOf), and AD names ignore case."""
    user = sign_in(with_directory, name, PASSWORD)
    assert (user.name, user.role) == (name.lower(), role)
    with session_scope(with_directory.engine) as s:
        row = s.exec(select(User).where(User.name == name.lower())).one()
        assert row.role == role and row.password_hash == DIRECTORY_PASSWORD


def test_the_role_follows_the_directory_at_each_sign_in(with_directory, slapd: Slapd, tmp_path: Path) -> None:
    assert sign_in(with_directory, "bob", PASSWORD).role == "admin"
    techs_first = f"technician={group_dn('factory-technicians')};admin={group_dn('factory-admins')}"
    with_directory.provide(Directory(config_for(slapd, tmp_path, FACTORY_LDAP_GROUP_ROLES=techs_first)))
    assert sign_in(with_directory, "bob", PASSWORD).role == "technician"
    assert sign_in(with_directory, "bob", PASSWORD).role == "technician"  # unchanged: nothing to audit
    with session_scope(with_directory.engine) as s:
        assert len(s.exec(select(User).where(User.name == "bob")).all()) == 1
        trail = s.exec(select(IdentityAudit).where(IdentityAudit.target == "user:bob").order_by(IdentityAudit.id)).all()
        assert [(a.actor, a.action, a.detail) for a in trail] == [
            ("directory", "add-user", "role admin from the directory"),
            ("directory", "change-role", "role technician from the directory"),
        ]


def test_no_mapped_group_is_refused_and_leaves_no_user(with_directory) -> None:
    with pytest.raises(NoMappedGroup, match="no directory group that grants a role"):
        sign_in(with_directory, "carol", PASSWORD)
    with session_scope(with_directory.engine) as s:
        assert s.exec(select(User).where(User.name == "carol")).first() is None


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong password"), ("alice", ""), ("nobody", PASSWORD), ("*", PASSWORD), ("alice)(uid=*", PASSWORD)],
)
def test_a_wrong_password_or_name_is_refused_with_one_reason(slapd: Slapd, tmp_path: Path, name, password) -> None:
    with pytest.raises(LoginRefused) as refused:
        authenticate(config_for(slapd, tmp_path), name, password)
    assert type(refused.value) is LoginRefused and refused.value.reason == "invalid user name or password"


@pytest.mark.parametrize("name", ["dave", "frank"])
def test_a_disabled_directory_account_is_refused(with_directory, name: str) -> None:
    """dave is locked with ppolicy's pwdAccountLockedTime (this slapd would still accept his bind),
    frank has AD's ACCOUNTDISABLE bit; both are in a mapped group and give the right password."""
    assert USERS[name].disabled
    with pytest.raises(DirectoryAccountDisabled):
        sign_in(with_directory, name, PASSWORD)
    with session_scope(with_directory.engine) as s:
        assert s.exec(select(User).where(User.name == name)).first() is None


def test_a_user_disabled_here_stays_out_although_the_directory_vouches(with_directory) -> None:
    sign_in(with_directory, "alice", PASSWORD)
    with session_scope(with_directory.engine) as s:
        row = s.exec(select(User).where(User.name == "alice")).one()
        row.disabled = True
        s.add(row)
    with pytest.raises(LoginRefused):
        sign_in(with_directory, "alice", PASSWORD)


def test_a_local_name_is_never_taken_over_by_the_directory(with_directory) -> None:
    """alice exists here as a local account (a token-only one, then with a password): the directory's
    alice cannot sign in as her, and the local password is checked locally."""
    with session_scope(with_directory.engine) as s:
        add_user(s, "alice", "admin")
    with pytest.raises(LoginRefused):
        sign_in(with_directory, "alice", PASSWORD)
    with session_scope(with_directory.engine) as s:
        set_password(s, "alice", LOCAL_PASSWORD)
    assert directory_sign_in(with_directory, "alice", PASSWORD) is None
    assert sign_in(with_directory, "alice", LOCAL_PASSWORD).role == "admin"


def test_starttls_with_the_sites_ca(slapd: Slapd, tmp_path: Path) -> None:
    tls = {"FACTORY_LDAP_URL": slapd.tls_url, "FACTORY_LDAP_START_TLS": "1", "FACTORY_LDAP_ALLOW_PLAINTEXT": ""}
    config = config_for(slapd, tmp_path, FACTORY_LDAP_CA_FILE=str(slapd.ca_file), **tls)
    assert authenticate(config, "alice", PASSWORD).role == "technician"
    # Without the site's CA (the system's CAs never signed this one) the directory is not trusted
    # with passwords: no sign-in, and the reason is that it cannot be reached safely.
    with pytest.raises(DirectoryUnavailable):
        authenticate(config_for(slapd, tmp_path, **tls), "alice", PASSWORD)


def test_direct_bind_as_the_user(slapd: Slapd, tmp_path: Path) -> None:
    direct = {
        "FACTORY_LDAP_BIND": "direct",
        "FACTORY_LDAP_USER_DN": f"uid={{username}},ou=people,{BASE_DN}",
        "FACTORY_LDAP_USER_FILTER": "(uid={username})",
    }
    config = config_for(slapd, tmp_path, **direct)
    assert authenticate(config, "alice", PASSWORD).role == "technician"
    with pytest.raises(LoginRefused):
        authenticate(config, "alice", "not her password")
    with pytest.raises(DirectoryAccountDisabled):
        authenticate(config, "dave", PASSWORD)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"FACTORY_LDAP_ALLOW_PLAINTEXT": ""}, "FACTORY_LDAP_START_TLS"),
        ({"FACTORY_LDAP_URL": "http://127.0.0.1:1"}, "FACTORY_LDAP_URL"),
        ({"FACTORY_LDAP_BASE_DN": "force"}, "FACTORY_LDAP_BASE_DN"),
        ({"FACTORY_LDAP_BIND": "kerberos"}, "FACTORY_LDAP_BIND"),
        ({"FACTORY_LDAP_BIND_PASSWORD_FILE": "/nonexistent/secret"}, "FACTORY_LDAP_BIND_PASSWORD_FILE"),
        ({"FACTORY_LDAP_GROUP_ROLES": "superuser=cn=x,dc=y"}, "FACTORY_LDAP_GROUP_ROLES"),
        ({"FACTORY_LDAP_GROUP_ROLES": ""}, "FACTORY_LDAP_GROUP_ROLES"),
        ({"FACTORY_LDAP_USER_FILTER": "(uid=*)"}, "FACTORY_LDAP_USER_FILTER"),
        ({"FACTORY_LDAP_TIMEOUT": "soon"}, "FACTORY_LDAP_TIMEOUT"),
        ({"FACTORY_LDAP_START_TLS": "maybe"}, "FACTORY_LDAP_START_TLS"),
    ],
)
def test_a_malformed_setting_is_named(slapd: Slapd, tmp_path: Path, change: dict[str, str], named: str) -> None:
    with pytest.raises(DirectoryConfigError, match=named):
        load_config(env_for(slapd, tmp_path, **change))


def test_no_url_means_no_directory() -> None:
    assert load_config({"FACTORY_LDAP_BASE_DN": BASE_DN}) is None


def test_directory_down_local_break_glass_works_and_directory_users_get_a_reason(
    with_directory, client, slapd: Slapd
) -> None:
    with session_scope(with_directory.engine) as s:
        add_user(s, "break.glass", "admin")
        set_password(s, "break.glass", LOCAL_PASSWORD)
    sign_in(with_directory, "alice", PASSWORD)  # alice has signed in before: she has a local row
    slapd.stop()
    try:
        for name in ("alice", "erin"):
            r = web_login(client, name, PASSWORD)
            assert r.status_code == 503 and "directory cannot be reached" in r.text
        assert web_login(client, "break.glass", LOCAL_PASSWORD).status_code == 303
        assert client.get("/", follow_redirects=False).headers["location"] == "/tech/receive"  # signed in
        with pytest.raises(DirectoryUnavailable):
            sign_in(with_directory, "alice", PASSWORD)
    finally:
        slapd.start()
    assert web_login(client, "alice", PASSWORD).status_code == 303


def test_a_directory_that_hangs_is_unavailable_not_an_error(slapd: Slapd, tmp_path: Path) -> None:
    """A port that completes the TCP handshake but never answers (a black-holed directory): the
    sign-in gives up after FACTORY_LDAP_TIMEOUT with the reason, instead of hanging or failing."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever reads or answers
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        config = config_for(slapd, tmp_path, FACTORY_LDAP_URL=url, FACTORY_LDAP_TIMEOUT="1")
        with pytest.raises(DirectoryUnavailable, match="cannot be reached"):
            authenticate(config, "alice", PASSWORD)


def test_a_second_directory_server_takes_over(slapd: Slapd, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        down = f"ldap://127.0.0.1:{closed.getsockname()[1]}"
        config = config_for(slapd, tmp_path, FACTORY_LDAP_URL=f"{down} {slapd.url}")
        assert authenticate(config, "alice", PASSWORD).role == "technician"


def test_a_misconfigured_directory_refuses_directory_users_only(ctx, client, monkeypatch) -> None:
    monkeypatch.setenv("FACTORY_LDAP_URL", "ldap://127.0.0.1:1")  # plain, without StartTLS: refused
    monkeypatch.setenv("FACTORY_LDAP_BASE_DN", BASE_DN)
    with session_scope(ctx.engine) as s:
        add_user(s, "break.glass", "admin")
        set_password(s, "break.glass", LOCAL_PASSWORD)
    r = web_login(client, "alice", PASSWORD)
    assert r.status_code == 503 and "misconfigured" in r.text
    assert web_login(client, "break.glass", LOCAL_PASSWORD).status_code == 303
