"""``factory vehicle``: build a new in-vehicle tablet for the vehicle it will be fitted in."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli.common import ActorOpt, SerialArg, console, one_line_errors, unit_of_work
from factory.cli.inputs import bounded
from factory.custody.service import build_for_vehicle, remove_build
from factory.kernel import limits

app = typer.Typer(help="In-vehicle tablets: which vehicle a new tablet is built for.", no_args_is_help=True)

FleetArg = Annotated[
    str, typer.Argument(help="The vehicle's fleet number.", callback=bounded("fleet number", limits.REFERENCE))
]


@app.command("build-for")
@one_line_errors
def build_for_cmd(serial: SerialArg, fleet_number: FleetArg, actor: ActorOpt = "cli") -> None:
    """Earmark vehicle tablet SERIAL for vehicle FLEET_NUMBER before its build.

    The line provisions it with that fleet number. Run again with another vehicle to change the
    earmark (until the tablet is allocated).
    """
    with unit_of_work() as (_ctx, session):
        build_for_vehicle(session, serial=serial, fleet_number=fleet_number, actor=actor)
    console.print(f"{serial.strip()} will be built for vehicle {fleet_number.strip()}", markup=False)


@app.command("unbuild")
@one_line_errors
def unbuild_cmd(serial: SerialArg) -> None:
    """Remove the earmark of vehicle tablet SERIAL (until it is allocated)."""
    with unit_of_work() as (_ctx, session):
        fleet = remove_build(session, serial=serial)
    console.print(f"{serial.strip()} is no longer earmarked for vehicle {fleet}", markup=False)
