"""SNMPv3 USM credentials for the bench switches (polls and link traps), and the pysnmp set-up for them.

Only authPriv is supported: a police network's switches (PSN / NCSC guidance) take SNMPv3 with
authentication and privacy, and a v3 user without them protects nothing a v2c community does not.
MD5 and DES are refused (broken or withdrawn); SHA-1 is accepted because many switches offer
nothing better, the SHA-2 family (RFC 7860) is preferred.

Protocol names follow net-snmp's ``-a``/``-x`` spellings (case and hyphens ignored): AES192/AES256
are the Blumenthal key extension (net-snmp ``AES-192``), AES192C/AES256C Cisco's (Reeder) one
(net-snmp ``AES-192-C``); AES (= AES128, RFC 3826) needs neither and is the one to choose when in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pysnmp.entity import config, engine
from pysnmp.proto import errind

MIN_KEY_LENGTH = 8  # RFC 3414 section 11.2: a pass phrase of at least 8 characters

AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA1": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "AES": config.USM_PRIV_CFB128_AES,
    "AES128": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": config.USM_PRIV_CFB192_AES,
    "AES256C": config.USM_PRIV_CFB256_AES,
}
_REFUSED = {"MD5": "MD5 is broken", "DES": "DES is withdrawn", "3DES": "3DES is withdrawn", "NONE": "authPriv only"}
AUTH_PRIV = "authPriv"
USM_SECURITY_MODEL = 3
USM_AUTH_PRIV_LEVEL = 3  # securityLevel as pysnmp reports it: noAuthNoPriv(1), authNoPriv(2), authPriv(3)


def protocol_key(name: str) -> str:
    """``SHA-256`` and ``sha256`` both name SHA256."""
    return name.replace("-", "").replace("_", "").upper()


def _check_protocol(kind: str, name: str, known: dict[str, tuple[int, ...]]) -> None:
    key = protocol_key(name)
    if key in _REFUSED:
        raise ValueError(f"{kind} {name!r} is refused ({_REFUSED[key]}); use one of {', '.join(known)}")
    if key not in known:
        raise ValueError(f"{kind} {name!r} is not one of {', '.join(known)}")


@dataclass(frozen=True, slots=True)
class UsmUser:
    """One SNMPv3 user at authPriv. ``engine_id`` is the switch's snmpEngineID, needed to accept its
    TRAPs (the sender is authoritative, RFC 3414 section 1.5.1); INFORMs and polls discover it."""

    user: str
    auth_protocol: str
    auth_key: str = field(repr=False)
    priv_protocol: str
    priv_key: str = field(repr=False)
    engine_id: bytes | None = None

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("a v3 user needs a user name")
        _check_protocol("auth_protocol", self.auth_protocol, AUTH_PROTOCOLS)
        _check_protocol("priv_protocol", self.priv_protocol, PRIV_PROTOCOLS)
        for what, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if len(key) < MIN_KEY_LENGTH:
                raise ValueError(f"the {what} key is {len(key)} characters; USM needs at least {MIN_KEY_LENGTH}")
        if self.engine_id is not None and not 5 <= len(self.engine_id) <= 32:
            raise ValueError("engine_id must be 5 to 32 octets (RFC 3411 SnmpEngineID)")

    def add_to(self, snmp_engine: engine.SnmpEngine, security_engine_id: bytes | None = None) -> None:
        """Register the user, localised for ``security_engine_id`` (None: this engine, for INFORMs)."""
        config.add_v3_user(
            snmp_engine,
            self.user,
            AUTH_PROTOCOLS[protocol_key(self.auth_protocol)],
            self.auth_key,
            PRIV_PROTOCOLS[protocol_key(self.priv_protocol)],
            self.priv_key,
            securityEngineId=security_engine_id,
        )


def parse_engine_id(text: str) -> bytes:
    """An snmpEngineID as switches print it: hex, optionally ``0x``-prefixed, colons or spaces allowed."""
    digits = text.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"engine_id {text!r} is not hexadecimal") from None
    if not 5 <= len(value) <= 32:
        raise ValueError(f"engine_id {text!r} must be 5 to 32 octets")
    return value


def add_poll_credentials(
    snmp_engine: engine.SnmpEngine, params: str, community: str, usm: UsmUser | None, area: str
) -> None:
    """Target parameters ``params`` for polling: USM authPriv when ``usm`` is given, v2c otherwise."""
    if usm is not None:
        usm.add_to(snmp_engine)  # requests: pysnmp discovers the agent's engine and re-localises
        config.add_target_parameters(snmp_engine, params, usm.user, AUTH_PRIV, USM_SECURITY_MODEL)
        return
    config.add_v1_system(snmp_engine, area, community)
    config.add_target_parameters(snmp_engine, params, area, "noAuthNoPriv", 1)


# Reports a v3 agent sends when it refuses a request (RFC 3414 section 3.2, RFC 3412 section 7.2):
# wrong credentials are a refusal by the switch, not a malformed reply.
_USM_REFUSALS = {
    errind.UnknownUserName: "SNMPv3 user unknown to the switch",
    errind.WrongDigest: "SNMPv3 authentication failed (auth protocol or key)",
    errind.DecryptionError: "SNMPv3 decryption failed (priv protocol or key)",
    errind.UnsupportedSecurityLevel: "SNMPv3 user not configured for authPriv on the switch",
    errind.UnknownEngineID: "SNMPv3 engine discovery failed",
    errind.NotInTimeWindow: "SNMPv3 message outside the switch's time window",
}


def usm_refusal(error_indication: Any) -> str | None:
    for kind, text in _USM_REFUSALS.items():
        if isinstance(error_indication, kind):
            return text
    if isinstance(error_indication, errind.ReportPduReceived):
        return f"SNMPv3 report {error_indication} (e.g. snmpUnknownContexts: context not configured)"
    return None
