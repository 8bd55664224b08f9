"""Parsers for hdparm 9.65 text output: ``-I`` (identify), ``-N`` (HPA) and ``--sanitize-status``.

hdparm exits 0 even when a drive rejects a security or sanitize command, so ``rejection_in``
looks for the error lines it prints instead; callers also re-read the drive state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class AtaParseError(ValueError):
    pass


@dataclass(frozen=True)
class AtaSecurity:
    supported: bool
    enabled: bool
    locked: bool
    frozen: bool
    count_expired: bool
    enhanced_erase_supported: bool
    erase_minutes: int | None
    enhanced_erase_minutes: int | None
    master_revision: int | None
    # hdparm >= 9.38 prints "more than 508min" (or "more than 65532min") when the drive's estimate
    # saturates: the minutes above are then a lower bound, not an estimate.
    erase_time_lower_bound: bool = False


@dataclass(frozen=True)
class AtaIdentity:
    model: str
    serial: str
    firmware: str
    solid_state: bool | None
    security: AtaSecurity | None
    sanitize_supported: bool
    sanitize_block_erase: bool
    sanitize_crypto_scramble: bool
    sanitize_overwrite: bool
    hpa_feature: bool = False  # "Host Protected Area feature set" listed: hdparm -N must be readable


@dataclass(frozen=True)
class HpaState:
    visible_sectors: int
    native_sectors: int
    enabled: bool

    @property
    def hidden_sectors(self) -> int:
        return max(0, self.native_sectors - self.visible_sectors)


class AtaSanitizeState(StrEnum):
    IDLE_OK = "idle, last sanitize completed without error"
    IDLE = "idle"
    IN_PROGRESS = "in progress"
    FROZEN = "frozen"
    FAILED = "failed"


def _field(text: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}:[ \t]*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _feature(text: str, name: str) -> bool:
    # Feature lines are "\t   *\tNAME" (enabled) or "\t    \tNAME" (supported only).
    return re.search(rf"^\t\s*\*?\s*\t{re.escape(name)}\s*$", text, re.MULTILINE) is not None


_SECURITY_FLAGS = {
    "supported": "supported",
    "enabled": "enabled",
    "locked": "locked",
    "frozen": "frozen",
    "expired: security count": "count_expired",
    "supported: enhanced erase": "enhanced_erase_supported",
}


def _security(text: str) -> AtaSecurity | None:
    match = re.search(r"^Security:\s*\n((?:\t.*\n?)*)", text, re.MULTILINE)
    if not match:
        return None
    flags = dict.fromkeys(_SECURITY_FLAGS.values(), False)
    seen = False
    revision: int | None = None
    erase: int | None = None
    enhanced: int | None = None
    lower_bound = False
    for line in match.group(1).splitlines():
        if m := re.match(r"^\tMaster password revision code = (\d+)", line):
            revision = int(m.group(1))
            continue
        if m := re.match(r"^\t(not)?\t(\S.*?)\s*$", line):
            label = m.group(2)
            if label in _SECURITY_FLAGS:
                flags[_SECURITY_FLAGS[label]] = m.group(1) is None
                seen = True
                continue
        if m := re.search(r"(more than )?(\d+)min for SECURITY ERASE UNIT", line):
            erase, lower_bound = int(m.group(2)), lower_bound or m.group(1) is not None
        if m := re.search(r"(more than )?(\d+)min for ENHANCED SECURITY ERASE UNIT", line):
            enhanced, lower_bound = int(m.group(2)), lower_bound or m.group(1) is not None
    if not seen:
        return None
    return AtaSecurity(
        erase_minutes=erase,
        enhanced_erase_minutes=enhanced,
        master_revision=revision,
        erase_time_lower_bound=lower_bound,
        **flags,
    )


def parse_identify(text: str) -> AtaIdentity:
    if "ATA device" not in text and "Model Number:" not in text:
        raise AtaParseError("hdparm -I: no ATA identify data in output")
    rotation = _field(text, "Nominal Media Rotation Rate")
    solid_state: bool | None = None
    if rotation:
        solid_state = rotation == "Solid State Device"
    sanitize = _feature(text, "SANITIZE feature set")
    return AtaIdentity(
        model=_field(text, "Model Number"),
        serial=_field(text, "Serial Number"),
        firmware=_field(text, "Firmware Revision"),
        solid_state=solid_state,
        security=_security(text),
        sanitize_supported=sanitize,
        sanitize_block_erase=sanitize and _feature(text, "BLOCK_ERASE_EXT command"),
        sanitize_crypto_scramble=sanitize and _feature(text, "CRYPTO_SCRAMBLE_EXT command"),
        sanitize_overwrite=sanitize and _feature(text, "OVERWRITE_EXT command"),
        hpa_feature=_feature(text, "Host Protected Area feature set"),
    )


# hdparm >= 9.49 words the line "ACCESSIBLE MAX ADDRESS enabled/disabled" for drives with the ACS-3
# Accessible Max Address feature (which replaces the HPA): the same hidden area, named differently.
_HPA_RE = re.compile(r"max sectors\s*=\s*(\d+)/(\d+), (?:HPA is|ACCESSIBLE MAX ADDRESS) (enabled|disabled)")


def parse_hpa(text: str) -> HpaState:
    """``hdparm -N``: visible/native max sectors. A line hdparm itself calls invalid (visible above
    native, e.g. hdparm 9.60 misreading large drives' sense data) is refused, not guessed at."""
    if "seems invalid" in text:
        raise AtaParseError("hdparm -N: visible max above native max (HPA setting seems invalid): HPA state unknown")
    match = _HPA_RE.search(text)
    if not match:
        raise AtaParseError("hdparm -N: no 'max sectors = X/Y, HPA is ...' line")
    visible, native = int(match.group(1)), int(match.group(2))
    if not visible or not native or visible > native:
        raise AtaParseError(f"hdparm -N: implausible max sectors {visible}/{native}: HPA state unknown")
    return HpaState(visible, native, match.group(3) == "enabled" or visible < native)


def parse_sanitize_status(text: str) -> AtaSanitizeState:
    if rejection_in(text):
        return AtaSanitizeState.FAILED
    state = re.search(r"State:\s*(SD\d)", text)
    if not state:
        raise AtaParseError("hdparm --sanitize-status: no 'State: SDn' line")
    code = state.group(1)
    if code == "SD2":
        return AtaSanitizeState.IN_PROGRESS
    if code == "SD1":
        return AtaSanitizeState.FROZEN
    if code == "SD3":
        return AtaSanitizeState.FAILED
    if code == "SD0":
        if "Completed Without Error" in text:
            return AtaSanitizeState.IDLE_OK
        return AtaSanitizeState.IDLE
    raise AtaParseError(f"hdparm --sanitize-status: unknown state {code}")


_REJECTION_PATTERNS = (
    re.compile(r"SG_IO: bad/missing sense data"),
    re.compile(r"Input/output error"),
    re.compile(r"Invalid (argument|exchange)"),
    re.compile(r"Operation not permitted"),
    re.compile(r"\bfailed\b", re.IGNORECASE),
    re.compile(r"not supported"),
    re.compile(r"Device in FROZEN state"),
)


def rejection_in(*outputs: str) -> str | None:
    """The first line showing that the drive rejected a command, or None."""
    for output in outputs:
        for line in output.splitlines():
            if any(p.search(line) for p in _REJECTION_PATTERNS):
                return line.strip()
    return None
