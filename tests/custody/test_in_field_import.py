"""Devices already in the field, imported with their officers so the first wave's one-for-one
exchange works: a dry run writes nothing; each refused row is named with its reason; an imported
device's first entry is ``enrol_in_field`` (signed, chained, tainted at once) with an ``issued``
allocation; a new device is then issued at the counter, delivered by courier or swapped in exchange
for it; it comes back and must be sanitised and certified before any reuse; one imported without
its media has them recorded from the disks its network boot finds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from harness.courier_data import courier_allocations, packed, shielded_officer, wave_with_room
from harness.custody_data import accept, allocated, entries, entry_count, ledger_ok, pooled, ready, signature
from harness.domain import move, receive, sanitise, state_of, verifier
from harness.netboot_site import register_netboot_bench, report
from sqlmodel import select

from factory.custody.models import Allocation, AllocationChannel
from factory.custody.service import allocate, deliver, hand_over, import_csv, issue_device, walk_in_swap
from factory.intake.returned_media import awaits_media
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput, InvalidTransition
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.device import Device, StorageMedium

OFFICERS = "staff_number,name,team,at_needs\nPC5001,Alice Jones,Response A,\nPC5002,Bob Smith,Response B,\n"
HEADER = "serial,asset_tag,kind,make,model,staff_number,media\n"
DEVICES = (
    HEADER
    + "OLD-L1,AT-5001,laptop,Dell,Latitude 5420,PC5001,nvme:NV-OLD-1:512G:PM9A1\n"
    + "OLD-T2,,tablet,Samsung,Galaxy Tab S8,PC5002,\n"  # no media recorded: they are recorded when it comes back
)
MAC, OTHER_MAC = "52:54:00:12:34:77", "52:54:00:12:34:78"


def _import(ctx, kind: str, text: str, *, dry_run: bool = False):
    with session_scope(ctx.engine) as s:
        return import_csv(s, kind=kind, text=text, dry_run=dry_run, actor="tech.one")


def _in_field(ctx, devices: str = DEVICES) -> None:
    assert _import(ctx, "officers", OFFICERS).kept
    assert _import(ctx, "devices", devices).kept


def _allocations(ctx, serial: str) -> list[tuple[str, str]]:
    with session_scope(ctx.engine) as s:
        device = s.exec(select(Device).where(Device.serial == serial)).one()
        rows = s.exec(select(Allocation).where(Allocation.device_id == device.id).order_by(Allocation.id)).all()
        return [(a.channel, a.status) for a in rows]


def _unrecorded(ctx, serial: str) -> bool:
    with session_scope(ctx.engine) as s:
        return s.exec(select(Device).where(Device.serial == serial)).first() is None


def test_a_dry_run_checks_every_row_and_writes_nothing(ctx) -> None:
    assert _import(ctx, "officers", OFFICERS).kept
    before = entry_count(ctx)
    report = _import(ctx, "devices", DEVICES, dry_run=True)
    assert [(r.line, r.key, r.accepted) for r in report.rows] == [(2, "OLD-L1", True), (3, "OLD-T2", True)]
    assert not report.kept and entry_count(ctx) == before
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Device)).all() == [] and s.exec(select(Allocation)).all() == []


def test_an_imported_device_is_with_its_officer_and_holds_their_data(ctx) -> None:
    _in_field(ctx)
    (first,) = entries(ctx, "OLD-L1")
    assert (first.event, first.from_state, first.to_state) == ("enrol_in_field", None, "issued")
    assert (first.actor, first.to_custodian, first.location) == ("tech.one", "officer:PC5001", "officer:PC5001")
    evidence = json.loads(first.evidence)
    assert evidence["officer"] == "PC5001" and evidence["imported_by"] == "tech.one"
    assert evidence["import"] == {"file_sha256": hashlib.sha256(DEVICES.encode()).hexdigest(), "line": 2}
    assert evidence["media"] == ["NV-OLD-1"] and "never issued by the factory" in evidence["recorded_as"]
    assert json.loads(entries(ctx, "OLD-T2")[0].evidence)["media_recorded"] == "when it comes back"
    with session_scope(ctx.engine) as s:
        device = s.exec(select(Device).where(Device.serial == "OLD-L1")).one()
        assert (device.kind, device.asset_tag, device.make, device.model) == (
            "laptop",
            "AT-5001",
            "Dell",
            "Latitude 5420",
        )
        assert device.user_data_since_seq == first.seq and device.erase_round_seq is None
        (medium,) = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
        assert (medium.serial, medium.media_type, medium.capacity_bytes, medium.model) == (
            "NV-OLD-1", "nvme", 512 * 10**9, "PM9A1"
        )  # fmt: skip
    assert _allocations(ctx, "OLD-L1") == [("in_field", "issued")]
    assert ledger_ok(ctx)


def test_each_refused_row_is_named_and_nothing_is_imported(ctx) -> None:
    assert _import(ctx, "officers", OFFICERS).kept
    receive(ctx, "KNOWN-1")
    rows = [
        "R-1,,laptop,Dell,X,PC9999,",  # no such officer
        "R-2,,phone,Dell,X,PC5001,",  # not a device kind
        "R-3,,vehicle-tablet,Panasonic,FZ-G2,PC5001,",  # fitted in a vehicle, not held by an officer
        "R-4,,laptop,Dell,X,PC5001,floppy:F-1",  # not a media type
        "R-5,,laptop,Dell,X,PC5001,nvme:D-1;nvme:D-1",  # the same medium twice
        "KNOWN-1,,laptop,Dell,X,PC5001,",  # already recorded
        "R-6,,laptop,Dell,X,PC5001,",
        "R-6,,laptop,Dell,X,PC5001,",  # twice in the file
        ",,laptop,Dell,X,PC5001,",  # no serial
    ]
    before = entry_count(ctx)
    report = _import(ctx, "devices", HEADER + "\n".join(rows) + "\n")
    assert [r.accepted for r in report.rows] == [False] * 6 + [True, False, False]
    reasons = [r.reason for r in report.rows]
    for n, expected in enumerate(
        ["no officer with staff number PC9999", "kind 'phone' is not one of", "vehicle tablet",
         "media type 'floppy'", "the same media serial is listed twice", "already known", "", "already known",
         "serial must not be empty"]
    ):  # fmt: skip
        assert expected in reasons[n], (n, reasons[n])
    assert not report.kept and report.refused == 8 and entry_count(ctx) == before
    assert state_of(ctx, "KNOWN-1") == "received"
    with session_scope(ctx.engine) as s:
        assert s.exec(select(Allocation)).all() == []


def test_first_wave_counter_exchange_then_the_old_one_is_certified_before_reuse(ctx) -> None:
    _in_field(ctx)
    allocation_id = allocated(ctx, "NEW-L1", "PC5001")
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept("Alice Jones"), actor="tech.one",
                     verifier=verifier(ctx), old_serial="OLD-L1")  # fmt: skip
    assert state_of(ctx, "NEW-L1") == "issued" and state_of(ctx, "OLD-L1") == "returned"
    assert _allocations(ctx, "OLD-L1") == [("in_field", "returned")]
    back = entries(ctx, "OLD-L1")[-1]
    assert (back.event, back.to_custodian, json.loads(back.evidence)["exchanged_for"]) == (
        "return",
        "factory",
        "NEW-L1",
    )
    old_id = back.device_id
    with pytest.raises(InvalidTransition):  # a returned device is not rebuilt without an erase
        move(ctx, old_id, Event.START_PROVISION)
    (certificate,) = sanitise(ctx, old_id)
    move(ctx, old_id, Event.START_PROVISION)  # the certificate guard passes now
    assert state_of(ctx, "OLD-L1") == "provisioning" and certificate
    assert ledger_ok(ctx)


def test_first_wave_courier_delivery_collects_the_imported_device(ctx) -> None:
    wave_with_room(ctx, "W1", in_person=0)
    staff = shielded_officer(ctx, "PC6001")
    assert _import(ctx, "devices", HEADER + "OLD-T9,,tablet,Samsung,Galaxy Tab S8,PC6001,emmc:EM-9\n").kept
    reference = packed(ctx, courier_allocations(ctx, ["NEW-T9"], staff, "W1"), ["SEAL-9"])
    keys = verifier(ctx)
    with session_scope(ctx.engine) as s:
        hand_over(s, reference=reference, scanned_serials=["NEW-T9"], scanned_seals=["SEAL-9"], actor="courier.one",
                  verifier=keys)  # fmt: skip
        deliver(s, reference=reference, recipient_name="Jane Smith", signature=signature("pod"),
                scanned_seals=["SEAL-9"], old_serials=["OLD-T9"], actor="courier.one")  # fmt: skip
    assert state_of(ctx, "NEW-T9") == "issued" and state_of(ctx, "OLD-T9") == "returned"
    assert entries(ctx, "OLD-T9")[-1].to_custodian == "courier:SecureParcel Ltd"
    assert _allocations(ctx, "OLD-T9") == [("in_field", "returned")]
    assert ledger_ok(ctx)


def test_walk_in_swap_takes_the_imported_device_back(ctx) -> None:
    _in_field(ctx)
    pooled(ctx, "SPARE-1")
    with session_scope(ctx.engine) as s:
        walk_in_swap(s, staff_number="PC5001", faulty_serial="OLD-L1", spare_serial="SPARE-1", fault="no power",
                     acceptance=accept("Alice Jones"), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
    assert state_of(ctx, "OLD-L1") == "returned" and _allocations(ctx, "OLD-L1") == [("in_field", "returned")]


def _boot_token(client, mac: str = MAC) -> str:  # type: ignore[no-untyped-def]
    r = client.get(f"/netboot/ipxe/{mac.replace(':', '-')}")
    assert r.status_code == 200, r.text
    return r.text.split("df.token=")[1].split()[0]


def test_media_are_recorded_when_a_device_imported_without_them_comes_back(ctx, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    register_netboot_bench(ctx, tmp_path, slots=2)
    _in_field(ctx, HEADER + "OLD-L3,,laptop,Dell,Latitude 5420,PC5001,\n")
    receive(ctx, "BARE-1", [])  # received with no media: still refused, as before
    disks = [("nvme", "NV-L3"), ("sata", "SA-L3")]
    bare = report(OTHER_MAC, "BARE-1", disks, token=_boot_token(client, OTHER_MAC))
    refused = client.post("/api/netboot/enrol", json=bare)
    assert refused.status_code == 409 and "no storage media recorded" in refused.json()["reason"]
    allocation_id = allocated(ctx, "NEW-L3", "PC5001")
    with session_scope(ctx.engine) as s:
        issue_device(s, allocation_id=allocation_id, acceptance=accept("Alice Jones"), actor="tech.one",
                     verifier=verifier(ctx), old_serial="OLD-L3")  # fmt: skip
    r = client.post("/api/netboot/enrol", json=report(MAC, "OLD-L3", disks, token=_boot_token(client)))
    assert r.status_code == 200 and r.json()["outcome"] == "accepted", r.text
    recorded = entries(ctx, "OLD-L3")[-1]
    assert (recorded.event, recorded.from_state, recorded.to_state) == ("record_media", "returned", "returned")
    assert json.loads(recorded.evidence)["media"] == ["NV-L3", "SA-L3"]
    with session_scope(ctx.engine) as s:
        device = s.exec(select(Device).where(Device.serial == "OLD-L3")).one()
        media = s.exec(select(StorageMedium).where(StorageMedium.device_id == device.id)).all()
        assert sorted((m.serial, m.media_type) for m in media) == [("NV-L3", "nvme"), ("SA-L3", "sata-ssd")]
    with session_scope(ctx.engine) as s:  # recorded now: its next boot is checked against them like any device's
        assert not awaits_media(s, s.exec(select(Device).where(Device.serial == "OLD-L3")).one())
    assert len(sanitise(ctx, recorded.device_id)) == 2  # one certificate per disk found
    assert ledger_ok(ctx)


def test_the_import_command_reports_each_row_and_imports_only_a_clean_file(ctx, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from factory.cli.main import app

    officers, devices, bad = tmp_path / "officers.csv", tmp_path / "devices.csv", tmp_path / "bad.csv"
    officers.write_text(OFFICERS)
    devices.write_text("\ufeff" + DEVICES, encoding="utf-8")  # a spreadsheet's CSV UTF-8 starts with a BOM
    bad.write_text(HEADER + "OLD-9,,laptop,Dell,X,PC9999,\n")
    assert CliRunner().invoke(app, ["import", "officers", str(officers)]).exit_code == 0
    dry = CliRunner().invoke(app, ["import", "devices", str(devices), "--dry-run", "--actor", "tech.two"])
    assert dry.exit_code == 0 and "line 2 OLD-L1: ok" in dry.stdout and "dry run: nothing written" in dry.stdout
    assert _unrecorded(ctx, "OLD-L1")
    refused = CliRunner().invoke(app, ["import", "devices", str(bad)])
    assert refused.exit_code == 1 and "line 2 OLD-9: refused: no officer with staff number PC9999" in refused.stdout
    assert refused.stderr.strip() == "error: 1 of 1 row(s) refused: nothing was imported"
    done = CliRunner().invoke(app, ["import", "devices", str(devices), "--actor", "tech.two", "--json"])
    assert done.exit_code == 0 and json.loads(done.stdout)["kept"] is True
    assert state_of(ctx, "OLD-L1") == "issued" and entries(ctx, "OLD-L1")[0].actor == "tech.two"
    wrong = CliRunner().invoke(app, ["import", "radios", str(devices)])
    assert wrong.exit_code == 1 and wrong.stderr.startswith(
        "error: 'radios' is not one of: officers, vehicles, devices"
    )


def test_a_technician_records_the_media_of_a_device_imported_without_them(ctx) -> None:
    from typer.testing import CliRunner

    from factory.cli.main import app

    _in_field(ctx)  # OLD-T2 (tablet) has no media recorded
    pooled(ctx, "SPARE-T2", kind="tablet")
    with session_scope(ctx.engine) as s:
        walk_in_swap(s, staff_number="PC5002", faulty_serial="OLD-T2", spare_serial="SPARE-T2", fault="cracked",
                     acceptance=accept("Bob Smith"), actor="tech.one", verifier=verifier(ctx))  # fmt: skip
    receive(ctx, "LOOSE-1", ["EM-T2"])  # the same medium serial recorded elsewhere: kept as a warning
    record = ["device", "record-media", "OLD-T2", "--media", "emmc:EM-T2:128G", "--actor", "tech.two"]
    done = CliRunner().invoke(app, record)
    assert done.exit_code == 0 and "OLD-T2: 1 medium(s) recorded" in done.stdout, done.output
    entry = entries(ctx, "OLD-T2")[-1]
    assert (entry.event, entry.to_state, entry.actor) == ("record_media", "returned", "tech.two")
    assert json.loads(entry.evidence) == {
        "media": ["EM-T2"], "found_by": "technician", "media_also_recorded_on": {"EM-T2": ["LOOSE-1"]}
    }  # fmt: skip
    again = CliRunner().invoke(app, record)  # recorded now: checked like any device's from here on
    assert again.exit_code == 1 and "OLD-T2 is not awaiting its media" in again.stderr
    other = CliRunner().invoke(app, ["device", "record-media", "OLD-L1", "--media", "nvme:X-1"])
    assert other.exit_code == 1 and "OLD-L1 is not awaiting its media" in other.stderr
    assert len(sanitise(ctx, entry.device_id)) == 1
    assert ledger_ok(ctx)


def test_the_in_field_channel_is_never_allocated_by_hand(ctx) -> None:
    _in_field(ctx)
    ready(ctx, "NEW-X")
    with pytest.raises(InvalidInput, match="recorded only by the import"), session_scope(ctx.engine) as s:
        allocate(s, serial="NEW-X", actor="tech.one", staff_number="PC5001", channel=AllocationChannel.IN_FIELD)
    assert state_of(ctx, "NEW-X") == "ready"
