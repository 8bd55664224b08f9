"""The bench board page in Debian Chromium: a device pulled out of its slot and one whose erase
failed are listed under "Needs attention" with what to do, pulled devices offer no job button,
times are 24-hour UK time, and the page passes axe-core (WCAG 2.2 AA)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from harness.board_data import pulled_job
from harness.browser import check_page, log_in
from harness.domain import move, receive
from harness.tech_site import Site
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

from factory.kernel.lifecycle.states import Event

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_board_lists_pulled_and_failed_devices_in_24_hour_time(tech_page: Any, tech_site: Site) -> None:
    ctx = tech_site.ctx
    for serial in ("BRD-PULLED", "BRD-FAILED"):
        device_id = receive(ctx, serial)
        move(ctx, device_id, Event.START_SANITISE)
        move(ctx, device_id, Event.FAIL)
        if serial == "BRD-PULLED":
            pulled_job(ctx, serial, device_id)
    page = tech_page
    log_in(page, "technician1", "/board")
    page.locator("#attention tbody tr").nth(1).wait_for()  # the live stream has rendered both
    rows = {r.locator("td").nth(1).inner_text(): r for r in page.locator("#attention tbody tr").all()}
    pulled, failed = rows["BRD-PULLED"], rows["BRD-FAILED"]
    assert pulled.locator("td").first.inner_text() == "bench-9/slot-1 (pulled out)"
    assert pulled.locator("button").count() == 0  # nothing in the slot to retry
    assert failed.locator("td").first.inner_text() == "not in a slot"
    assert "destruction" in failed.locator("td").nth(4).inner_text()
    status = page.locator("#board-status").inner_text()
    assert re.fullmatch(r"Live · updated \d\d/\d\d/\d{4} \d\d:\d\d:\d\d", status), status
    assert page.locator("#benches .bench").count() == 1 and page.locator("#benches-empty").is_hidden()
    check_page(page, "board-1-needs-attention")
