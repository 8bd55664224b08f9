"""The normalised completion status of a command the engine issued (certificate schema version 2).

A certificate keeps every command's raw argv, exit status and output; NIST SP 800-88 Rev. 2 asks
the verifier to look at the completion status of a firmware operation, and an auditor should not
have to know that ``"sstat": "0x101"`` means "completed". This reads the same outputs the method
modules read (one parser each, in ``nvme_info`` and ``ata_info``) and names the outcome in one
word from a fixed set, with a one-line detail.
"""

from __future__ import annotations

from imaging.ata_info import AtaParseError, AtaSanitizeState, parse_sanitize_status, rejection_in
from imaging.commands import NOT_FOUND, TIMED_OUT
from imaging.nvme_info import NvmeParseError, SanitizeState, parse_sanitize_log
from imaging.result import CommandRecord

# Every outcome a certificate may show, in the order a reader would worry about them least to most.
OUTCOMES = ("completed", "in_progress", "rejected", "failed", "timed_out", "not_run")

# NVMe generic statuses meaning the controller refused the command before executing it.
_NOT_EXECUTED = ("Invalid Command Opcode", "Invalid Field in Command")
_NVME_SANITIZE = {
    SanitizeState.COMPLETED: ("completed", "sanitize completed (SSTAT 001b)"),
    SanitizeState.COMPLETED_NO_DEALLOCATE: ("completed", "sanitize completed without deallocation (SSTAT 100b)"),
    SanitizeState.IN_PROGRESS: ("in_progress", "sanitize in progress (SSTAT 010b)"),
    SanitizeState.FAILED: ("failed", "the last sanitize failed (SSTAT 011b)"),
    SanitizeState.NEVER: ("failed", "no sanitize has completed since manufacture (SSTAT 000b)"),
}
_ATA_SANITIZE = {
    AtaSanitizeState.IDLE_OK: ("completed", "sanitize completed without error (SD0)"),
    AtaSanitizeState.IDLE: ("failed", "idle without a completed sanitize (SD0)"),
    AtaSanitizeState.IN_PROGRESS: ("in_progress", "sanitize in progress (SD2)"),
    AtaSanitizeState.FROZEN: ("rejected", "sanitize frozen (SD1): no erase happened"),
    AtaSanitizeState.FAILED: ("failed", "sanitize failed (SD3)"),
}


def command_status(record: CommandRecord) -> dict[str, str]:
    """``{"outcome": one of OUTCOMES, "detail": one line}`` for one recorded command."""
    outcome, detail = _classify(record)
    return {"outcome": outcome, "detail": detail}


def _classify(record: CommandRecord) -> tuple[str, str]:
    argv = record.argv
    if record.returncode == TIMED_OUT:
        return "timed_out", "no answer before the time limit: outcome unknown"
    if record.returncode == NOT_FOUND and not record.stdout:
        return "not_run", f"{argv[0] if argv else 'command'} not found"
    text = record.stdout + "\n" + record.stderr
    if argv[:1] == ("nvme",):
        return _nvme(record, text)
    if argv[:1] == ("hdparm",):
        return _hdparm(record, text)
    return _generic(record)


def _nvme(record: CommandRecord, text: str) -> tuple[str, str]:
    status = next((line.strip() for line in text.splitlines() if "NVMe status:" in line), None)
    if status is not None and any(s in status for s in _NOT_EXECUTED):
        return "rejected", f"controller refused it before executing: {status}"
    if record.returncode != 0:
        return "failed", status or f"exit status {record.returncode}"
    if record.argv[1:2] == ("sanitize-log",):
        try:
            return _NVME_SANITIZE[parse_sanitize_log(record.stdout).state]
        except NvmeParseError as exc:
            return "failed", f"status unreadable: {exc}"
    if record.argv[1:2] == ("format",):
        if "Success formatting namespace" in record.stdout:
            return "completed", "format reported success"
        return "failed", "exit status 0 without the success line: outcome unknown"
    if record.argv[1:2] == ("sanitize",):
        return "in_progress", "sanitize accepted; it runs in the background (see the sanitize log)"
    return "completed", "exit status 0"


def _hdparm(record: CommandRecord, text: str) -> tuple[str, str]:
    if "--sanitize-status" in record.argv:
        try:
            return _ATA_SANITIZE[parse_sanitize_status(text)]
        except AtaParseError as exc:
            return "failed", f"status unreadable: {exc}"
    if line := rejection_in(record.stdout, record.stderr):
        return "rejected", f"drive rejected it: {line}"
    if any(flag.startswith("--sanitize-") for flag in record.argv) and record.returncode == 0:
        if "Operation started in background" in record.stdout:
            return "in_progress", "sanitize started in the background (see the sanitize status)"
    return _generic(record)


def _generic(record: CommandRecord) -> tuple[str, str]:
    if record.returncode == 0:
        return "completed", "exit status 0"
    return "failed", f"exit status {record.returncode}"
