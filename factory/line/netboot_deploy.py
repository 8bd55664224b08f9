"""Image deploy for network-booted laptops: the profile's golden image goes onto the internal disk,
is read back and checked against its manifest, is recorded, and the provisioner then runs against
the deployed system (its root filesystem mounted in the service environment).

It wraps the line's provisioner, so it runs inside the provision step: after ``start_provision``
committed (the device's state allowed it; it is re-checked before anything is written) and before
``provisioned``, whose custody entry carries the deploy's digests in its detail. A device in a dock
slot is provisioned as before. Every refusal fails the step with its reason: no image for the
profile, a manifest the image does not match, a read-back that differs.

The site file names the images per profile (``kind/role``), with a default::

    [deploy]
    default = "/srv/golden/laptop-2026.11.img"       # manifest beside it: <image>.manifest.json
    "laptop/exec" = "/srv/golden/exec-2026.11.img"
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import col, select

from factory.intake.models import ServiceEndpoint
from factory.intake.service import record_deployed_image
from factory.kernel.db.engine import read_scope, session_scope
from factory.kernel.errors import FactoryError
from factory.kernel.lifecycle.states import State
from factory.kernel.models.device import Device, StorageMedium
from factory.line.job_log import JobLogBuffer
from factory.line.models import Slot
from factory.line.netboot_jobs import NETBOOT_PORT_KIND
from factory.line.provision_step import Provisioner, ProvisionOutcome, ProvisionRequest
from factory.line.remote_media import RemoteMedia
from factory.sanitisation.service import ssh_access
from hardware_drivers.remote_commands import RemoteCommandError, SshTarget
from hardware_drivers.remote_deploy import RemoteImageWriter
from hardware_drivers.ssh import PinnedHostKey
from imaging.engine import PhaseReporter
from imaging.errors import ImagingError
from imaging.image_manifest import ImageFormat, ImageManifest, load_manifest, manifest_path_for

MOUNT_POINT = "/mnt/target"
ACTOR = "netboot-deploy"
CHUNK = 4 << 20


class DeployRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeploySettings:
    images: Mapping[str, Path]  # profile ("laptop/standard") or "default" -> raw image
    client_key: Path

    def image_for(self, profile: str) -> Path:
        image = self.images.get(profile) or self.images.get("default")
        if image is None:
            raise DeployRefused(f"no golden image for profile '{profile}' (site file [deploy])")
        return image


class NetbootImageDeploy:
    """A ``Provisioner``: deploy and verify the golden image, then the wrapped provisioner."""

    def __init__(self, engine: Engine, settings: DeploySettings, inner: Provisioner) -> None:
        self.engine, self.settings, self.inner = engine, settings, inner
        self.name = f"deploy image + {inner.name}"

    def __call__(self, request: ProvisionRequest) -> ProvisionOutcome:
        if not self._network_booted(request.slot):
            return self.inner(request)
        try:
            target, disk, serial = self._target(request)
            deployed = self._deploy(request, target, disk, serial)
        except DeployRefused as exc:
            return ProvisionOutcome(False, f"image deploy refused: {exc.reason}")
        except FactoryError as exc:  # the device's state no longer allows a deploy
            return ProvisionOutcome(False, f"image deploy refused: {exc.reason}")
        except (RemoteCommandError, ImagingError, OSError) as exc:
            return ProvisionOutcome(False, f"image deploy failed: {exc}")
        outcome = self._provision_mounted(request, target, disk)
        detail = f"{deployed}; {outcome.detail}"
        return ProvisionOutcome(outcome.ok, detail, outcome.noop)

    def _network_booted(self, slot_code: str) -> bool:
        with read_scope(self.engine) as conn:
            kind = conn.execute(select(Slot.port_kind).where(Slot.code == slot_code)).scalar()
        return kind == NETBOOT_PORT_KIND

    def _target(self, request: ProvisionRequest) -> tuple[SshTarget, str, str]:
        """The pinned endpoint and the internal disk's path on it (the NVMe, else the first medium)."""
        with read_scope(self.engine) as conn:
            device_id, state = conn.execute(
                select(Device.id, Device.state).where(Device.serial == request.device_serial)
            ).one()
            ep = ServiceEndpoint
            endpoint = conn.execute(
                select(ep.address, ep.port, ep.username, ep.host_key).where(ep.device_id == device_id)
            ).first()
            media = conn.execute(
                select(StorageMedium.serial, StorageMedium.media_type)
                .where(StorageMedium.device_id == device_id)
                .order_by(col(StorageMedium.id))
            ).all()  # fmt: skip
        if state != State.PROVISIONING:
            raise DeployRefused(
                f"device {request.device_serial} is {state}: an image is deployed only while provisioning"
            )
        if endpoint is None or not media:
            raise DeployRefused(f"device {request.device_serial} has no service-environment endpoint or no media")
        address, port, user, host_key = endpoint
        target = SshTarget(address, port, user, self.settings.client_key, PinnedHostKey.parse(host_key))
        serial = next((s for s, kind in media if kind == "nvme"), media[0][0])
        remote = RemoteMedia.connect(target, [serial], ssh_access)
        remote.close()
        return target, remote.paths[serial], serial

    def _deploy(self, request: ProvisionRequest, target: SshTarget, disk: str, serial: str) -> str:
        image = self.settings.image_for(request.profile)
        manifest = load_manifest(manifest_path_for(image))
        if manifest.format is not ImageFormat.RAW or image.stat().st_size != manifest.size_bytes:
            raise DeployRefused(f"{image}: only a raw image of the manifest's size is deployed over the network")
        self._log(request.job_id, f"deploying {manifest.name} {manifest.version} to {disk} ({serial})")
        with RemoteImageWriter(target) as writer:
            writer.write_stream(
                disk,
                _chunks(image, manifest),
                manifest.size_bytes,
                progress=self._progress(request, "written", "write", manifest.size_bytes),
            )
            readback = writer.read_back_sha256(
                disk, manifest.size_bytes, progress=self._progress(request, "read back", "verify", manifest.size_bytes)
            )
        if readback != manifest.sha256:
            raise DeployRefused(f"read-back of {disk} has sha256 {readback}, the manifest says {manifest.sha256}")
        with session_scope(self.engine) as s:
            record_deployed_image(
                s, request.device_serial, name=manifest.name, version=manifest.version, sha256=manifest.sha256,
                bytes_written=manifest.size_bytes, target=f"{disk} ({serial})", actor=ACTOR,
            )  # fmt: skip
        return f"golden image {manifest.name} {manifest.version} written to {serial} and read back (sha256 {readback})"

    def _provision_mounted(self, request: ProvisionRequest, target: SshTarget, disk: str) -> ProvisionOutcome:
        """The provisioner against the deployed system: its first partition mounted in the service environment."""
        part = disk + ("p1" if disk[-1].isdigit() else "1")
        with RemoteImageWriter(target) as shell:
            mounted = shell.run(
                ("sh", "-c", f"blockdev --rereadpt {disk}; mkdir -p {MOUNT_POINT} && mount {part} {MOUNT_POINT}"), 60.0
            )
            if mounted.returncode != 0:
                return ProvisionOutcome(
                    False, f"cannot mount the deployed system ({part}): {mounted.stderr.strip()[-200:]}"
                )
            try:
                inner = self.inner
                if dataclasses.is_dataclass(inner) and hasattr(inner, "target_root"):
                    inner = dataclasses.replace(inner, target_root=lambda _serial: MOUNT_POINT)  # type: ignore[type-var]
                return inner(request)
            finally:
                shell.run(("sh", "-c", f"sync; umount {MOUNT_POINT}"), 60.0)

    def _progress(self, request: ProvisionRequest, what: str, phase: str, total: int) -> Callable[[int, int], None]:
        """Bytes written or read back: live on the board (the runner's progress, throttled as an
        erase's), and a job-log line at each quarter for the record."""
        shown = {0}
        live = PhaseReporter(request.progress, phase, 1, 1, total)

        def progress(done: int, total: int) -> None:
            live(done)
            quarter = done * 4 // max(1, total)
            if quarter not in shown:
                shown.add(quarter)
                self._log(request.job_id, f"image {what}: {done * 100 // max(1, total)}%")

        return progress

    def _log(self, job_id: int, message: str) -> None:
        logs = JobLogBuffer()
        logs.add(job_id, message)
        with session_scope(self.engine) as s:
            logs.flush(s)


def _chunks(image: Path, manifest: ImageManifest) -> Iterator[bytes]:
    """The image in pieces, hashed on the way: a file changed since its manifest stops the stream."""
    digest = hashlib.sha256()
    with image.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            yield chunk
    if digest.hexdigest() != manifest.sha256:
        raise DeployRefused(f"{image} does not match its manifest's sha256: refusing to finish the deploy")


def with_image_deploy(
    engine: Engine, images: Mapping[str, Path], client_key: Path | None, inner: Provisioner | None
) -> Provisioner | None:
    """The agent's provisioner, wrapped with the image deploy when the site file names images."""
    if inner is None or not images or client_key is None:
        return inner
    return NetbootImageDeploy(engine, DeploySettings(images, client_key), inner)
