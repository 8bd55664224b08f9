"""Consignments in the auditor's exception report, end to end: one handed over N+1 days ago and
not delivered is overdue in the JSON (API and CLI), on the web page and in the CLI's text; one
handed over as long ago and delivered is not listed. N is the report's overdue days (default 3,
the custody area's own consignment report's default)."""

from __future__ import annotations

import json

import pytest
from harness.courier_data import handed_over, handed_over_days_ago, wave_with_room
from harness.custody_data import signature
from harness.web import cheap_password_hashing, login, make_users  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from factory.cli.main import app
from factory.custody.service import deliver
from factory.custody.views import DEFAULT_OVERDUE_DAYS
from factory.kernel.context import AppContext
from factory.kernel.db.engine import session_scope


@pytest.fixture
def late_and_delivered(ctx: AppContext) -> tuple[str, str]:
    wave_with_room(ctx, "W-CON", in_person=0)
    late = handed_over(ctx, "W-CON", "PC4001", "OLD-LATE", "CON-LATE")
    done = handed_over(ctx, "W-CON", "PC4002", "OLD-DONE", "CON-DONE")
    with session_scope(ctx.engine) as s:
        deliver(s, reference=done, recipient_name="Jane Smith", signature=signature("pod"),
                scanned_seals=["SEAL-CON-DONE"], old_serials=["OLD-DONE"], actor="courier.one")  # fmt: skip
    for reference in (late, done):
        handed_over_days_ago(ctx, reference, DEFAULT_OVERDUE_DAYS + 1)
    return late, done


def test_overdue_consignment_in_the_api_report(client, headers, late_and_delivered) -> None:
    late, done = late_and_delivered
    r = client.get("/api/audit/exceptions", headers=headers["auditor"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["overdue_days"] == DEFAULT_OVERDUE_DAYS
    assert [(c["reference"], c["problem"], c["device_serial"]) for c in body["consignments"]] == [
        (late, "overdue", None)
    ]
    assert f"not delivered within {DEFAULT_OVERDUE_DAYS} days" in body["consignments"][0]["detail"]
    assert done not in r.text
    later = client.get("/api/audit/exceptions", params={"overdue_days": DEFAULT_OVERDUE_DAYS + 2},
                       headers=headers["auditor"])  # fmt: skip
    assert later.status_code == 200 and later.json()["consignments"] == []
    refused = client.get("/api/audit/exceptions", params={"overdue_days": -1}, headers=headers["auditor"])
    assert refused.status_code == 422


def test_overdue_consignment_on_the_web_page(ctx: AppContext, client, late_and_delivered) -> None:
    late, done = late_and_delivered
    make_users(ctx)
    login(client, "auditor1")
    page = client.get("/audit/exceptions")
    assert page.status_code == 200, page.text
    assert '<h2 id="h-consignments">Consignments overdue' in page.text
    table = page.text[page.text.index('<table id="consignments">') :]
    table = table[: table.index("</table>")]
    assert f'<td class="mono">{late}</td>' in table and "<td>Overdue</td>" in table
    assert done not in page.text


def test_overdue_consignment_in_the_cli(ctx: AppContext, late_and_delivered) -> None:
    late, done = late_and_delivered
    env = {"FACTORY_HOME": str(ctx.settings.home), "FACTORY_DATABASE_URL": ctx.settings.database_url}
    text = CliRunner().invoke(app, ["audit", "exceptions"], env=env)
    assert text.exit_code == 0, text.output
    assert f"consignments overdue ({DEFAULT_OVERDUE_DAYS}+ days) or missing a scan: 1" in text.output
    assert f"  {late} overdue: handed over" in text.output and done not in text.output
    as_json = CliRunner().invoke(app, ["audit", "exceptions", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    assert [c["reference"] for c in json.loads(as_json.output)["consignments"]] == [late]
    relaxed = CliRunner().invoke(app, ["audit", "exceptions", "--overdue-days", "10"], env=env)
    assert "or missing a scan: 0" in relaxed.output and late not in relaxed.output
