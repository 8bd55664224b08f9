"""Site files for bench lines whose slots are switch ports (network erase, MAC identification)."""

from __future__ import annotations

from pathlib import Path

ONE_SWITCH = '[[switches]]\nname = "sw-bench-1"\nhost = "127.0.0.1"\n'
TWO_PORTS = (
    '{switch = "sw-bench-1", if_name = "Gi1/0/1", slot = "bench-1/slot-1"},\n'
    '  {switch = "sw-bench-1", if_name = "Gi1/0/2", slot = "bench-1/slot-2"},'
)


def net_agent_site_file(directory: Path, *, bench: str, port_kind: str, slots: int, tables: str) -> Path:
    """``site.toml`` for agent ``net-agent`` erasing in-process: one bench named ``bench`` with
    ``slots`` slots of ``port_kind``, then ``tables`` (the rest of the site, any TOML) as they are."""
    slot_list = ", ".join(f'{{position = {n}, port_kind = "{port_kind}"}}' for n in range(1, slots + 1))
    path = directory / "site.toml"
    path.write_text(
        f"""agent = "net-agent"
erase_processes = 0
[[bench]]
name = "{bench}"
slots = [{slot_list}]
{tables}"""
    )
    return path


def switch_site_file(
    tmp_path: Path, switches: str = ONE_SWITCH, *, traps: str = "", ports: str = TWO_PORTS, slots: int = 3
) -> Path:
    """``site.toml`` for agent ``net-agent``: bench-1 with ``slots`` switch-port slots, wired by
    ``ports`` (TOML inline tables); ``switches`` and ``traps`` are appended as they are (any TOML)."""
    wiring = f"""[port_map]
switch_ports = [
  {ports}
]
{switches}
{traps}
"""
    return net_agent_site_file(tmp_path, bench="bench-1", port_kind="switch", slots=slots, tables=wiring)
