"""``factory wipe``: erase and certify one target, with a Rich progress bar per pass."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from factory.cli.inputs import bounded
from factory.cli.params import fail, plain_errors, print_json, settings
from factory.kernel import limits

# The standalone wipe touches no database: it loads neither the database layers nor the PDF
# library unless asked (--pdf), nor Rich unless a terminal shows its progress bars, because its
# start-up counts against dd in benchmarks/wipe.py.
from factory.sanitisation import run_wipe, write_certificate
from imaging.plan import METHOD_CHOICES

if TYPE_CHECKING:
    from rich.progress import TaskID

    from imaging.engine import Progress as EngineProgress
    from imaging.result import EraseResult


def register(app: typer.Typer) -> None:
    @app.command("wipe")
    @plain_errors
    def wipe_cmd(
        target: str = typer.Argument(..., help="Block device or regular file to erase."),
        yes: bool = typer.Option(False, "--yes", help="Confirm: everything on TARGET is destroyed."),
        method: str = typer.Option(
            "auto",
            "--method",
            help=f"One of: {', '.join(METHOD_CHOICES)}. auto: firmware purge where the medium has one, else a "
            "random overwrite (key recorded) that a medium dropping writes cannot pass; zeros only if asked.",
        ),
        verify: str = typer.Option("sample", "--verify", help="full or sample (NIST representative sampling)."),
        level: str = typer.Option("clear", "--level", help="clear or purge (NIST SP 800-88)."),
        out: Path | None = typer.Option(None, "--out", help="Write the signed certificate (JSON) here."),
        pdf: Path | None = typer.Option(None, "--pdf", help="Also render the certificate as PDF."),
        operator: str | None = typer.Option(
            None, "--operator", help="Who sanitised (default: OS user).", callback=bounded("--operator", limits.PARTY)
        ),
        validator: str | None = typer.Option(
            None,
            "--validator",
            help="Who validated (default: operator).",
            callback=bounded("--validator", limits.PARTY),
        ),
        destination: str = typer.Option("internal_reuse", "--destination"),
        asset_tag: str | None = typer.Option(None, "--asset-tag", callback=bounded("--asset-tag", limits.ASSET_TAG)),
        as_json: bool = typer.Option(False, "--json", help="Print the certificate envelope as JSON."),
    ) -> None:
        """Erase TARGET by the strongest method it supports, verify, and certify it."""
        if not yes:
            fail(f"refusing to erase {target} without --yes")
        for path in (out, pdf):
            if path is not None and not path.parent.is_dir():
                fail(f"directory {path.parent} does not exist")
        config = settings()
        bars = _PassBars() if sys.stdout.isatty() else None  # bars are for someone watching
        try:
            result, envelope = run_wipe(
                config, target, method=method, verify=verify, level=level, operator=operator,
                validator=validator, destination=destination, asset_tag=asset_tag,
                progress=bars.update if bars is not None else None,
            )  # fmt: skip
        finally:
            if bars is not None:
                bars.close()
        if out is not None:
            write_certificate(envelope, out)
        if pdf is not None:
            from imaging.certificate_pdf import render_pdf

            render_pdf(envelope, pdf)
        if as_json:
            print_json(envelope)
            return
        _say_done(target, result, envelope)


def _say_done(target: str, result: EraseResult, envelope: dict[str, Any]) -> None:
    cert = envelope["certificate"]
    sys.stdout.write(
        f"erased and verified {target}: {result.method}, level {cert['sanitisation']['level_achieved']}, "
        f"{result.verification.mode if result.verification else '-'} verification; "
        f"certificate {cert['certificate_id']} digest {envelope['signature']['digest_sha256']}\n"
    )


class _PassBars:
    """One bar per (phase, pass): write pass 1/1, verify 1/1, firmware...

    The display starts with the first bar, so a target refused before any pass prints only its reason.
    """

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), transient=False,
        )  # fmt: skip
        self._tasks: dict[tuple[str, int], TaskID] = {}

    def update(self, p: EngineProgress) -> None:
        if not self._tasks:
            self.progress.start()
        key = (p.phase, p.pass_index)
        if key not in self._tasks:
            label = f"{p.phase} pass {p.pass_index}/{p.pass_total}"
            self._tasks[key] = self.progress.add_task(label, total=p.bytes_total or None)
        self.progress.update(self._tasks[key], completed=p.bytes_done)

    def close(self) -> None:
        if self._tasks:
            self.progress.stop()
