"""A host key that changes during a boot: the key a service environment posted at enrolment is
pinned for that boot, and a laptop (or anything else at its address) answering with another key
is refused before a byte is sent, so the job's erase stops with the reason. A real sshd plays the
laptop after enrolment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.domain import receive
from harness.netboot_site import new_host_key, register_netboot_bench
from harness.sshd import SshdTarget, one_sshd_target

from factory.intake.boot_tokens import issue_boot_token
from factory.intake.service import DiskReport, EnrolmentReport
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope
from factory.line.netboot_jobs import enrol_and_queue
from factory.line.remote_media import RemoteEraseSettings, RemoteMediaError, connect_for_job

pytestmark = [pytest.mark.root]

MAC = "52:54:00:0e:00:01"


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdTarget]:
    yield from one_sshd_target(tmp_path_factory.mktemp("nb-sshd"), prefix="df-nb")


def enrol(ctx: AppContext, laptop: SshdTarget, host_key: str) -> int:
    """The laptop's enrolment with ``host_key``, at the sshd's address; the queued job's id."""
    with session_scope(ctx.engine) as s:
        token = issue_boot_token(s, MAC)
        report = EnrolmentReport(
            boot_mac=MAC, serial="LT-KEY-1", host_key=host_key, address="127.0.0.1", ssh_port=laptop.port,
            macs=(MAC,), disks=(DiskReport("sda", "SD-KEY-1", transport="sata"),),
        )  # fmt: skip
        _outcome, job = enrol_and_queue(s, token, report)
        return job.id or 0


def test_a_host_key_that_changes_mid_boot_stops_the_job_before_anything_is_sent(
    ctx: AppContext, laptop: SshdTarget, tmp_path: Path
) -> None:
    register_netboot_bench(ctx, tmp_path)
    receive(ctx, "LT-KEY-1", ["SD-KEY-1"])
    job_id = enrol(ctx, laptop, new_host_key())  # the key this boot posted, not the one now answering
    settings = RemoteEraseSettings(laptop.client_key, connect_timeout=10.0)
    with pytest.raises(RemoteMediaError, match="host key mismatch") as refused:
        connect_for_job(ctx.engine, job_id, settings)
    assert "nothing was erased" in refused.value.reason


def test_the_key_posted_at_enrolment_is_the_one_trusted_for_that_boot(
    ctx: AppContext, laptop: SshdTarget, tmp_path: Path
) -> None:
    register_netboot_bench(ctx, tmp_path)
    receive(ctx, "LT-KEY-1", ["SD-KEY-1"])
    job_id = enrol(ctx, laptop, laptop.host_key_pub)
    settings = RemoteEraseSettings(laptop.client_key, connect_timeout=10.0)
    # Past the key check, the sshd (no disks of its own to give) fails at the disk probe instead.
    with pytest.raises(RemoteMediaError) as refused:
        connect_for_job(ctx.engine, job_id, settings)
    assert "mismatch" not in refused.value.reason and "blockdev" in refused.value.reason
