"""A wipe outside the line (``factory wipe``): erase one target and certify it as loose media.

The certificate is written only for a verified success, and only at the requested path; a failure
leaves a JSON failure report under FACTORY_HOME/reports instead, so nothing certificate-like ever
sits where a certificate was expected.

The certificate layer (its modules, the tool's version and code hash) is loaded by a thread while
the erase runs: the erase waits on the device, and the user's wait for the command is the erase
plus whatever is left to do once it ends.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.kernel import clock
from factory.kernel.config import Settings
from factory.kernel.key_files import load_private_key
from factory.sanitisation.errors import WipeFailed
from imaging.certificate_context import Destination, MediaSource
from imaging.certificate_errors import CertificateError
from imaging.engine import ProgressCallback, erase
from imaging.errors import ImagingError
from imaging.result import EraseResult, Level, VerifyMode

if TYPE_CHECKING:
    from imaging.certificate import DeviceInfo


def run_wipe(
    settings: Settings,
    target: str,
    *,
    method: str,
    verify: str,
    level: str,
    operator: str | None,
    validator: str | None,
    destination: str,
    asset_tag: str | None,
    progress: ProgressCallback | None,
) -> tuple[EraseResult, dict[str, Any]]:
    """Erase ``target``; return the result and the signed envelope.

    :raises WipeFailed: bad options, a refused or failed erase (a failure report is written), or
        a result that cannot be certified; no certificate exists then.
    """
    try:
        level_enum, verify_enum = Level(level), VerifyMode(verify)
        dest = Destination(destination)
    except ValueError as exc:
        raise WipeFailed(str(exc)) from exc
    key = load_private_key(settings)  # fail before erasing if we could not certify afterwards
    threading.Thread(target=_load_certificate_layer, name="wipe-preload", daemon=True).start()
    try:
        result = erase(target, level=level_enum, method=method, verify=verify_enum, progress=progress)
    except ImagingError as exc:
        raise WipeFailed(f"refused, nothing written: {exc}") from exc
    if not result.ok:
        report = write_failure_report(settings, result)
        where = f" at offset {result.failure_offset}" if result.failure_offset is not None else ""
        raise WipeFailed(f"erase failed{where}: {result.failure_reason} (no certificate; report: {report})")
    from factory.sanitisation.certificates import Issuer, Signatories, Staff, sign_erasure

    who = operator or getpass.getuser()
    staff = (Staff(who, title="Technician"), Staff(validator or who, title="Technician"))
    signatories = Signatories(*staff, dest, reason=WIPE_REASON, agent=f"factory wipe on {socket.gethostname()}")
    try:
        issuer = Issuer.from_settings(settings)
        device = _loose_medium(result, target, asset_tag)
        envelope = sign_erasure(
            result, device, MediaSource.USER, signatories, key, issuer=issuer, issued_at=clock.now()
        )
    except CertificateError as exc:
        raise WipeFailed(f"erase verified but not certifiable: {exc}") from exc
    return result, envelope


def _load_certificate_layer() -> None:
    """What certifying needs and the erase does not, loaded while the erase waits on the device.
    An error here is left for the certifying step to raise where it is handled."""
    try:
        import factory.sanitisation.certificates  # noqa: F401
        from imaging.toolinfo import code_sha256, tool_version

        tool_version()
        code_sha256()
    except Exception:  # the same import in run_wipe raises it where it is handled
        pass


def _loose_medium(result: EraseResult, target: str, asset_tag: str | None) -> DeviceInfo:
    from imaging.certificate import DeviceInfo

    media = result.media
    return DeviceInfo(
        manufacturer=media.manufacturer or "unknown",
        model=media.model or "unknown",
        serial_number=media.serial or os.path.basename(target),
        kind="loose-media",
        asset_tag=asset_tag,
    )


WIPE_REASON = "loose medium sanitised with 'factory wipe' before reuse or disposal"


def write_certificate(envelope: dict[str, Any], path: Path) -> None:
    from imaging.certificate import dumps_envelope

    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(dumps_envelope(envelope))
    os.replace(tmp, path)


def write_failure_report(settings: Settings, result: EraseResult) -> Path:
    reports = settings.home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    path = reports / f"wipe-failed-{stamp}.json"
    path.write_text(json.dumps({"kind": "wipe-failure-report", "result": asdict(result)}, indent=2, default=str))
    return path
