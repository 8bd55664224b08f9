"""Parsers for nvme-cli JSON output (1.x and 2.x): ``id-ctrl``, ``id-ns`` and ``sanitize-log``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from imaging.tool_json import tool_json_object

# OACS bit 1: Format NVM supported.
OACS_FORMAT = 1 << 1
# FNA bit 2: cryptographic erase supported as part of Format (SES=2).
FNA_CRYPTO_FORMAT = 1 << 2
# SANICAP bits 0..2: crypto erase, block erase, overwrite.
SANICAP_CRYPTO = 1 << 0
SANICAP_BLOCK = 1 << 1
SANICAP_OVERWRITE = 1 << 2


class NvmeParseError(ValueError):
    pass


class SanitizeState(IntEnum):
    """SSTAT bits 2:0 of the Sanitize Status log page."""

    NEVER = 0
    COMPLETED = 1
    IN_PROGRESS = 2
    FAILED = 3
    COMPLETED_NO_DEALLOCATE = 4

    @property
    def succeeded(self) -> bool:
        return self in (SanitizeState.COMPLETED, SanitizeState.COMPLETED_NO_DEALLOCATE)


@dataclass(frozen=True)
class NvmeController:
    model: str
    serial: str
    firmware: str
    oacs: int
    fna: int
    sanicap: int

    @property
    def format_supported(self) -> bool:
        return bool(self.oacs & OACS_FORMAT)

    @property
    def crypto_format_supported(self) -> bool:
        return self.format_supported and bool(self.fna & FNA_CRYPTO_FORMAT)

    @property
    def sanitize_crypto(self) -> bool:
        return bool(self.sanicap & SANICAP_CRYPTO)

    @property
    def sanitize_block(self) -> bool:
        return bool(self.sanicap & SANICAP_BLOCK)

    @property
    def sanitize_overwrite(self) -> bool:
        return bool(self.sanicap & SANICAP_OVERWRITE)


@dataclass(frozen=True)
class SanitizeLog:
    state: SanitizeState
    progress: int  # SPROG: 65535 = not in progress / complete
    global_erased: bool
    # ETBE / ETCE in seconds as the log reports them (FFFFFFFFh: no estimate); None when absent.
    block_erase_seconds: int | None = None
    crypto_erase_seconds: int | None = None

    @property
    def progress_fraction(self) -> float:
        return min(self.progress, 65536) / 65536.0


def _load(text: str, what: str) -> dict[str, object]:
    return tool_json_object(text, what, NvmeParseError)


def _int(data: dict[str, object], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NvmeParseError(f"{what}: field {key!r} missing or not an integer")
    return value


def _register(data: dict[str, object], key: str, what: str, bits: int) -> int:
    """An unsigned ``bits``-wide register. nvme-cli 2.0-2.2 printed 32-bit fields through a signed
    32-bit JSON integer, so a SANICAP with bit 31 set (NODMMAS) came out negative: the same bits,
    read back here as the unsigned value. Anything outside the register's range is refused."""
    value = _int(data, key, what)
    if -(1 << (bits - 1)) <= value < 0:
        value += 1 << bits
    if not 0 <= value < (1 << bits):
        raise NvmeParseError(f"{what}: field {key!r} = {value} does not fit a {bits}-bit register")
    return value


def parse_id_ctrl(text: str) -> NvmeController:
    what = "nvme id-ctrl"
    data = _load(text, what)
    return NvmeController(
        model=str(data.get("mn", "")).strip(),
        serial=str(data.get("sn", "")).strip(),
        firmware=str(data.get("fr", "")).strip(),
        oacs=_register(data, "oacs", what, 16),
        fna=_register(data, "fna", what, 8),
        sanicap=_register(data, "sanicap", what, 32),
    )


def parse_id_ns_reads_zeros(text: str) -> bool:
    """DLFEAT bits 2:0 == 001: deallocated/erased blocks read back as all zeros."""
    data = _load(text, "nvme id-ns")
    return (_int(data, "dlfeat", "nvme id-ns") & 0x7) == 1


_STATUS_RE = re.compile(r"^\((\d+)\)")


def parse_sanitize_log(text: str) -> SanitizeLog:
    """Parse ``nvme sanitize-log -o json``.

    nvme-cli 2.x nests the log under the device name and prints SSTAT as an object whose status
    string is "(N) ..."; its key changed between releases (2.3: "status", 2.8: the text itself), so
    the value is found by shape. A plain integer SSTAT (newer releases) is accepted too.
    """
    what = "nvme sanitize-log"
    data = _load(text, what)
    body: dict[str, object] = data
    if "sstat" not in data:
        nested = [v for v in data.values() if isinstance(v, dict) and "sstat" in v]
        if len(nested) != 1:
            raise NvmeParseError(f"{what}: no sstat field")
        body = nested[0]
    sstat = body["sstat"]
    global_erased = False
    if isinstance(sstat, int) and not isinstance(sstat, bool):
        code = sstat & 0x7
        global_erased = bool(sstat & 0x100)
    elif isinstance(sstat, dict):
        codes = [int(m.group(1)) for v in sstat.values() if isinstance(v, str) and (m := _STATUS_RE.match(v))]
        if len(codes) != 1:
            raise NvmeParseError(f"{what}: sstat has no '(N) status' entry")
        code = codes[0]
        global_erased = bool(sstat.get("global_erased", 0))
    else:
        raise NvmeParseError(f"{what}: sstat is neither an object nor an integer")
    try:
        state = SanitizeState(code)
    except ValueError as exc:
        raise NvmeParseError(f"{what}: unknown sanitize status {code}") from exc
    return SanitizeLog(
        state=state,
        progress=_int(body, "sprog", what),
        global_erased=global_erased,
        block_erase_seconds=_optional_int(body, "time_block_erase"),
        crypto_erase_seconds=_optional_int(body, "time_crypto_erase"),
    )


def _optional_int(data: dict[str, object], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
