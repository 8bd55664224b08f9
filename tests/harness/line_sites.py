"""Site files for bench lines whose slots are switch ports (network erase, MAC identification)."""

from __future__ import annotations

from pathlib import Path

ONE_SWITCH = '[[switches]]\nname = "sw-bench-1"\nhost = "127.0.0.1"\n'
TWO_PORTS = (
    '{switch = "sw-bench-1", if_name = "Gi1/0/1", slot = "bench-1/slot-1"},\n'
    '  {switch = "sw-bench-1", if_name = "Gi1/0/2", slot = "bench-1/slot-2"},'
)


def switch_site_file(
    tmp_path: Path, switches: str = ONE_SWITCH, *, traps: str = "", ports: str = TWO_PORTS, slots: int = 3
) -> Path:
    """``site.toml`` for agent ``net-agent``: bench-1 with ``slots`` switch-port slots, wired by
    ``ports`` (TOML inline tables); ``switches`` and ``traps`` are appended as they are (any TOML)."""
    slot_list = ", ".join(f'{{position = {n}, port_kind = "switch"}}' for n in range(1, slots + 1))
    path = tmp_path / "site.toml"
    path.write_text(
        f"""agent = "net-agent"
erase_processes = 0
[[bench]]
name = "bench-1"
slots = [{slot_list}]
[port_map]
switch_ports = [
  {ports}
]
{switches}
{traps}
"""
    )
    return path
