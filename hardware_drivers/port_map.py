"""Site wiring: which physical port (USB path, bench-port label, switch port) is which bench slot.

The lead parses the site's TOML/YAML into a plain dict and hands it to :meth:`PortMap.from_dict`::

    {
      "udev": [
        {"bench_port": "B1-S1", "slot": "bench-1/slot-1"},
        {"id_path": "pci-0000:00:14.0-usb-0:2.1:1.0-scsi-0:0:0:0", "slot": "bench-1/slot-1"},
        {"id_path_prefix": "pci-0000:00:14.0-usb-0:2.2", "slot": "bench-1/slot-2"},
        {"id_path_glob": "pci-0000:00:14.0-usb-0:3.*-scsi-*", "slot": "bench-1/slot-3"},
      ],
      "switch_ports": [
        {"switch": "sw-bench-1", "if_name": "Gi1/0/1", "slot": "bench-1/slot-1"},
      ],
    }

Lookup order for a udev device: the bench-port property (set by a site udev rule, most
explicit), then an exact ``id_path``, then prefixes and globs in the order written. An unknown
port gives ``None``: the controller reports it rather than guessing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hardware_drivers.events import UdevEvent

_K = TypeVar("_K")
_UDEV_MATCHERS = ("bench_port", "id_path", "id_path_prefix", "id_path_glob")


class PortMapError(ValueError):
    """The site's port map is inconsistent; the message names the offending entry."""


@dataclass(frozen=True, slots=True)
class _PathPattern:
    pattern: str
    slot: str
    is_glob: bool

    def matches(self, id_path: str) -> bool:
        if self.is_glob:
            return fnmatch.fnmatchcase(id_path, self.pattern)
        return id_path.startswith(self.pattern)


class PortMap:
    """Maps udev port identities and (switch, ifName) pairs to bench slot ids."""

    def __init__(
        self,
        *,
        bench_ports: Mapping[str, str] | None = None,
        id_paths: Mapping[str, str] | None = None,
        id_path_patterns: Iterable[tuple[str, str, bool]] = (),
        switch_ports: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._bench_ports = dict(bench_ports or {})
        self._id_paths = dict(id_paths or {})
        self._patterns = tuple(_PathPattern(p, s, g) for p, s, g in id_path_patterns)
        self._switch_ports = dict(switch_ports or {})

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> PortMap:
        """Build from the parsed site configuration; raises :class:`PortMapError` on bad input."""
        unknown = set(config) - {"udev", "switch_ports"}
        if unknown:
            raise PortMapError(f"unknown port map section(s): {', '.join(sorted(unknown))}")
        bench_ports: dict[str, str] = {}
        id_paths: dict[str, str] = {}
        patterns: list[tuple[str, str, bool]] = []
        for n, entry in enumerate(_entries(config, "udev")):
            where = f"udev[{n}]"
            slot = _slot(entry, where)
            keys = [k for k in _UDEV_MATCHERS if k in entry]
            extra = set(entry) - {*_UDEV_MATCHERS, "slot"}
            if len(keys) != 1 or extra:
                raise PortMapError(
                    f"{where}: needs exactly one of {', '.join(_UDEV_MATCHERS)} plus 'slot', "
                    f"got {', '.join(sorted(entry))}"
                )
            key = keys[0]
            value = _text(entry[key], f"{where}.{key}")
            if key == "bench_port":
                _put_unique(bench_ports, value, slot, f"{where}: bench_port {value!r}")
            elif key == "id_path":
                _put_unique(id_paths, value, slot, f"{where}: id_path {value!r}")
            else:
                patterns.append((value, slot, key == "id_path_glob"))
        switch_ports: dict[tuple[str, str], str] = {}
        for n, entry in enumerate(_entries(config, "switch_ports")):
            where = f"switch_ports[{n}]"
            if set(entry) != {"switch", "if_name", "slot"}:
                raise PortMapError(f"{where}: needs exactly 'switch', 'if_name' and 'slot'")
            key = (_text(entry["switch"], f"{where}.switch"), _text(entry["if_name"], f"{where}.if_name"))
            _put_unique(switch_ports, key, _slot(entry, where), f"{where}: {key[0]} {key[1]}")
        return cls(bench_ports=bench_ports, id_paths=id_paths, id_path_patterns=patterns, switch_ports=switch_ports)

    def slot_for_udev(self, id_path: str | None, bench_port: str | None = None) -> str | None:
        """The slot for a device's ID_PATH / bench-port property, or ``None`` if not wired."""
        if bench_port is not None and bench_port in self._bench_ports:
            return self._bench_ports[bench_port]
        if id_path is None:
            return None
        if id_path in self._id_paths:
            return self._id_paths[id_path]
        for pattern in self._patterns:
            if pattern.matches(id_path):
                return pattern.slot
        return None

    def slot_for_device(self, event: UdevEvent) -> str | None:
        return self.slot_for_udev(event.id_path, event.bench_port)

    def slot_for_switch_port(self, switch: str, if_name: str | None) -> str | None:
        """The slot cabled to ``if_name`` on ``switch``, or ``None``."""
        if if_name is None:
            return None
        return self._switch_ports.get((switch, if_name))

    @property
    def switches(self) -> frozenset[str]:
        """Every switch some slot is cabled to (each must be polled)."""
        return frozenset(switch for switch, _ in self._switch_ports)

    def switch_port_for_slot(self, slot: str) -> tuple[str, str] | None:
        """The (switch, ifName) cabled to ``slot``, for polling its link or MAC table."""
        return next((port for port, s in self._switch_ports.items() if s == slot), None)


def _entries(config: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    entries = config.get(section, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise PortMapError(f"'{section}' must be a list of tables")
    return entries


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PortMapError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _slot(entry: Mapping[str, Any], where: str) -> str:
    return _text(entry.get("slot"), f"{where}.slot")


def _put_unique(table: dict[_K, str], key: _K, slot: str, what: str) -> None:
    if key in table and table[key] != slot:
        raise PortMapError(f"{what} is mapped to both {table[key]!r} and {slot!r}")
    table[key] = slot
