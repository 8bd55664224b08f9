"""The planner chooses from the medium's capabilities and refuses unreachable levels up front."""

from __future__ import annotations

import dataclasses

import pytest

from imaging.ata_info import AtaIdentity, AtaSecurity, HpaState
from imaging.errors import PlanError
from imaging.nvme_info import NvmeController
from imaging.plan import make_plan
from imaging.probe import Probe
from imaging.result import Level
from imaging.usage import Usage

NO_USE = Usage((), (), (), (), None)


def probe(**changes) -> Probe:
    base = Probe(
        path="/dev/x", kind="block", name="x", rdev=1, inode=(0, 0), size_bytes=1 << 30,
        logical_sector_size=512, physical_sector_size=4096, rotational=True, transport="sata",
        media_type="hdd", read_only=False, usage=NO_USE,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def security(**kw) -> AtaSecurity:
    values = dict(supported=True, enabled=False, locked=False, frozen=False, count_expired=False,
                  enhanced_erase_supported=True, erase_minutes=2, enhanced_erase_minutes=2,
                  master_revision=65534)  # fmt: skip
    values.update(kw)
    return AtaSecurity(**values)


def ata(sec: AtaSecurity | None, *, ssd: bool = False, sanitize: bool = False) -> AtaIdentity:
    return AtaIdentity("m", "s", "f", ssd, sec, sanitize, sanitize, sanitize, False)


def nvme(oacs=0x17, fna=0x4, sanicap=0x3) -> NvmeController:
    return NvmeController("m", "s", "f", oacs, fna, sanicap)


def test_loop_or_file_clears_by_overwrite_and_cannot_purge():
    p = probe(transport="loop", media_type="loop", rotational=False)
    plan = make_plan(p, Level.CLEAR)
    assert plan.method.name == "overwrite-random" and plan.level is Level.CLEAR
    with pytest.raises(PlanError, match="cannot achieve purge"):
        make_plan(p, Level.PURGE)


def test_zeros_overwrite_only_when_asked_for():
    p = probe(transport="loop", media_type="loop", rotational=False)
    assert make_plan(p, Level.CLEAR, "zeros").method.name == "overwrite-zeros"
    # A caller whose writer can only write zeros (the remote dd) says so; auto then overwrites with zeros.
    assert make_plan(p, Level.CLEAR, overwrite="zeros").method.name == "overwrite-zeros"


def test_purge_preferred_even_when_clear_requested():
    p = probe(transport="nvme", media_type="nvme", nvme=nvme())
    plan = make_plan(p, Level.CLEAR)
    assert plan.method.name == "nvme-sanitize-crypto" and plan.level is Level.PURGE


def test_nvme_order_falls_through_to_block_then_format():
    assert make_plan(probe(transport="nvme", media_type="nvme", nvme=nvme(sanicap=0x2)), Level.PURGE)\
        .method.name == "nvme-sanitize-block"  # fmt: skip
    # IEEE 2883: a Format is Purge only as a crypto erase applied to every namespace (FNA bits 1 and 2).
    assert make_plan(probe(transport="nvme", media_type="nvme", nvme=nvme(sanicap=0, fna=0x6)), Level.PURGE)\
        .method.name == "nvme-format-crypto"  # fmt: skip
    for fna in (0x4, 0x2, 0):
        with pytest.raises(PlanError, match="achieves clear only"):
            make_plan(probe(transport="nvme", media_type="nvme", nvme=nvme(sanicap=0, fna=fna)), Level.PURGE)
    clear = make_plan(probe(transport="nvme", media_type="nvme", nvme=nvme(sanicap=0, fna=0)), Level.CLEAR)
    assert (clear.method.name, clear.level) == ("nvme-format-erase", Level.CLEAR)


def test_ssd_overwrite_is_clear_only():
    p = probe(media_type="sata-ssd", rotational=False, ata=ata(None, ssd=True))
    with pytest.raises(PlanError, match="overwrite-zeros: achieves clear only"):
        make_plan(p, Level.PURGE, "zeros")
    plan = make_plan(p, Level.CLEAR, "random")
    assert plan.method.name == "overwrite-random"
    assert any("flash" in n for n in plan.notes)


def test_ata_secure_erase_level_depends_on_media():
    hdd = make_plan(probe(ata=ata(security())), Level.PURGE)
    assert hdd.method.name == "ata-secure-erase-enhanced" and hdd.level is Level.PURGE
    ssd = probe(media_type="sata-ssd", rotational=False, ata=ata(security(), ssd=True))
    with pytest.raises(PlanError, match="ata-secure-erase-enhanced: achieves clear only"):
        make_plan(ssd, Level.PURGE)
    assert make_plan(ssd, Level.CLEAR, "ata-secure-erase").level is Level.CLEAR


@pytest.mark.parametrize(
    ("sec", "reason"),
    [
        (security(frozen=True), "frozen"),
        (security(enabled=True), "already enabled"),
        (security(locked=True), "security-locked"),
        (security(count_expired=True), "count expired"),
    ],
)
def test_ata_secure_erase_refusals_name_the_reason(sec, reason):
    with pytest.raises(PlanError, match=reason):
        make_plan(probe(ata=ata(sec)), Level.CLEAR, "ata-secure-erase")


def test_explicit_firmware_choice_on_wrong_bus_is_unsupported_here():
    with pytest.raises(PlanError, match="nvme-sanitize-crypto: unsupported here: not an NVMe device"):
        make_plan(probe(ata=ata(security())), Level.PURGE, "nvme-sanitize")


def test_destroy_bad_method_and_passes_are_refused():
    with pytest.raises(PlanError, match="physical destruction"):
        make_plan(probe(), Level.DESTROY)
    with pytest.raises(PlanError, match="unknown method"):
        make_plan(probe(), Level.CLEAR, "dd")
    with pytest.raises(PlanError, match="passes"):
        make_plan(probe(), Level.CLEAR, "zeros", passes=0)
    with pytest.raises(PlanError, match="passes do not apply"):
        make_plan(probe(transport="nvme", media_type="nvme", nvme=nvme()), Level.PURGE, "nvme-sanitize", 3)


def test_hpa_noted_for_overwrite():
    plan = make_plan(probe(hpa=HpaState(1000, 2000, True)), Level.CLEAR)
    assert plan.method.name == "overwrite-random"
    assert any("HPA hides 1000 sectors" in n for n in plan.notes)
