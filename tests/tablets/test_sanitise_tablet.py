"""A tablet's platform reset through the one erase-round service: certificates only for an
acknowledged, confirmed reset of an encrypted tablet; evidence before, during and after in the
custody record; a lock left on blocks redistribution but not destruction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness.domain import move, receive, state_of
from sqlmodel import select

from factory.intake.service import MediaSpec
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import GuardRefused
from factory.kernel.lifecycle.states import Event
from factory.kernel.models.certificate import Certificate
from factory.kernel.site_keys import load_public_key
from factory.tablets.errors import TabletMismatch, TabletNotReady
from factory.tablets.service import TabletRequest, sanitise_tablet
from factory.tablets.views import latest_tablet_round
from imaging.certificate import CertificateError, load_envelope, verify_certificate
from imaging.certificate_pdf import render_pdf
from imaging.commands import ReplayRunner
from imaging.tablets.device_management import AndroidManagement, AppleMdm, WipeWait
from imaging.tablets.identity import probe_android, probe_ipad, probe_ipad_after_reset
from imaging.tablets.methods import CRYPTO_RESET, ResetContext

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tablets"
UDID = "00008103-001A2B3C4D5E001E"
IPAD_SERIAL = "DMPXK4QJ2R"
ANDROID_SERIAL = "R52N50ABCDE"
FAST = WipeWait(poll_interval=0.0, deadline_seconds=5.0)
NO_WAIT = WipeWait(poll_interval=0.0, deadline_seconds=0.0)  # a wipe still pending at its first poll times out


def ipad_request(ctx, scenario: str, wait: WipeWait = FAST) -> TabletRequest:
    receive(ctx, IPAD_SERIAL, [MediaSpec("nvme", UDID, 128 * 10**9)], make="Apple", model="iPad", kind="tablet")
    runner = ReplayRunner(FIXTURES / f"{scenario}.json", device=UDID)
    reset = ResetContext(runner, {"ipados": AppleMdm(runner, "https://mdm.example.invalid")}, UDID, wait=wait)
    reprobe = lambda r: probe_ipad_after_reset(r, UDID)  # noqa: E731
    return TabletRequest(IPAD_SERIAL, probe_ipad(runner, UDID), reset, "tech.one", "B1-T1", reprobe=reprobe)


def android_request(ctx, scenario: str) -> TabletRequest:
    receive(ctx, ANDROID_SERIAL, [MediaSpec("ufs", ANDROID_SERIAL, 64 * 10**9)], make="Samsung", kind="tablet")
    runner = ReplayRunner(FIXTURES / f"{scenario}.json", device=ANDROID_SERIAL)
    dm = AndroidManagement(runner, "LC02abcd")
    reset = ResetContext(runner, {"android": dm}, "3a9f61c0e2b14d57", wait=FAST)
    return TabletRequest(ANDROID_SERIAL, probe_android(runner, ANDROID_SERIAL), reset, "tech.one", "B1-T2")


def certificates(ctx) -> list[Certificate]:
    with session_scope(ctx.engine) as s:
        return list(s.exec(select(Certificate)).all())


def test_an_ipad_reset_through_mdm_is_certified_with_its_evidence(ctx) -> None:
    outcome = sanitise_tablet(ctx, ipad_request(ctx, "ipad-mdm-acknowledged"))

    assert outcome.ok and state_of(ctx, IPAD_SERIAL) == "sanitised"
    [cert] = certificates(ctx)
    doc = verify_certificate(json.loads(cert.envelope), load_public_key(ctx.settings)).certificate
    assert doc["sanitisation"]["method"] == CRYPTO_RESET
    assert (doc["sanitisation"]["technique"], doc["sanitisation"]["level_achieved"]) == ("crypto erase", "purge")
    assert (doc["device"]["kind"], doc["media"]["serial_number"]) == ("tablet", UDID)
    argv = [c["argv"][:2] for c in doc["sanitisation"]["commands"]]
    assert ["https", "PUT"] in argv and ["idevicepair", "-u"] in argv  # during and before, signed
    assert "identity unchanged" in doc["verification"]["expected_pattern"]
    assert any("NCSC" in risk for risk in doc["residual_risk"])
    crypto = doc["sanitisation"]["crypto_erase"]
    assert crypto["encrypted_from_first_use"] is True
    assert crypto["basis"] == "read before the reset: platform crypto erase: Data Protection (hardware AES, always on)"

    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, IPAD_SERIAL)
    assert record is not None and record.certified and record.redistribution_blockers == ()
    assert (record.before["serial"], record.before["encrypted"], record.before["supervised"]) == (
        IPAD_SERIAL,
        True,
        True,
    )
    wipe = record.closing["wipe"]
    assert (wipe["service"], wipe["command_id"]) == ("apple-mdm", "8E2C4A8B-3F6D-4C1E-9B2A-7D5F0E1C3A9B")
    assert wipe["acknowledgement"] == "the iPad acknowledged EraseDevice"
    assert {c["check"] for c in record.closing["after"] if c["passed"]} >= {"identity unchanged", "in setup state"}


def test_the_certificate_verifies_offline_and_fails_on_any_changed_byte(ctx, tmp_path: Path) -> None:
    sanitise_tablet(ctx, ipad_request(ctx, "ipad-mdm-acknowledged"))
    [cert] = certificates(ctx)
    text, key = cert.envelope.encode(), load_public_key(ctx.settings)
    envelope = tmp_path / "tablet.cert.json"
    envelope.write_bytes(text)
    verify_certificate(load_envelope(envelope), key)  # offline: the file and the public key only
    render_pdf(load_envelope(envelope), tmp_path / "tablet.pdf")  # and its PDF, as for every certificate
    assert (tmp_path / "tablet.pdf").read_bytes().startswith(b"%PDF")
    accepted = []
    for offset in range(0, len(text), max(1, len(text) // 400)):  # ~400 positions across the envelope
        changed = bytearray(text)
        changed[offset] ^= 0x01
        envelope.write_bytes(bytes(changed))
        try:
            verify_certificate(load_envelope(envelope), key)
            accepted.append(offset)
        except CertificateError:
            pass
    assert accepted == []


def test_an_unencrypted_android_tablet_is_refused_a_crypto_erase_certificate(ctx) -> None:
    request = android_request(ctx, "android-unencrypted")
    outcome = sanitise_tablet(ctx, request)

    assert not outcome.ok and outcome.state == "sanitise_failed" and certificates(ctx) == []
    assert "not encrypted (ro.crypto.state=unencrypted" in (outcome.failure_reason or "")
    assert "not a cryptographic erase" in (outcome.failure_reason or "")
    # Routed to re-sanitise or destruction: both exits of sanitise_failed stay open.
    device_id = _device_id(ctx, ANDROID_SERIAL)
    move(ctx, device_id, Event.DESTROY, witness="tech.two")
    assert state_of(ctx, ANDROID_SERIAL) == "destroyed"


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("ipad-mdm-notnow", "timed out"),
        ("ipad-mdm-error", "EraseDevice Error"),
        ("ipad-mdm-refused", "wipe refused"),
    ],
)
def test_an_unacknowledged_wipe_yields_no_certificate(ctx, scenario: str, reason: str) -> None:
    outcome = sanitise_tablet(ctx, ipad_request(ctx, scenario, NO_WAIT))
    assert not outcome.ok and outcome.state == "sanitise_failed" and certificates(ctx) == []
    assert reason in (outcome.failure_reason or "")
    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, IPAD_SERIAL)
    assert record is not None and record.closed_event == "fail" and not record.certified
    move(ctx, _device_id(ctx, IPAD_SERIAL), Event.START_SANITISE)  # re-sanitise is allowed
    assert state_of(ctx, IPAD_SERIAL) == "sanitising"


def test_activation_lock_blocks_redistribution_but_not_destruction(ctx) -> None:
    outcome = sanitise_tablet(ctx, ipad_request(ctx, "ipad-activation-lock"))
    assert outcome.ok and state_of(ctx, IPAD_SERIAL) == "sanitised"
    device_id = _device_id(ctx, IPAD_SERIAL)

    with pytest.raises(GuardRefused, match="cannot be redistributed: Activation Lock on"):
        move(ctx, device_id, Event.REDISTRIBUTE, to_custodian="school:st-marys")
    assert state_of(ctx, IPAD_SERIAL) == "sanitised"
    move(ctx, device_id, Event.DESTROY, witness="tech.two")
    assert state_of(ctx, IPAD_SERIAL) == "destroyed"


def test_frp_is_recorded_as_a_redistribution_blocker(ctx) -> None:
    outcome = sanitise_tablet(ctx, android_request(ctx, "android-frp"))
    assert outcome.ok
    with session_scope(ctx.engine) as s:
        record = latest_tablet_round(s, ANDROID_SERIAL)
    assert record is not None and record.redistribution_blockers == (
        "Factory Reset Protection on (1 Google account(s))",
    )


def test_a_locked_ipad_opens_no_round(ctx) -> None:
    with pytest.raises(TabletNotReady, match="the iPad is locked: unlock the iPad with its passcode"):
        sanitise_tablet(ctx, ipad_request(ctx, "ipad-locked"))
    assert state_of(ctx, IPAD_SERIAL) == "received"


def test_another_tablet_on_the_bench_opens_no_round(ctx) -> None:
    request = ipad_request(ctx, "ipad-mdm-acknowledged")
    receive(ctx, "OTHER-IPAD", [MediaSpec("nvme", "00008103-FFFF", 10**9)], kind="tablet")
    with pytest.raises(TabletMismatch, match="not device OTHER-IPAD"):
        sanitise_tablet(ctx, TabletRequest("OTHER-IPAD", request.probe, request.reset, "tech.one"))
    assert json.dumps(state_of(ctx, "OTHER-IPAD")) == '"received"'


def _device_id(ctx, serial: str) -> int:
    from factory.intake.views import get_device

    with session_scope(ctx.engine) as s:
        return get_device(s, serial).id or 0
