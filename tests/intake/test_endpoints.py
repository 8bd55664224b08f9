"""Service-environment records: host keys pinned once; images recorded only when verified."""

from __future__ import annotations

import os

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness.custody_data import entries
from harness.domain import move, receive
from typer.testing import CliRunner

from factory.cli.main import app
from factory.intake.service import register_endpoint
from factory.intake.views import get_endpoint, images_of
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import Conflict, InvalidInput
from factory.kernel.lifecycle.states import Event

runner = CliRunner()


def _host_key() -> str:
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def test_host_key_is_pinned_once(ctx) -> None:
    receive(ctx, "SE-1")
    key = _host_key()
    with session_scope(ctx.engine) as s:
        register_endpoint(s, "SE-1", address="127.0.0.1", port=2222, username="root", host_key=key, actor="t")
    with session_scope(ctx.engine) as s:  # new address, same key: accepted
        register_endpoint(s, "SE-1", address="127.0.0.2", port=22, username="root", host_key=key, actor="t")
    with pytest.raises(Conflict, match="refusing to re-pin"), session_scope(ctx.engine) as s:
        register_endpoint(s, "SE-1", address="127.0.0.2", port=22, username="root", host_key=_host_key(), actor="t")
    with session_scope(ctx.engine) as s:
        ep = get_endpoint(s, "SE-1")
        assert (ep.address, ep.port) == ("127.0.0.2", 22) and ep.host_key == key.split(" ")[0] + " " + key.split()[1]
    with pytest.raises(InvalidInput), session_scope(ctx.engine) as s:
        register_endpoint(s, "SE-1", address="x", port=22, username="root", host_key="ssh-rsa nonsense", actor="t")
    r = runner.invoke(app, ["device", "endpoint", "SE-1", "--address", "h", "--host-key", _host_key()])
    assert r.exit_code == 1 and "refusing to re-pin" in r.stderr


def test_image_deploy_is_recorded_only_when_verified(ctx, tmp_path) -> None:
    device_id = receive(ctx, "SE-2", new_stock=True)
    move(ctx, device_id, Event.START_PROVISION, new_stock=True)
    image = tmp_path / "golden.img"
    image.write_bytes(os.urandom(3 * 2**20 + 4096))
    target = tmp_path / "target.img"
    target.write_bytes(b"\xff" * (8 * 2**20))
    r = runner.invoke(app, ["image", "manifest", str(image), "--name", "win11-laptop", "--version", "2026.11"])
    assert r.exit_code == 0, r.output
    assert "pieces-sha256/4194304 " in r.output  # the digest a deploy checks, beside the image's identity
    r = runner.invoke(app, ["image", "deploy", str(image), str(target), "--serial", "SE-2"])
    assert r.exit_code == 1 and "without --yes" in r.stderr
    r = runner.invoke(app, ["image", "deploy", str(image), str(target), "--serial", "SE-2", "--yes"])
    assert r.exit_code == 0, r.output
    assert target.read_bytes()[: image.stat().st_size] == image.read_bytes()
    # corrupt the image: the deploy fails and nothing new is recorded
    data = bytearray(image.read_bytes())
    data[12345] ^= 0xFF
    image.write_bytes(bytes(data))
    r = runner.invoke(app, ["image", "deploy", str(image), str(target), "--serial", "SE-2", "--yes"])
    assert r.exit_code == 1 and "not recorded as imaged" in r.stderr
    with session_scope(ctx.engine) as s:
        images = images_of(s, "SE-2")
    assert [(i.image_name, i.image_version) for i in images] == [("win11-laptop", "2026.11")]
    assert len(images[0].image_sha256) == 64
    # the deploy is in the device's chain of custody, and the device is still being provisioned
    deployed = [e for e in entries(ctx, "SE-2") if e.event == "deploy_image"]
    assert [(e.from_state, e.to_state) for e in deployed] == [("provisioning", "provisioning")]
    assert orjson.loads(deployed[0].evidence)["sha256"] == images[0].image_sha256


def test_image_deploy_is_refused_on_a_device_that_may_hold_user_data(ctx, tmp_path) -> None:
    receive(ctx, "SE-9")  # returned from an officer: its disk still holds their data
    image = tmp_path / "golden.img"
    image.write_bytes(os.urandom(2**20))
    target = tmp_path / "target.img"
    target.write_bytes(b"\xee" * (2 * 2**20))
    assert runner.invoke(app, ["image", "manifest", str(image), "--name", "g", "--version", "1"]).exit_code == 0
    before = len(entries(ctx, "SE-9"))
    r = runner.invoke(app, ["image", "deploy", str(image), str(target), "--serial", "SE-9", "--yes"])
    assert r.exit_code == 1 and "may still hold user data" in r.stderr and "Traceback" not in r.output
    assert target.read_bytes() == b"\xee" * (2 * 2**20)  # nothing written
    assert len(entries(ctx, "SE-9")) == before
    with session_scope(ctx.engine) as s:
        assert images_of(s, "SE-9") == []


def test_endpoint_records_the_mac_the_line_identifies_a_laptop_by(ctx) -> None:
    from factory.intake.views import serials_with_mac

    receive(ctx, "SE-3")
    receive(ctx, "SE-4")
    key = _host_key()
    with session_scope(ctx.engine) as s:
        ep = register_endpoint(
            s, "SE-3", address="h", port=22, username="root", host_key=key, actor="t", mac="001B.63AA.0001"
        )
        assert ep.mac == "00:1b:63:aa:00:01"
    with session_scope(ctx.engine) as s:  # re-registered without a MAC (new address): the MAC is kept
        assert register_endpoint(s, "SE-3", address="h2", port=22, username="root", host_key=key, actor="t").mac == (
            "00:1b:63:aa:00:01"
        )
    with pytest.raises(InvalidInput, match="not a MAC address"), session_scope(ctx.engine) as s:
        register_endpoint(
            s, "SE-4", address="h", port=22, username="root", host_key=_host_key(), actor="t", mac="00:1b"
        )
    r = runner.invoke(
        app, ["device", "endpoint", "SE-4", "--address", "h", "--host-key", _host_key(), "--mac", "00-1B-63-AA-00-01"]
    )
    assert r.exit_code == 0, r.output
    assert "MAC 00:1b:63:aa:00:01" in r.stdout
    with session_scope(ctx.engine) as s:
        assert serials_with_mac(s, "00:1b:63:aa:00:01") == ["SE-3", "SE-4"]
        assert serials_with_mac(s, "00:1b:63:aa:00:02") == []
