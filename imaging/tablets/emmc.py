"""eMMC of Windows and rugged tablets: Debian's ``mmc-utils`` through the command seam.

``mmc extcsd read DEV`` prints the EXT_CSD register; ``SEC_FEATURE_SUPPORT`` (byte 231) says
which secure commands the part has: bit 0 SECURE_ER_EN (secure erase), bit 4 SEC_GB_CL_EN
(secure trim / garbage-collected erase), bit 6 SEC_SANITIZE. ``SEC_COUNT`` is the user area's
size in 512-byte sectors. ``mmc erase TYPE START END DEV`` prints ``Executing ... / <type>
Succeed!``; ``mmc sanitize DEV`` prints nothing on success and ``Could not write ... EXT_CSD[165]``
when the part refuses it.

IEEE 2883-2022 counts an eMMC erase followed by a sanitize as Clear (not Purge): the result
says so, with the residual risk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imaging.commands import NOT_FOUND, TIMED_OUT, CommandRunner
from imaging.result import CommandRecord

READ_TIMEOUT = 30.0
ERASE_TIMEOUT = 4 * 3600.0
SECURE_ER_EN = 0x01
SEC_GB_CL_EN = 0x10
SEC_SANITIZE = 0x40
_REV = re.compile(r"Extended CSD rev 1\.(\d+) \(MMC ([0-9.]+)\)")
_FIELD = re.compile(r"\[([A-Z0-9_]+): (0x[0-9a-fA-F]+)\]")


class ExtCsdError(ValueError):
    """The output is not an EXT_CSD dump."""


@dataclass(frozen=True)
class ExtCsd:
    revision: int  # EXT_CSD_REV
    mmc_version: str
    sec_feature_support: int
    sectors: int  # SEC_COUNT
    erased_content: int  # ERASED_MEM_CONT: 0 -> erased cells read 0x00, 1 -> 0xff

    @property
    def sanitize(self) -> bool:
        return bool(self.sec_feature_support & SEC_SANITIZE)

    @property
    def secure_erase(self) -> bool:
        return bool(self.sec_feature_support & SECURE_ER_EN)

    @property
    def last_sector(self) -> int:
        return self.sectors - 1


def read_extcsd(runner: CommandRunner, dev: str) -> tuple[ExtCsd | None, CommandRecord]:
    record = runner.run(["mmc", "extcsd", "read", dev], READ_TIMEOUT)
    if record.returncode != 0:
        return None, record
    try:
        return parse_extcsd(record.stdout), record
    except ExtCsdError:
        return None, record


def parse_extcsd(text: str) -> ExtCsd:
    rev = _REV.search(text)
    fields = {name: int(value, 16) for name, value in _FIELD.findall(text)}
    if rev is None or "SEC_FEATURE_SUPPORT" not in fields or "SEC_COUNT" not in fields:
        raise ExtCsdError("no EXT_CSD revision, SEC_FEATURE_SUPPORT or SEC_COUNT in the output")
    return ExtCsd(
        revision=int(rev.group(1)),
        mmc_version=rev.group(2),
        sec_feature_support=fields["SEC_FEATURE_SUPPORT"],
        sectors=fields["SEC_COUNT"],
        erased_content=fields.get("ERASED_MEM_CONT", 0),
    )


def secure_erase(runner: CommandRunner, dev: str, ext: ExtCsd) -> CommandRecord:
    return runner.run(["mmc", "erase", "secure-erase", "0", f"{ext.last_sector:#x}", dev], ERASE_TIMEOUT)


def erase_succeeded(record: CommandRecord) -> bool:
    return record.returncode == 0 and "Succeed!" in record.stdout and "Failed!" not in record.stdout


def sanitize(runner: CommandRunner, dev: str) -> CommandRecord:
    return runner.run(["mmc", "sanitize", dev], ERASE_TIMEOUT)


def failure(record: CommandRecord) -> str:
    if record.returncode == NOT_FOUND:
        return "mmc is not installed on this host (Debian package mmc-utils)"
    if record.returncode == TIMED_OUT:
        return f"{' '.join(record.argv[:2])} timed out: the part may still be erasing, outcome unknown"
    text = " | ".join(line.strip() for line in (record.stderr + record.stdout).splitlines() if line.strip())
    return f"{' '.join(record.argv[:2])}: {text[:300] or f'exit {record.returncode}'}"
