"""A witnessed destruction yields a signed certificate per medium (IEEE 2883 Destruct, particle size
or machine, witness, photo digest), verifiable like any certificate and shown in the audit; a
request that names no technique or size is still recorded, without a certificate, and says so."""

from __future__ import annotations

import json

import pytest
from harness.domain import move, receive
from sqlmodel import select

from factory.audit.views import device_history
from factory.custody.documents import Upload, sha256_hex
from factory.custody.service import request_destruction, witness_destruction
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.kernel.lifecycle.states import Event
from factory.sanitisation.models import DestructionCertificate
from imaging.certificate import verify_certificate
from imaging.certificate_destruction import destruct_technique, machine_named, particle_size_mm

PHOTO = b"\xff\xd8\xff\xe0 a photo of the particles \xff\xd9"


def destroy(ctx: AppContext, serial: str, method: str) -> None:
    device_id = receive(ctx, serial, (f"{serial}-A", f"{serial}-B"))
    move(ctx, device_id, Event.START_SANITISE)
    move(ctx, device_id, Event.FAIL)
    with session_scope(ctx.engine) as s:
        record = request_destruction(
            s, serial=serial, method=method, reason="erase failed: I/O errors",
            evidence=Upload(PHOTO, "image/jpeg", "particles.jpg"), actor="tech.one",
        ).record  # fmt: skip
    with session_scope(ctx.engine) as s:
        witness_destruction(s, record_id=record.id or 0, witness="tech.two", settings=ctx.settings)


def test_each_destroyed_medium_gets_a_verifiable_certificate_shown_in_audit(ctx: AppContext) -> None:
    destroy(ctx, "DEST-1", "disintegrator, 2 mm screen (Intimus 1000)")
    public = ctx.site_keys.public_key()
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(DestructionCertificate).where(DestructionCertificate.device_serial == "DEST-1")).all()
        history = device_history(s, "DEST-1", public).as_dict()
    assert sorted(r.medium_serial for r in rows) == ["DEST-1-A", "DEST-1-B"]
    for row in rows:
        doc = verify_certificate(json.loads(row.envelope), public).certificate
        assert (doc["schema_version"], doc["certificate_type"]) == (2, "destruction")
        destruction = doc["destruction"]
        assert (destruction["technique"], destruction["particle_size_mm"], destruction["machine"]) == (
            "disintegrate",
            2.0,
            "Intimus 1000",
        )
        assert destruction["photo_sha256"] == [sha256_hex(PHOTO)]
        assert doc["personnel"]["witnessed_by"]["account"] == "tech.two"
        assert doc["media"]["serial_number"] == row.medium_serial
    assert history["device"]["state"] == "destroyed"
    assert [d["verified"] for d in history["destruction_certificates"]] == [True, True]
    assert history["ok"]


def test_a_destruction_without_technique_or_size_is_recorded_without_a_certificate(ctx: AppContext) -> None:
    destroy(ctx, "DEST-2", "hammer")
    with session_scope(ctx.engine) as s:
        assert (
            s.exec(select(DestructionCertificate).where(DestructionCertificate.device_serial == "DEST-2")).all() == []
        )
        history = device_history(s, "DEST-2", ctx.site_keys.public_key()).as_dict()
    assert history["device"]["state"] == "destroyed" and history["destruction_certificates"] == []


@pytest.mark.parametrize(
    ("method", "technique", "size", "machine"),
    [
        ("incinerated at 1000 C (Addfield MINI)", "incinerate", None, "Addfield MINI"),
        ("shredded to 6 mm", "shred", 6.0, None),
        ("degaussed (Verity SV91M)", "degauss", None, "Verity SV91M"),
        ("hammer", None, None, None),
    ],
)
def test_the_request_text_names_technique_size_and_machine(method, technique, size, machine) -> None:
    assert (destruct_technique(method), particle_size_mm(method), machine_named(method)) == (technique, size, machine)
