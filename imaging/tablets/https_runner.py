"""The real transport of the device-management adapter: ``("https", METHOD, URL, BODY)`` over HTTPS
with the service's bearer token (read from a file at each call, so a rotated token is picked up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib import error, request

from imaging.commands import TIMED_OUT, utc_now
from imaging.result import CommandRecord
from imaging.tablets.device_management import UNREACHABLE


class HttpsRunner:
    """Runs ``("https", METHOD, URL, BODY)`` for real, with the service's bearer token."""

    def __init__(self, token_file: Path) -> None:
        self.token_file = token_file

    def run(self, argv: Any, timeout: float) -> CommandRecord:
        argv = tuple(argv)
        _, method, url, body = argv
        started = utc_now()
        token = self.token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        req = request.Request(url, data=body.encode() if body else None, method=method, headers=headers)
        try:
            with request.urlopen(req, timeout=timeout) as resp:  # the site config names https URLs only
                return CommandRecord(argv, resp.status, resp.read().decode(errors="replace"), "", started, utc_now())
        except error.HTTPError as exc:
            return CommandRecord(argv, exc.code, exc.read().decode(errors="replace"), "", started, utc_now())
        except TimeoutError:
            return CommandRecord(argv, TIMED_OUT, "", f"timed out after {timeout:g}s", started, utc_now())
        except (error.URLError, OSError) as exc:
            return CommandRecord(argv, UNREACHABLE, "", str(exc), started, utc_now())


class SeamRouter:
    """The bench's one command seam for tablets: tool calls to ``tools``, service exchanges to the
    HTTPS transport whose base URL starts the request's URL (each service has its own token)."""

    def __init__(self, tools: Any, services: dict[str, Any]) -> None:
        self.tools = tools
        self.services = dict(services)

    def run(self, argv: Any, timeout: float) -> CommandRecord:
        argv = tuple(argv)
        if not argv or argv[0] != "https":
            return self.tools.run(argv, timeout)
        for base, transport in self.services.items():
            if str(argv[2]).startswith(base):
                return transport.run(argv, timeout)
        started = utc_now()
        return CommandRecord(
            argv, UNREACHABLE, "", "no device-management service configured for this URL", started, started
        )
