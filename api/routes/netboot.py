"""Network boot: the iPXE scripts and GRUB configs per MAC, the service environment's files, and
self-enrolment.

These routes serve laptops on the bench network, which hold no API token: the scripts and files
are public there, and an enrolment is authorised by the one-time boot token the laptop's iPXE
script put on its kernel command line (checked by intake). Keep the controller's bench-network
address off other networks (docs/operations.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, PlainTextResponse

from api.deps import ContextDep, SessionDep, UnitOfWorkRoute
from api.errors import problem
from api.schemas.netboot import EnrolmentIn, EnrolmentPublic
from factory.intake.service import (
    DiskReport,
    EnrolmentReport,
    boot_script,
    chain_script,
    leased_addresses,
    next_action,
    served_file,
)
from factory.line.service import enrol_and_queue

router = APIRouter(tags=["netboot"], route_class=UnitOfWorkRoute)
PLAIN_TEXT = "text/plain; charset=utf-8"  # iPXE scripts and GRUB configs alike


def _base(request: Request) -> str:
    """The controller's URL as this laptop reached it: its scripts point back the same way."""
    return str(request.base_url).rstrip("/")


@router.get("/netboot/boot.ipxe", response_class=PlainTextResponse)
def chain(request: Request) -> PlainTextResponse:
    return PlainTextResponse(chain_script(_base(request)), media_type=PLAIN_TEXT)


@router.get("/netboot/ipxe/{mac}", response_class=PlainTextResponse)
def script(request: Request, session: SessionDep, mac: str = Path(max_length=17)) -> PlainTextResponse:
    decision = boot_script(session, mac, _base(request))
    return PlainTextResponse(decision.script, media_type=PLAIN_TEXT, headers={"X-Boot-Decision": decision.kind})


@router.get("/netboot/grub/{mac}", response_class=PlainTextResponse)
def grub_config(request: Request, session: SessionDep, mac: str = Path(max_length=17)) -> PlainTextResponse:
    """GRUB's config for this NIC (the Secure Boot chain), fetched for it by the bench's dnsmasq hook."""
    decision = boot_script(session, mac, _base(request), loader="grub")
    return PlainTextResponse(decision.script, media_type=PLAIN_TEXT, headers={"X-Boot-Decision": decision.kind})


@router.get("/netboot/next/{mac}", response_class=PlainTextResponse)
def next_step(session: SessionDep, mac: str = Path(max_length=17)) -> PlainTextResponse:
    """The service environment's agent polls this: ``reboot`` once the work is done, else ``wait``."""
    return PlainTextResponse(next_action(session, mac) + "\n")


@router.get("/netboot/files/{name}")
def files(ctx: ContextDep, name: str = Path(max_length=32)) -> FileResponse:
    return FileResponse(served_file(ctx.settings, name), media_type="application/octet-stream")


@router.post("/api/netboot/enrol", response_model=EnrolmentPublic)
def enrol(body: EnrolmentIn, request: Request, session: SessionDep, ctx: ContextDep) -> object:
    report = EnrolmentReport(
        boot_mac=body.boot_mac,
        serial=body.serial,
        host_key=body.host_key,
        address=request.client.host if request.client else "",
        vendor=body.vendor,
        model=body.model,
        macs=tuple(body.macs),
        disks=tuple(DiskReport(**d.model_dump() | {"capabilities": tuple(d.capabilities)}) for d in body.disks),
        ssh_port=body.ssh_port,
    )
    outcome, job = enrol_and_queue(session, body.token, report, leased=leased_addresses(ctx.settings, body.boot_mac))
    answer = EnrolmentPublic(
        outcome=outcome.outcome.value, serial=outcome.serial, mac=outcome.mac, matched_by=outcome.matched_by,
        job=job.id or 0, job_status=job.status, reason=outcome.reason or job.reason,
    )  # fmt: skip
    if outcome.refused:  # recorded (the enrolment and the held job commit), and refused
        return problem(409, "enrolment_refused", outcome.reason or "enrolment refused")
    return answer
