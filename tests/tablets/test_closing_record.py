"""The custody record of a tablet's erase keeps every medium's evidence (a Windows tablet may have several disks)."""

from __future__ import annotations

from factory.kernel.lifecycle.guards import REDISTRIBUTION_BLOCKERS
from factory.tablets.service import closing_record

NVME = {"method": "service-environment-disk-erase", "after": [{"check": "sanitize", "passed": True}]}
SATA = {"method": "service-environment-disk-erase", "after": [{"check": "ata sanitize", "passed": True}]}


def test_one_medium_is_recorded_as_it_is() -> None:
    assert closing_record([("/dev/nvme0n1", NVME)]) == NVME


def test_several_media_are_all_recorded_with_their_paths() -> None:
    record = closing_record([("/dev/nvme0n1", NVME), ("/dev/sda", SATA)])
    assert record["media"] == [{"path": "/dev/nvme0n1", **NVME}, {"path": "/dev/sda", **SATA}]
    assert record["after"] == SATA["after"]  # a reader of a one-medium record finds the keys it knows
    assert REDISTRIBUTION_BLOCKERS not in record


def test_a_blocker_on_any_medium_blocks_the_whole_tablet() -> None:
    locked = {**NVME, REDISTRIBUTION_BLOCKERS: ["firmware password set"]}
    record = closing_record([("/dev/nvme0n1", locked), ("/dev/sda", SATA)])
    assert record[REDISTRIBUTION_BLOCKERS] == ["firmware password set"]
