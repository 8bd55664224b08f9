"""A throwaway OpenLDAP ``slapd`` (Debian's) on a free loopback port, seeded with the force's people.

Each directory lives in its own temporary folder: a generated ``slapd.conf`` (mdb backend, the
ppolicy overlay, and the few Active Directory attributes a sign-in reads, with AD's OIDs), a private
CA with a server certificate for ``localhost``/``127.0.0.1`` (StartTLS), and an LDIF seeded with
``slapadd`` before the daemon starts. ``slapd -d 0`` stays in the foreground, so the test owns the
process and ``stop``/``start`` simulate the directory going down and coming back.

The seeded tree (``BASE_DN``), with every user's password ``PASSWORD``:

* OpenLDAP-style people (``inetOrgPerson``, ``uid``) and ``groupOfNames`` groups with ``member``;
* Active Directory shaped users (``user``, ``sAMAccountName``, ``userAccountControl``, ``memberOf``)
  and ``group`` entries, as a force's AD would hold them.

``USERS`` says who is in which group and who is disabled (AD's ACCOUNTDISABLE bit, or OpenLDAP's
ppolicy ``pwdAccountLockedTime``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.requirements import require_tool
from harness.waiting import wait_until

BASE_DN = "dc=force,dc=example"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
READER_DN = f"cn=factory-reader,{BASE_DN}"
READER_PASSWORD = "reader password for tests"
PASSWORD = "directory password 1"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS_DN}"


@dataclass(frozen=True)
class Person:
    name: str
    groups: tuple[str, ...]
    ad: bool = False  # an Active Directory shaped entry (sAMAccountName, userAccountControl, memberOf)
    disabled: bool = False

    @property
    def dn(self) -> str:
        return f"cn={self.name},{PEOPLE_DN}" if self.ad else f"uid={self.name},{PEOPLE_DN}"


GROUPS = ("factory-technicians", "factory-admins", "factory-auditors", "factory-couriers", "canteen")
USERS = {
    p.name: p
    for p in (
        Person("alice", ("factory-technicians",)),
        Person("bob", ("factory-technicians", "factory-admins")),
        Person("carol", ("canteen",)),
        Person("dave", ("factory-technicians",), disabled=True),
        Person("erin", ("factory-couriers",), ad=True),
        Person("frank", ("factory-technicians",), ad=True, disabled=True),
        Person("grace", ("factory-auditors",), ad=True),
    )
}


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _person_ldif(p: Person) -> str:
    lines = [f"dn: {p.dn}", f"cn: {p.name}", f"sn: {p.name.title()}", f"userPassword: {_ssha(PASSWORD)}"]
    if p.ad:
        # 512 = NORMAL_ACCOUNT; 514 adds ACCOUNTDISABLE (0x2), as AD marks a disabled account.
        lines += ["objectClass: user", f"sAMAccountName: {p.name}", f"userAccountControl: {514 if p.disabled else 512}"]
        lines += [f"memberOf: {group_dn(g)}" for g in p.groups]
    else:
        lines += ["objectClass: inetOrgPerson", f"uid: {p.name}"]
        if p.disabled:
            lines.append("pwdAccountLockedTime: 000001010000Z")  # ppolicy: locked until an admin unlocks
    return "\n".join(lines)


def seed_ldif() -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: force\no: Force",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {READER_DN}\nobjectClass: person\ncn: factory-reader\nsn: Reader\nuserPassword: {_ssha(READER_PASSWORD)}",
        *(_person_ldif(p) for p in USERS.values()),
    ]
    for name in GROUPS:
        members = [p.dn for p in USERS.values() if name in p.groups] or [READER_DN]
        entries.append(
            f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n"
            + "\n".join(f"member: {m}" for m in members)
        )
    return "\n\n".join(entries) + "\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for localhost and 127.0.0.1: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test directory CA")])
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name, public_key=ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
            public_key=key.public_key(),
        )
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (
        _write_pem(folder / "ca.pem", ca.public_bytes(pem)),
        _write_pem(folder / "server.pem", cert.public_bytes(pem)),
        _write_pem(folder / "server.key", key_pem),
    )


# What a sign-in reads of an AD user, with AD's OIDs and matching rules (Debian's msuser.schema
# leaves sAMAccountName without an equality rule, so a filter on it would never match).
AD_SCHEMA = """
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.102 NAME 'memberOf' EQUALITY distinguishedNameMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
  MAY ( sAMAccountName $ userAccountControl $ memberOf ) )
"""


def _config(folder: Path, ca: Path, cert: Path, key: Path) -> str:
    (folder / "ad.schema").write_text(AD_SCHEMA)
    schemas = [f"/etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson")]
    return "\n".join(
        [
            *(f"include {s}" for s in [*schemas, str(folder / "ad.schema")]),
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "moduleload ppolicy",
            f"pidfile {folder / 'slapd.pid'}",
            f"TLSCACertificateFile {ca}",
            f"TLSCertificateFile {cert}",
            f"TLSCertificateKeyFile {key}",
            "database mdb",
            f'suffix "{BASE_DN}"',
            f'rootdn "cn=root,{BASE_DN}"',
            f"directory {folder / 'db'}",
            "overlay ppolicy",
            # Users may bind (auth) but read nothing anonymously; the service account reads the tree.
            f'access to attrs=userPassword by dn.exact="{READER_DN}" none by anonymous auth by * none',
            f'access to * by dn.exact="{READER_DN}" read by self read by users read by * none',
            "",
        ]
    )


@dataclass
class Slapd:
    """One running directory; ``url`` is plain LDAP on loopback, ``tls_url`` names ``localhost`` for StartTLS."""

    folder: Path
    ca_file: Path
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldap://localhost:{self.port}"

    def start(self) -> None:
        slapd = require_tool("slapd")
        self.port = self.port or _free_port()
        self._proc = subprocess.Popen(
            [slapd, "-d", "0", "-f", str(self.folder / "slapd.conf"), "-h", self.url + "/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._accepts, timeout=20, message=f"slapd listening on {self.url}")

    def _accepts(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(f"slapd exited with {self._proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def stop(self) -> None:
        """Stop the directory (the port then refuses connections: the directory is down)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


@contextlib.contextmanager
def running_slapd(folder: Path, extra_ldif: str = "") -> Iterator[Slapd]:
    """A seeded slapd in ``folder`` for the duration of the block (``extra_ldif``: more entries)."""
    require_tool("slapadd")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir()
    ca, cert, key = _certificates(folder)
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder, ca, cert, key))
    (folder / "seed.ldif").write_text(seed_ldif() + (f"\n{extra_ldif.strip()}\n" if extra_ldif else ""))
    subprocess.run(
        [require_tool("slapadd"), "-q", "-f", str(conf), "-l", str(folder / "seed.ldif")],
        check=True,
        capture_output=True,
    )
    server = Slapd(folder=folder, ca_file=ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()
