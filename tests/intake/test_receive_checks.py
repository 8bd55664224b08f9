"""What intake refuses or warns about when a device is booked in: a serial with a slash (it was
accepted, then unreachable: /api/devices/A/B is another URL) and a medium already recorded on
another device (it was recorded twice without a warning)."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from harness.custody_data import entries
from harness.domain import receive

from factory.intake.views import get_device, media_elsewhere
from factory.kernel import limits
from factory.kernel.db.engine import session_scope
from factory.kernel.errors import InvalidInput


@pytest.mark.parametrize("serial", ["SN/123", "SN\\\\123"])
def test_a_serial_with_a_slash_is_refused_at_receipt(ctx, serial: str) -> None:
    with pytest.raises(InvalidInput, match="must not contain"):
        receive(ctx, serial)
    assert limits.serial_problem("serial", "SN-123_A.B 7") is None


def test_a_serial_with_a_slash_is_refused_by_the_api(ctx) -> None:
    from harness.web import bearer, make_users

    from api.app import create_app

    tokens = make_users(ctx)
    with TestClient(create_app(ctx)) as client:
        r = client.post(
            "/api/devices", json={"serial": "AB/12", "kind": "laptop"}, headers=bearer(tokens["technician"])
        )
    assert r.status_code in (400, 422) and "must not contain" in r.text, r.text


def test_a_medium_recorded_on_another_device_is_named_in_a_warning(ctx) -> None:
    receive(ctx, "DUP-A", media=("DISK-1", "DISK-2"))
    receive(ctx, "DUP-B", media=("DISK-2",))
    receive(ctx, "DUP-C", media=("DISK-3",))
    assert orjson.loads(entries(ctx, "DUP-B")[0].evidence)["media_also_recorded_on"] == {"DISK-2": ["DUP-A"]}
    assert "media_also_recorded_on" not in orjson.loads(entries(ctx, "DUP-C")[0].evidence)
    with session_scope(ctx.engine) as s:
        assert media_elsewhere(s, get_device(s, "DUP-A")) == {"DISK-2": ["DUP-B"]}
        assert media_elsewhere(s, get_device(s, "DUP-C")) == {}
