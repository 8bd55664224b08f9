"""``factory image``: golden-image manifests and deploys recorded on the device."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from factory.cli.common import console, fail, one_line_errors, rich_console, unit_of_work
from factory.cli.inputs import bounded
from factory.intake.service import image_target, record_image
from factory.kernel import limits
from factory.kernel.db.engine import session_scope
from imaging.deploy import deploy_image
from imaging.engine import Progress as EngineProgress
from imaging.errors import ImagingError
from imaging.image_manifest import build_manifest, manifest_path_for, save_manifest
from imaging.piece_digest import digest_name

app = typer.Typer(help="Golden images.", no_args_is_help=True)


@app.command("manifest")
@one_line_errors
def manifest_cmd(
    image: Path = typer.Argument(..., help="Raw or zstd-compressed image."),
    name: str = typer.Option(..., "--name"),
    version: str = typer.Option(..., "--version"),
) -> None:
    """Write IMAGE.manifest.json (name, version, format, size, SHA-256, pieces digest) beside the image."""
    try:
        manifest = build_manifest(image, name=name, version=version)
    except ImagingError as exc:
        fail(str(exc))
        return
    path = manifest_path_for(image)
    save_manifest(manifest, path)
    console.print(
        f"manifest {path}: {manifest.name} {manifest.version} sha256 {manifest.sha256}, "
        f"{digest_name(manifest.piece_bytes)} {manifest.pieces_sha256}",
        markup=False,
    )


@app.command("deploy")
@one_line_errors
def deploy_cmd(
    image: Path = typer.Argument(..., help="Raw or zstd image with a manifest beside it."),
    target: str = typer.Argument(..., help="Block device or file to write."),
    serial: str = typer.Option(
        ..., "--serial", help="The device the target belongs to.", callback=bounded("--serial", limits.SERIAL)
    ),
    yes: bool = typer.Option(False, "--yes", help="Confirm: TARGET is overwritten."),
    manifest: Path | None = typer.Option(None, "--manifest"),
    actor: str = typer.Option("cli", "--actor", callback=bounded("--actor", limits.PARTY)),
) -> None:
    """Write IMAGE to TARGET with streaming SHA-256 and read-back; record it on the device."""
    if not yes:
        fail(f"refusing to overwrite {target} without --yes")
    with unit_of_work() as (ctx, session):
        image_target(session, serial)  # fail before writing anything: unknown device, or its state forbids it
    bars: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=rich_console()) as progress:  # fmt: skip

        def update(p: EngineProgress) -> None:
            if p.phase not in bars:
                bars[p.phase] = progress.add_task(p.phase, total=p.bytes_total or None)
            progress.update(bars[p.phase], completed=p.bytes_done)

        try:
            result = deploy_image(image, target, manifest=manifest, progress=update)
        except ImagingError as exc:
            fail(f"refused, nothing written: {exc}")
            return
    if not result.ok:
        where = f" at offset {result.failure_offset}" if result.failure_offset is not None else ""
        fail(f"deploy failed{where}: {result.failure_reason}; the device is not recorded as imaged")
    with session_scope(ctx.engine) as session:
        record_image(session, serial, result, actor=actor)
    console.print(
        f"deployed {result.image_name} {result.image_version} to {target} for {serial}: "
        f"{result.bytes_written} bytes, sha256 {result.image_sha256} (read back ok)",
        markup=False,
    )
