"""systemd's notify protocol (sd_notify(3)) for ``factory serve`` and ``factory line run`` in ``Type=notify`` units.

``READY=1`` once the process serves, ``WATCHDOG=1`` every half watchdog period while its health check
passes, ``STOPPING=1`` on the way out. Each is one datagram to ``$NOTIFY_SOCKET``: no library needed.
Run outside systemd (no ``NOTIFY_SOCKET``) nothing is sent and no thread starts.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``) to the service manager; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall("\n".join(fields).encode())
    return True


def watchdog_seconds() -> float | None:
    """The unit's ``WatchdogSec=`` if it applies to this process, else None."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000


@contextmanager
def service_lifecycle(ready: Callable[[], bool], healthy: Callable[[], bool]) -> Iterator[None]:
    """Around a blocking ``run``: READY=1 once ``ready()``, then WATCHDOG=1 while ``healthy()``.

    A process that hangs (a wedged event loop, a heartbeat stuck on a lock) stops answering
    ``healthy()``, the pings stop, and systemd restarts it after ``WatchdogSec=``.
    """
    if not os.environ.get("NOTIFY_SOCKET"):
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_pinger, args=(ready, healthy, stop), name="sd-notify", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        notify("STOPPING=1")
        thread.join(timeout=5)


def _pinger(ready: Callable[[], bool], healthy: Callable[[], bool], stop: threading.Event) -> None:
    while not ready():
        if stop.wait(0.1):
            return
    notify("READY=1", f"MAINPID={os.getpid()}")
    period = watchdog_seconds()
    if period is None:
        return
    while not stop.wait(period / 2):
        if healthy():
            notify("WATCHDOG=1")


def http_answers(host: str, port: int, timeout: float = 5.0) -> bool:
    """True if the API at host:port answers ``/healthz`` with any HTTP response (a 503 under load still
    proves the event loop runs; only silence means it hangs)."""
    import http.client  # only the watchdog needs it: keep the CLI's start-up lean

    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    conn = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
