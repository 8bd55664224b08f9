"""Times on pages are 24-hour UK local time, day first (stored times are UTC text)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from harness.audit_data import sanitised_device
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)

from api.app import create_app
from factory.kernel.clock import uk_time


def test_uk_time_is_24_hour_local_time_day_first() -> None:
    assert uk_time("2026-12-06T18:05:09.123456Z") == "06/12/2026 18:05"  # GMT in winter
    assert uk_time("2026-07-06T23:30:00.000000Z") == "07/07/2026 00:30"  # BST in summer: the next day
    assert uk_time(None) == "—" and uk_time("") == "—"
    assert uk_time("not a time") == "not a time"


def test_the_auditors_history_shows_uk_times(ctx) -> None:
    sanitised_device(ctx, "UKT-1", ("UKT-1-M1",))
    make_users(ctx)
    with TestClient(create_app(ctx)) as client:
        login(client, "auditor1")
        page = client.get("/audit/devices/UKT-1").text
    shown = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    assert shown and all(text == uk_time(stamp) for stamp, text in shown)
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", text) for _, text in shown)
