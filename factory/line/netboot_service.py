"""The agent's bench networks: one dnsmasq each, started with the agent and stopped with it.

A site file's ``[[netboot]]`` tables (``network_config.py``) name the interface, the DHCP range and
the controller URL the laptops fetch their iPXE scripts from. dnsmasq (Debian's ``dnsmasq-base``)
serves DHCP and TFTP only; the agent refuses to start when one cannot run, with dnsmasq's reason, so
a bench whose laptops would not boot never looks ready. Its configuration, lease file and log live
under ``$FACTORY_HOME/work/netboot/<name>``.

While they run, their logs are read every ``POLL_SECONDS`` for laptops that fetched the UEFI loader
and never ran it (``loader_watch``: Secure Boot, most likely); what it finds goes to the controller
as a network event, for the board.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from factory.kernel.errors import InvalidInput
from factory.line.loader_watch import LoaderNotStarted, LoaderStarted, LoaderWatch
from hardware_drivers.netboot import BenchNetwork, BootLogTail, Dnsmasq, DnsmasqError

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0  # how often the logs are read: small beside loader_watch.LOADER_START_SECONDS
LoaderEvent = LoaderNotStarted | LoaderStarted


class BenchNetworkError(InvalidInput):
    """A bench network's dnsmasq could not be started (the reason is dnsmasq's)."""


class BenchNetworks:
    def __init__(
        self,
        networks: Sequence[BenchNetwork],
        work_dir: Path,
        *,
        wrapper: Sequence[str] = (),
        submit: Callable[[LoaderEvent], None] | None = None,  # the controller's entry point; None: no watching
    ) -> None:
        self.servers = [Dnsmasq(net, work_dir / "netboot" / net.name, wrapper=wrapper) for net in networks]
        self.watches = [(BootLogTail(s.log_file), LoaderWatch(s.net.name)) for s in self.servers]
        self._submit = submit
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start every bench network's dnsmasq; on a failure stop those started and raise.

        :raises BenchNetworkError: dnsmasq missing, or it refused its configuration (interface...).
        """
        started: list[Dnsmasq] = []
        try:
            for server in self.servers:
                server.start()
                started.append(server)
                log.info("bench network %s: dnsmasq serving on %s", server.net.name, server.net.interface)
        except DnsmasqError as exc:
            for server in started:
                server.stop()
            raise BenchNetworkError(f"bench network not served: {exc}") from exc
        if self._submit is not None and self.servers:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._watch_loop, name="netboot-logs", daemon=True)
            self._thread.start()

    def poll(self, now: float) -> list[LoaderEvent]:
        """Read what the logs gained since the last poll; the laptops now stuck at the loader, or past it."""
        found: list[LoaderEvent] = []
        for tail, watch in self.watches:
            found.extend(watch.seen(tail.read(), now))
            found.extend(watch.overdue(now))
        return found

    def _watch_loop(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            try:
                for event in self.poll(time.monotonic()):
                    log.info("bench network %s: %s", event.network, event)
                    if self._submit is not None:
                        self._submit(event)
            except Exception:  # a thread of its own: a bad read must not end the watching
                log.exception("reading the bench networks' dnsmasq logs failed")

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        for server in self.servers:
            server.stop()
