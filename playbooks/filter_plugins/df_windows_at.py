"""Judges, on the controller, what the Windows assistive-technology probe saw on a laptop.

The probe (roles/accessibility/files/probe_windows.ps1, run by ansible.windows.win_powershell)
only reads: the uninstall entries of both registry views, the program files matching each
product's paths, the assistive technologies registered with Windows' Ease of Access, and the
licence evidence the site configured. Deciding what counts as "works" is done here, in Python,
so it is tested against recorded probe results (tests/provisioning/test_windows_at_findings.py)
without a Windows host.

A product is ready when all of these hold:
  * Programs and Features lists it (an uninstall entry whose DisplayName matches), so an
    installer that failed half way, or a copied folder, does not count;
  * its program file is on disk (the entry alone can outlive a deleted folder);
  * where it starts at sign-in through Ease of Access (NVDA), it is registered there;
  * where it is licensed (JAWS, ZoomText/Fusion, Dragon), the site's licence evidence is present:
    a trial or unlicensed install runs for a few minutes and stops, which an officer finds out
    mid-shift. With no evidence configured the product is reported as not verified.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


class ProbeResultError(ValueError):
    """The probe's result is not the shape probe_windows.ps1 returns."""


def _entries_for(program: Mapping[str, Any], uninstall: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    pattern = re.compile(program["display_name"], re.IGNORECASE)
    return [e for e in uninstall if pattern.search(str(e.get("display_name") or ""))]


def _licence_problem(label: str, program: Mapping[str, Any], evidence: Mapping[str, Any]) -> str | None:
    if not program.get("licensed", False):
        return None
    wanted = list(program.get("licence_evidence") or [])
    if not wanted:
        return f"{label}: licence not verified (no licence evidence is configured for it at this site)"
    if not any(evidence.get(path) is True for path in wanted):
        return f"{label}: no licence found ({', '.join(wanted)})"
    return None


def _product_problems(name: str, program: Mapping[str, Any], seen: Mapping[str, Any]) -> list[str]:
    label = program.get("label", name)
    if not _entries_for(program, seen["uninstall"]):
        return [f"{label} is not installed (not in Programs and Features)"]
    problems = []
    found_files = [f for pattern in program.get("files", []) for f in seen["files"].get(pattern) or []]
    if not found_files:
        problems.append(f"{label} is registered as installed but {', '.join(program.get('files', []))} is missing")
    at_name = program.get("at_name")
    if at_name and at_name.lower() not in {a.lower() for a in seen["ats"]}:
        problems.append(f"{label} is not registered with Windows Ease of Access, so it cannot start at sign-in")
    licence = _licence_problem(label, program, seen["evidence"])
    if licence:
        problems.append(licence)
    return problems


def _checked(result: Any) -> Mapping[str, Any]:
    """The ``result`` of the win_powershell task, checked for the keys the judgement reads."""
    seen = result.get("result") if isinstance(result, Mapping) else None
    if not isinstance(seen, Mapping) or not all(k in seen for k in ("uninstall", "files", "ats", "evidence")):
        raise ProbeResultError("the Windows assistive-technology probe returned no result")
    return {
        "uninstall": list(seen["uninstall"] or []),
        "files": dict(seen["files"] or {}),
        "ats": list(seen["ats"] or []),
        "evidence": dict(seen["evidence"] or {}),
        "errors": [str(e) for e in seen.get("errors") or []],
    }


def df_windows_at_findings(
    result: Any, required: Sequence[str], programs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """{"ready": products that work, "missing": what a technician must fix, in words}."""
    seen = _checked(result)
    missing = [f"the probe could not read: {e}" for e in seen["errors"]]
    ready = []
    for name in required:
        problems = _product_problems(name, programs[name], seen)
        missing.extend(problems)
        if not problems:
            ready.append(name)
    return {"ready": ready, "missing": missing}


def df_windows_at_installed(
    result: Any, required: Sequence[str], programs: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Required products listed in Programs and Features with their program file present: the
    install skips them (the installers are exe files without a product code to check)."""
    seen = _checked(result)
    return sorted(
        name
        for name in required
        if _entries_for(programs[name], seen["uninstall"])
        and any(seen["files"].get(pattern) for pattern in programs[name].get("files", []))
    )


def df_windows_probe_spec(programs: Mapping[str, Mapping[str, Any]], required: Sequence[str]) -> dict[str, Any]:
    """What the probe must look at for the required products: file patterns and evidence paths."""
    wanted = [programs[name] for name in required]
    return {
        "files": sorted({pattern for p in wanted for pattern in p.get("files", [])}),
        "evidence": sorted({path for p in wanted for path in p.get("licence_evidence") or []}),
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "df_windows_at_findings": df_windows_at_findings,
            "df_windows_at_installed": df_windows_at_installed,
            "df_windows_probe_spec": df_windows_probe_spec,
        }
