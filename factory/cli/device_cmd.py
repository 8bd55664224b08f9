"""``factory device``: book devices in and look at them."""

from __future__ import annotations

from typing import Any

import typer

# Only the light half of factory/cli/common.py here: 'device show' reads without SQLAlchemy or Rich
# (for --json); 'receive' imports the session helpers when it runs.
from factory.cli.inputs import bounded
from factory.cli.params import ActorOpt, JsonFlag, SerialArg, one_line_errors, plain_errors, print_json, settings
from factory.kernel import limits

app = typer.Typer(help="Devices in custody.", no_args_is_help=True)


@app.command("receive")
@one_line_errors
def receive_cmd(
    serial: SerialArg,
    kind: str = typer.Option(..., "--kind", help="laptop, tablet, vehicle-tablet or desktop."),
    make: str = typer.Option("", "--make", callback=bounded("--make", limits.MAKE)),
    model: str = typer.Option("", "--model", callback=bounded("--model", limits.MODEL)),
    asset_tag: str | None = typer.Option(None, "--asset-tag", callback=bounded("--asset-tag", limits.ASSET_TAG)),
    from_custodian: str = typer.Option(
        "", "--from", help="Who handed it over, e.g. officer:12345.", callback=bounded("--from", limits.PARTY)
    ),
    media: list[str] = typer.Option(
        [],
        "--media",
        help="TYPE:SERIAL[:CAPACITY[:MODEL]], repeatable.",
        callback=bounded("--media", limits.MEDIA_SPEC, count=limits.MEDIA_PER_DEVICE),
    ),
    new_stock: bool = typer.Option(False, "--new-stock", help="Never held user data (from the supplier)."),
    location: str = typer.Option("", "--location", callback=bounded("--location", limits.PARTY)),
    actor: ActorOpt = "cli",
) -> None:
    """Book a device into the factory's custody."""
    from factory.cli.common import console, unit_of_work
    from factory.intake.service import parse_media_spec, receive_device  # heavy: kept out of 'device show'

    specs = [parse_media_spec(m) for m in media]
    with unit_of_work() as (_ctx, session):
        device = receive_device(
            session, serial=serial, kind=kind, make=make, model=model, asset_tag=asset_tag,
            from_custodian=from_custodian, media=specs, new_stock=new_stock, location=location, actor=actor,
        )  # fmt: skip
        state = device.state
    console.print(f"received {serial} ({kind}) -> {state}", markup=False)


@app.command("record-media")
@one_line_errors
def record_media_cmd(
    serial: SerialArg,
    media: list[str] = typer.Option(
        ...,
        "--media",
        help="TYPE:SERIAL[:CAPACITY[:MODEL]] of each medium found, repeatable.",
        callback=bounded("--media", limits.MEDIA_SPEC, count=limits.MEDIA_PER_DEVICE),
    ),
    actor: ActorOpt = "cli",
) -> None:
    """Record the media found in a device imported as already in the field without them, now back."""
    from factory.cli.common import console, unit_of_work
    from factory.intake.service import parse_media_spec, record_returned_media

    specs = [parse_media_spec(m) for m in media]
    with unit_of_work() as (_ctx, session):
        seq = record_returned_media(session, serial=serial, media=specs, actor=actor)
    console.print(f"{serial}: {len(specs)} medium(s) recorded (ledger entry {seq})", markup=False)


@app.command("show")
@plain_errors
def show_cmd(serial: SerialArg, as_json: JsonFlag = False) -> None:
    """Show a device: state, media, certificates and its full custody history."""
    from factory.intake.views import device_view_rows
    from factory.kernel.db.readonly import read_only

    # Fixed read-only SELECTs straight through the driver: the same view as intake.views.device_view.
    with read_only(settings().database_url) as reader:
        view = device_view_rows(reader, serial)
    if as_json:
        print_json(view)
    else:
        _print_device(view)


def _print_device(view: dict[str, Any]) -> None:
    from rich.console import Console  # text output only: --json never loads Rich
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{view['serial']}[/] {view['kind']} {view['make']} {view['model']} "
        f"asset={view['asset_tag'] or '-'} state=[bold]{view['state']}[/] custodian={view['custodian']}"
    )
    media = Table("media serial", "type", "capacity", "model", title="Storage media")
    for m in view["media"]:
        media.add_row(m["serial"], m["media_type"], str(m["capacity_bytes"]), m["model"])
    console.print(media)
    history = Table("seq", "when (UTC)", "event", "from", "to", "actor", "custodian", "hash", title="Custody")
    for e in view["history"]:
        history.add_row(
            str(e["seq"]), e["occurred_at"], e["event"], e["from_state"] or "-", e["to_state"], e["actor"],
            e["to_custodian"], e["entry_hash"][:12],
        )  # fmt: skip
    console.print(history)


@app.command("endpoint")
@one_line_errors
def endpoint_cmd(
    serial: SerialArg,
    address: str = typer.Option(
        ..., "--address", help="Address in the service environment.", callback=bounded("--address", limits.HOST)
    ),
    host_key: str = typer.Option(..., "--host-key", help="'ssh-ed25519 AAAA...' as first offered; pinned."),
    port: int = typer.Option(22, "--port", min=limits.PORT_MIN, max=limits.PORT_MAX),
    user: str = typer.Option("root", "--user", callback=bounded("--user", limits.NAME)),
    mac: str | None = typer.Option(None, "--mac", help="MAC of the NIC cabled to a bench switch (identifies it)."),
    actor: ActorOpt = "cli",
) -> None:
    """Record the device's service-environment SSH endpoint; the host key is pinned once."""
    from factory.cli.common import console, unit_of_work
    from factory.intake.service import register_endpoint

    with unit_of_work() as (_ctx, session):
        ep = register_endpoint(
            session, serial, address=address, port=port, username=user, host_key=host_key, actor=actor, mac=mac
        )
        fingerprint, recorded_mac = ep.host_key_fingerprint, ep.mac
    where = f", MAC {recorded_mac}" if recorded_mac else ""
    console.print(f"{serial}: {user}@{address}:{port}{where}, host key pinned {fingerprint}", markup=False)
