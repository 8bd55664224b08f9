"""What each erase method is in the standards a certificate cites (schema version 2).

NIST SP 800-88 Rev. 2 (September 2025, replacing the withdrawn Rev. 1) keeps the categories Clear,
Purge and Destroy and hands the technique per interface and media type to IEEE 2883-2022. This
module is the one table from an engine method name to the IEEE 2883 technique it performs, the
interface it is defined for, and the provenance of a cryptographic erase; the level a method
reaches on a given medium stays with the method's ``supports`` (the planner chose it from there).

Clauses are cited by the interface and command the standard sets out, not by number: the clause
numbers were not checked against the published text, and a wrong number is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the probe is only read here; importing it at runtime would pull in sysfs
    from imaging.probe import Probe

NIST_STANDARD = "NIST SP 800-88 Rev. 2"
IEEE_STANDARD = "IEEE 2883-2022"


@dataclass(frozen=True)
class MethodStandard:
    """An engine method as IEEE 2883 names it."""

    interface: str  # NVMe, ATA, or "any" for a host overwrite through ordinary writes
    technique: str  # the IEEE 2883 technique, e.g. "Sanitize Crypto Erase"
    clause: str  # where IEEE 2883 sets it out (interface and command)
    key_scope: str | None = None  # for a cryptographic erase: which key the drive destroys


_METHODS: dict[str, MethodStandard] = {
    "nvme-sanitize-crypto": MethodStandard(
        "NVMe",
        "Sanitize Crypto Erase",
        f"{IEEE_STANDARD}, NVMe interface: Sanitize command, Crypto Erase action (SANACT 100b)",
        "every media encryption key of the NVM subsystem (Sanitize acts on the whole subsystem)",
    ),
    "nvme-sanitize-block": MethodStandard(
        "NVMe",
        "Sanitize Block Erase",
        f"{IEEE_STANDARD}, NVMe interface: Sanitize command, Block Erase action (SANACT 010b)",
    ),
    "nvme-format-crypto": MethodStandard(
        "NVMe",
        "Format NVM Cryptographic Erase",
        f"{IEEE_STANDARD}, NVMe interface: Format NVM command, Secure Erase Settings 010b",
        "the media encryption key of every namespace the format applied to",
    ),
    "nvme-format-erase": MethodStandard(
        "NVMe",
        "Format NVM User Data Erase",
        f"{IEEE_STANDARD}, NVMe interface: Format NVM command, Secure Erase Settings 001b",
    ),
    "ata-sanitize-crypto-scramble": MethodStandard(
        "ATA",
        "Sanitize Crypto Scramble",
        f"{IEEE_STANDARD}, ATA interface: SANITIZE feature set, CRYPTO SCRAMBLE EXT",
        "the internal encryption keys the drive uses for user data (CRYPTO SCRAMBLE changes them)",
    ),
    "ata-sanitize-block-erase": MethodStandard(
        "ATA", "Sanitize Block Erase", f"{IEEE_STANDARD}, ATA interface: SANITIZE feature set, BLOCK ERASE EXT"
    ),
    "ata-secure-erase-enhanced": MethodStandard(
        "ATA",
        "Security Erase Unit (enhanced)",
        f"{IEEE_STANDARD}, ATA interface: Security feature set, SECURITY ERASE UNIT (enhanced)",
    ),
    "ata-secure-erase-normal": MethodStandard(
        "ATA",
        "Security Erase Unit (normal)",
        f"{IEEE_STANDARD}, ATA interface: Security feature set, SECURITY ERASE UNIT (normal)",
    ),
    # Tablets (imaging/tablets): the platform's reset destroys its file-encryption keys; eMMC has its own commands.
    "cryptographic erase (platform reset)": MethodStandard(
        "platform (iPadOS, Android)",
        "Cryptographic Erase (platform reset)",
        f"{NIST_STANDARD}: cryptographic erase; {IEEE_STANDARD}: cryptographic erase by the platform",
        "the platform's file-based encryption keys (the reset destroys them)",
    ),
    "eMMC secure erase + sanitize": MethodStandard(
        "eMMC", "Erase + Sanitize", f"{IEEE_STANDARD}, eMMC interface: Secure Erase and SANITIZE (Clear)"
    ),
}
_OVERWRITE = MethodStandard(
    "any",
    "Overwrite",
    f"{IEEE_STANDARD}, Clear: overwrite of all user-addressable locations with native write commands",
)


def method_standard(method: str) -> MethodStandard | None:
    """The IEEE 2883 record of an engine method; None for a method this table lacks (the
    certificate then cites none rather than guess; every engine method is mapped, a test says so)."""
    if method.startswith("overwrite-"):
        return _OVERWRITE
    return _METHODS.get(method)


def known_methods() -> tuple[str, ...]:
    return (*_METHODS, "overwrite-*")


def probed_capabilities(probe: Probe) -> tuple[str, ...]:
    """The sanitisation commands the medium's firmware advertised when probed, in a fixed order
    (empty for a medium with no firmware method data: a file, a loop device, USB, MMC)."""
    caps: list[str] = []
    if probe.nvme is not None:
        ctrl = probe.nvme
        flags = (
            (ctrl.sanitize_crypto, "nvme-sanitize-crypto-erase"),
            (ctrl.sanitize_block, "nvme-sanitize-block-erase"),
            (ctrl.sanitize_overwrite, "nvme-sanitize-overwrite"),
            (ctrl.format_supported, "nvme-format"),
            (ctrl.crypto_format_supported, "nvme-format-crypto-erase"),
        )
        caps.extend(name for present, name in flags if present)
    if probe.ata is not None:
        ata, sec = probe.ata, probe.ata.security
        flags = (
            (ata.sanitize_supported and ata.sanitize_crypto_scramble, "ata-sanitize-crypto-scramble"),
            (ata.sanitize_supported and ata.sanitize_block_erase, "ata-sanitize-block-erase"),
            (ata.sanitize_supported and ata.sanitize_overwrite, "ata-sanitize-overwrite"),
            (sec is not None and sec.supported, "ata-security-erase"),
            (sec is not None and sec.supported and sec.enhanced_erase_supported, "ata-enhanced-security-erase"),
        )
        caps.extend(name for present, name in flags if present)
    return tuple(caps)


def firmware_revision(probe: Probe) -> str | None:
    """The firmware revision the medium reported (NVMe id-ctrl ``fr``, ATA identify), if any."""
    for data in (probe.nvme, probe.ata):
        if data is not None and data.firmware.strip():
            return data.firmware.strip()
    return None
