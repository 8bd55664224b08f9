"""What changed on a switch between two looks at it: consecutive polls, and traps in between.

:class:`SwitchTracker` keeps one switch's last known link states and forwarding table and turns
each new snapshot into events. Traps update the same link states, so a linkDown trap followed by
a poll that sees the port down is reported once, not twice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from hardware_drivers.events import LinkDown, LinkEvent, LinkUp, MacGone, MacSeen
from hardware_drivers.snmp import SwitchSnapshot

SwitchEvent = LinkUp | LinkDown | MacSeen | MacGone
_MacKey = tuple[str, int]  # (mac, bridge port): one sighting per port, whatever the VLANs


@dataclass
class SwitchTracker:
    """One switch's state as last seen. Not thread-safe: the poller's loop owns it."""

    switch: str
    links: dict[int, bool] = field(default_factory=dict)  # ifIndex -> up
    names: dict[int, str | None] = field(default_factory=dict)  # ifIndex -> ifName
    macs: dict[_MacKey, MacSeen] | None = None  # None until the first successful poll

    def update(self, snapshot: SwitchSnapshot, trapped: Collection[int] = ()) -> list[SwitchEvent]:
        """Events for what changed since the last poll; the first poll reports only the MACs.

        Departures come before arrivals, so a laptop recabled between two polls frees its old
        port before it occupies the new one. ``trapped``: interfaces whose link trap arrived while
        this poll was under way; the trap is newer than what the poll read, so the poll does not
        overrule it (the poll the trap triggers settles them).
        """
        gone: list[SwitchEvent] = []
        new: list[SwitchEvent] = []
        for if_index, iface in snapshot.interfaces.items():
            self.names[if_index] = iface.if_name
            if if_index in trapped:
                continue
            was_up = self.links.get(if_index)
            if was_up is not None and was_up != iface.is_up:
                event = LinkUp if iface.is_up else LinkDown
                (new if iface.is_up else gone).append(event(self.switch, if_index, iface.if_name))
            self.links[if_index] = iface.is_up
        current: dict[_MacKey, MacSeen] = {}
        for seen in snapshot.macs:
            current.setdefault((seen.mac, seen.bridge_port), seen)
        previous = self.macs or {}
        for key, old in previous.items():
            if key not in current:
                gone.append(MacGone(self.switch, old.mac, old.bridge_port, old.if_index, old.if_name))
        new.extend(seen for key, seen in current.items() if key not in previous)
        self.macs = current
        return gone + new

    def link_trap(self, event: LinkEvent) -> bool:
        """Record a trap's link state; False if it only repeats what is already known."""
        up = isinstance(event, LinkUp)
        news = self.links.get(event.if_index) != up
        self.links[event.if_index] = up
        return news

    def if_name(self, if_index: int) -> str | None:
        return self.names.get(if_index)
