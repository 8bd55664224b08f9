"""Receive page journey (technician), with the accessibility check."""

from __future__ import annotations

import pytest
from harness.browser import check_page, focused_id, log_in, scan
from harness.web import cheap_password_hashing  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.slow  # a real browser against a served site


def test_receive_page_is_accessible(tech_page) -> None:
    page = tech_page
    log_in(page, "technician1", "/tech/receive")
    assert focused_id(page) == "f-serial"
    scan(page, "RCV-1")
    check_page(page, "tech-receive-1-form")
