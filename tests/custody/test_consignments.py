"""Packing a courier consignment: the per-wave courier cap (every courier allocation in a wave),
the officers' shielding record, seals scanned at packing, and the manifest with barcodes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from harness.courier_data import COURIER, courier_allocations, packed, shielded_officer, wave_with_room
from harness.custody_data import allocated, entry_count, officer
from harness.requirements import require_tool
from pypdf import PdfReader
from sqlmodel import select

from factory.custody.models import Allocation, Officer
from factory.custody.service import create_consignment, create_wave
from factory.custody.views import cap_headroom, consignable_allocations, get_consignment, get_document, sha256_hex
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Conflict, GuardRefused, InvalidInput


def _create(ctx, ids: list[int], seals=("S-9",), shielding=None) -> str:
    with session_scope(ctx.engine) as s:
        return create_consignment(s, allocation_ids=ids, courier="X", recipient_name="Y", recipient_address="Z",
                                  seal_numbers=list(seals), actor="dispatch.one", site="test-site",
                                  shielding=shielding).record.reference  # fmt: skip


def test_the_manifest_carries_barcodes_for_the_reference_the_seals_and_every_device(ctx, tmp_path: Path) -> None:
    wave_with_room(ctx, "WM", in_person=0)
    pc = shielded_officer(ctx, "PC1001")
    ref = packed(ctx, courier_allocations(ctx, ["C-0", "C-1"], pc, "WM"), seals=["SEAL-77", "BAG-3"])
    with session_scope(ctx.engine) as s:
        manifest = get_document(s, get_consignment(s, ref).manifest_document_id or 0)
        assert sha256_hex(manifest.content) == manifest.sha256
        pdf = PdfReader(io.BytesIO(manifest.content))
    text = "".join(p.extract_text() for p in pdf.pages)
    for needle in (ref, "SecureParcel Ltd", "SEAL-77", "BAG-3", "C-0", "C-1", "PC1001", "1 High Street"):
        assert needle in text
    # What a scanner reads off the printed page: the reference, each seal and each serial.
    assert _barcodes(manifest.content, tmp_path) == {ref, "SEAL-77", "BAG-3", "C-0", "C-1"}


def _barcodes(pdf: bytes, tmp_path: Path) -> set[str]:
    """The Code 128 barcodes zbarimg decodes from page 1 rendered at 200 dpi (poppler-utils, zbar-tools)."""
    pdftoppm, zbarimg = require_tool("pdftoppm"), require_tool("zbarimg")
    (tmp_path / "m.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-r", "200", "-png", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "m.pdf"),
                    str(tmp_path / "m")], check=True)  # fmt: skip
    out = subprocess.run([zbarimg, "-q", "--raw", str(tmp_path / "m.png")], capture_output=True, text=True)
    return set(out.stdout.split())


def test_a_courier_allocation_belongs_to_a_wave(ctx) -> None:
    pc = shielded_officer(ctx, "PC1002")
    with pytest.raises(InvalidInput, match="belongs to a refresh wave"):
        allocated(ctx, "NW-1", pc, channel=COURIER)


def test_the_cap_holds_for_an_allocation_without_a_wave(ctx) -> None:
    """Allocations made before every courier allocation had a wave no longer pass the cap unseen."""
    wave_with_room(ctx, "WL", in_person=0)
    pc = shielded_officer(ctx, "PC1003")
    [laptop] = courier_allocations(ctx, ["NW-2"], pc, "WL", kind="laptop")
    with session_scope(ctx.engine) as s:  # as stored before the rule: no wave
        row = s.exec(select(Allocation).where(Allocation.id == laptop)).one()
        row.wave_id = None
        s.add(row)
    before = entry_count(ctx)
    with pytest.raises(GuardRefused, match="belongs to no refresh wave"):
        _create(ctx, [laptop])
    assert entry_count(ctx) == before


def test_courier_cap_refusal_states_the_numbers_and_the_page_shows_the_headroom(ctx) -> None:
    wave_with_room(ctx, "W1", in_person=3)
    pc = shielded_officer(ctx, "PC1004")
    [first] = courier_allocations(ctx, ["CAP-1"], pc, "W1", kind="laptop")
    with session_scope(ctx.engine) as s:
        [w1] = cap_headroom(s, [first])
        assert (w1.wave, w1.in_person, w1.by_courier, w1.headroom, w1.adding, w1.allowed) == ("W1", 3, 0, 1, 1, True)
    _create(ctx, [first])  # 1 of 4 = 25%: allowed
    [second] = courier_allocations(ctx, ["CAP-2"], pc, "W1", kind="laptop")
    with session_scope(ctx.engine) as s:
        [w1] = cap_headroom(s, [second])
        assert (w1.headroom, w1.adding, w1.allowed, w1.left_after) == (0, 1, False, -1)
    before = entry_count(ctx)
    with pytest.raises(GuardRefused) as refused:
        _create(ctx, [second], seals=["S-10"])
    assert "wave W1: 2 of 5 laptops would be issued by courier (40.0%), above the 25% cap" in refused.value.reason
    assert "3 in person, 1 already by courier, 1 in this consignment" in refused.value.reason
    assert entry_count(ctx) == before


def test_a_wave_cap_is_at_most_a_quarter(ctx) -> None:
    with pytest.raises(InvalidInput, match="from 0 to 25"), session_scope(ctx.engine) as s:
        create_wave(s, name="W-BIG", cohort="", target_devices=1, courier_cap_percent=40)


def test_only_officers_formally_shielding_go_by_courier_and_their_reference_is_recorded(ctx) -> None:
    wave_with_room(ctx, "WS", in_person=0)
    pc = officer(ctx, "PC1005")
    ids = courier_allocations(ctx, ["SH-1"], pc, "WS")
    with session_scope(ctx.engine) as s:
        [row] = consignable_allocations(s)
        assert (row.serial, row.staff_number, row.shielding_reference, row.wave) == ("SH-1", "PC1005", None, "WS")
    with pytest.raises(GuardRefused, match="PC1005 is not recorded as formally shielding"):
        _create(ctx, ids)
    _create(ctx, ids, shielding={"PC1005": "OH-2026-0042"})
    with session_scope(ctx.engine) as s:
        o = s.exec(select(Officer).where(Officer.staff_number == "PC1005")).one()
        assert (o.shielding_reference, o.shielding_recorded_by) == ("OH-2026-0042", "dispatch.one")
        assert consignable_allocations(s) == []


def test_seals_at_packing_are_each_scanned_once_and_not_on_another_consignment(ctx) -> None:
    wave_with_room(ctx, "WP", in_person=0)
    pc = shielded_officer(ctx, "PC1006")
    a, b, c = courier_allocations(ctx, ["SE-1", "SE-2", "SE-3"], pc, "WP")
    with pytest.raises(InvalidInput, match="seal number of every bag"):
        _create(ctx, [a], seals=[" "])
    with pytest.raises(InvalidInput, match="seal SEAL-5 is scanned twice"):
        _create(ctx, [a], seals=["SEAL-5", "SEAL-6", "SEAL-5"])
    ref = _create(ctx, [a], seals=["SEAL-5"])
    with pytest.raises(Conflict, match=f"seal SEAL-5 is already on consignment {ref}"):
        _create(ctx, [b], seals=["SEAL-5"])
    with pytest.raises(Conflict, match="already in an open consignment"):
        _create(ctx, [a, c], seals=["SEAL-8"])
