"""Dates and times as UK users type them (api.web.forms): day first (dd/mm/yyyy), 24-hour clock
(HH:MM, UK time). A bad or impossible date is a field error naming the field, never a 500, on
the KPI page and the courier's delivery form alike."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest
from fastapi.testclient import TestClient
from harness.courier_data import handed_over, wave_with_room
from harness.custody_data import PNG
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)

from api.app import create_app
from api.web.forms import FieldError, day_first, parse_clock, parse_day, parse_uk_moment


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("31/01/2026", date(2026, 1, 31)), ("1/2/2026", date(2026, 2, 1)), (" 03/04/2026 ", date(2026, 4, 3)),
     ("29/02/2028", date(2028, 2, 29)), ("2026-04-03", date(2026, 4, 3))],
)  # fmt: skip
def test_a_date_is_read_day_first(typed: str, meant: date) -> None:
    assert parse_day(typed, field="start", label="From") == meant
    assert day_first(meant) == meant.strftime("%d/%m/%Y")


def test_an_empty_date_is_none() -> None:
    assert parse_day("  ", field="start", label="From") is None
    assert parse_clock("", field="t", label="Time") is None
    assert parse_uk_moment("", "", fields=("d", "t"), label="Delivered") is None


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("31/02/2026", "31/02/2026 is not a real date (February 2026 has no day 31)"),
     ("29/02/2026", "February 2026 has no day 29"), ("01/13/2026", "months go 1 to 12"),
     ("00/01/2026", "not a real date"), ("2026/01/31", "not a date written day first, dd/mm/yyyy"),
     ("31.01.2026", "not a date written day first"), ("next week", "not a date written day first"),
     ("31/01/26", "not a date written day first"), ("2026-02-30", "not a real date")],
)  # fmt: skip
def test_a_bad_or_impossible_date_is_an_error_on_its_field(typed: str, reason: str) -> None:
    with pytest.raises(FieldError) as refused:
        parse_day(typed, field="start", label="From")
    assert refused.value.field == "start" and refused.value.status_code == 422
    assert refused.value.reason.startswith("From: ") and reason in refused.value.reason


@pytest.mark.parametrize("typed", ["24:00", "7:5", "14:60", "2pm", "14.05", "14:05:00"])
def test_a_time_is_24_hour_hh_mm(typed: str) -> None:
    assert parse_clock("00:00", field="t", label="Time") == time(0, 0)
    assert parse_clock("7:05", field="t", label="Time") == time(7, 5)
    assert parse_clock("23:59", field="t", label="Time") == time(23, 59)
    with pytest.raises(FieldError, match="24-hour clock, HH:MM") as refused:
        parse_clock(typed, field="t", label="Time")
    assert refused.value.field == "t"


def test_a_uk_moment_is_local_time_summer_and_winter() -> None:
    fields = ("d", "t")
    summer = parse_uk_moment("01/07/2026", "14:05", fields=fields, label="Delivered")
    winter = parse_uk_moment("01/12/2026", "14:05", fields=fields, label="Delivered")
    assert summer is not None and summer.astimezone(UTC) == datetime(2026, 7, 1, 13, 5, tzinfo=UTC)  # BST
    assert winter is not None and winter.astimezone(UTC) == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)  # GMT
    with pytest.raises(FieldError, match="give the time too") as refused:
        parse_uk_moment("01/07/2026", "", fields=fields, label="Delivered")
    assert refused.value.field == "t"
    with pytest.raises(FieldError, match="give the date too") as refused:
        parse_uk_moment("", "14:05", fields=fields, label="Delivered")
    assert refused.value.field == "d"


@pytest.fixture
def app_client(ctx):
    make_users(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client


def _invalid_field(html: str) -> list[str]:
    return re.findall(r'id="f-([a-z_]+)"[^>]*aria-invalid="true"', html, flags=re.S)


def test_the_kpi_page_refuses_an_impossible_date_on_its_field(app_client) -> None:
    login(app_client, "technician1")
    r = app_client.get("/tech/kpis", params={"start": "01/03/2026", "end": "31/02/2026"})
    assert r.status_code == 422 and "To: 31/02/2026 is not a real date" in r.text
    assert _invalid_field(r.text) == ["end"] and 'value="31/02/2026"' in r.text
    r = app_client.get("/tech/kpis", params={"start": "1/3/2026", "end": "10/03/2026"})
    assert r.status_code == 200 and 'value="01/03/2026"' in r.text and 'value="10/03/2026"' in r.text
    assert 'inputmode="numeric"' in r.text and 'aria-describedby="h-start"' in r.text


def test_the_delivery_form_refuses_a_bad_time_on_its_field_with_everything_kept(ctx, app_client) -> None:
    ref = handed_over(ctx, wave_with_room(ctx, "WD", in_person=0), "PC6100", "OLD-DT", "DT-1")
    csrf = login(app_client, "courier1")
    form = {"csrf_token": csrf, "recipient_name": "PC Day First", "seal": ["SEAL-DT-1"], "old_serial": ["OLD-DT"],
            "delivered_on": "06/12/2026", "delivered_time": "25:10"}  # fmt: skip
    files = {"signature": ("pod.png", PNG, "image/png")}
    r = app_client.post(f"/courier/consignments/{ref}/deliver", data=form, files=files)
    assert r.status_code == 422 and "Delivered (time): &#39;25:10&#39; is not a time on the 24-hour clock" in r.text
    assert _invalid_field(r.text) == ["delivered_time"]
    assert 'value="06/12/2026"' in r.text and 'value="PC Day First"' in r.text and "OLD-DT" in r.text
    impossible = {**form, "delivered_on": "30/02/2026", "delivered_time": "10:00"}
    r = app_client.post(f"/courier/consignments/{ref}/deliver", data=impossible, files=files)
    assert r.status_code == 422 and _invalid_field(r.text) == ["delivered_on"]
