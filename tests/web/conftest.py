"""Fixtures of the page tests: the technicians' served site, browser and page (harness.tech_site)."""

from harness.tech_site import tech_browser, tech_page, tech_site  # noqa: F401 (fixtures)
