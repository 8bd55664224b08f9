"""The agent's bench networks: one dnsmasq each, started with the agent and stopped with it.

A site file's ``[[netboot]]`` tables (``network_config.py``) name the interface, the DHCP range and
the controller URL the laptops fetch their iPXE scripts from. dnsmasq (Debian's ``dnsmasq-base``)
serves DHCP and TFTP only; the agent refuses to start when one cannot run, with dnsmasq's reason, so
a bench whose laptops would not boot never looks ready. Its configuration, lease file and log live
under ``$FACTORY_HOME/work/netboot/<name>``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from factory.kernel.errors import InvalidInput
from hardware_drivers.netboot import BenchNetwork, Dnsmasq, DnsmasqError

log = logging.getLogger(__name__)


class BenchNetworkError(InvalidInput):
    """A bench network's dnsmasq could not be started (the reason is dnsmasq's)."""


class BenchNetworks:
    def __init__(self, networks: Sequence[BenchNetwork], work_dir: Path, *, wrapper: Sequence[str] = ()) -> None:
        self.servers = [Dnsmasq(net, work_dir / "netboot" / net.name, wrapper=wrapper) for net in networks]

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

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
