"""Overwrite + full verify throughput: the imaging engine vs dd and nwipe on the same loop device.

    .venv/bin/python benchmarks/wipe.py [--size 1G] [--parallel 4] [--repeat 2] [--no-nwipe]

Needs root and losetup. Each target is a loop device with direct I/O over a file on the local disk,
so every tool runs at that disk's real bandwidth. Throughput counts bytes written plus bytes read
back (2 x size per device), so "dd" here is `dd oflag=direct` followed by `dd iflag=direct`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imaging.engine import erase
from imaging.result import Level, VerifyMode

BS = 4 << 20


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 512M or 1G)")
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2)]


@contextlib.contextmanager
def loop_devices(workdir: Path, count: int, size: int) -> Iterator[list[str]]:
    devices: list[str] = []
    try:
        for i in range(count):
            backing = workdir / f"bench{i}.img"
            with open(backing, "wb") as f:
                f.truncate(size)
            out = subprocess.run(
                ["losetup", "--direct-io=on", "--find", "--show", str(backing)],
                check=True,
                capture_output=True,
                text=True,
            )
            devices.append(out.stdout.strip())
        yield devices
    finally:
        for dev in devices:
            subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dd_write_read(dev: str, size: int) -> None:
    count = str(size // BS)
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={dev}", "bs=4M", f"count={count}", "oflag=direct", "status=none"],
        check=True,
    )
    subprocess.run(
        ["dd", f"if={dev}", "of=/dev/null", "bs=4M", f"count={count}", "iflag=direct", "status=none"],
        check=True,
    )


def ours(dev: str, method: str) -> None:
    result = erase(dev, level=Level.CLEAR, method=method, verify=VerifyMode.FULL)
    if not result.ok:
        raise RuntimeError(f"erase of {dev} failed: {result.failure_reason}")


def nwipe(dev: str, logdir: Path) -> None:
    log = logdir / f"nwipe-{os.path.basename(dev)}.log"
    # Always name the device: without one nwipe wipes every disk it finds.
    subprocess.run(
        ["nwipe", "--autonuke", "--nogui", "--nousb", "--method=zero", "--verify=last", "--noblank",
         f"--logfile={log}", dev],
        check=False, capture_output=True, timeout=3600,
    )  # fmt: skip
    text = log.read_text(errors="replace") if log.exists() else ""
    name = re.escape(os.path.basename(dev))
    # nwipe exits 0 even on failure; its log's error summary and drive status tell.
    clean = re.search(rf"^\s*{name} \|\s+0 \|\s+0 \|\s+0\s*$", text, re.MULTILINE)
    erased = re.search(rf"^\s*{name} \| Erased \|", text, re.MULTILINE)
    if not (clean and erased and "Nwipe successfully completed" in text):
        raise RuntimeError(f"nwipe did not report a clean erase; see {log}")


def parallel(devices: list[str], work: Callable[[str], None]) -> None:
    errors: list[BaseException] = []

    def run(dev: str) -> None:
        try:
            work(dev)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def best_of(repeat: int, fn: Callable[[], None]) -> float:
    return min(timed(fn) for _ in range(repeat))


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"), help="per single device")
    parser.add_argument("--parallel", type=int, default=4, help="devices in the concurrent run")
    parser.add_argument("--parallel-size", type=parse_size, default=None, help="per device (default size/4)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best counts")
    parser.add_argument("--no-nwipe", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the backing files go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (losetup)")
    size = args.size - args.size % BS
    psize = (args.parallel_size or size // args.parallel) // BS * BS
    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="wipe-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        with loop_devices(workdir, 1, size) as (dev,):
            print(f"single device: {dev}, {size >> 20} MiB, direct-io loop over {workdir}", flush=True)
            dd = mbps(2 * size, best_of(args.repeat, lambda: dd_write_read(dev, size)))
            rows.append(("dd write + dd read (4M, direct)", dd, 1.0))
            for method in ("zeros", "random"):
                speed = mbps(2 * size, best_of(args.repeat, lambda m=method: ours(dev, m)))
                rows.append((f"engine {method} + full verify", speed, speed / dd))
            if not args.no_nwipe and shutil.which("nwipe"):
                speed = mbps(2 * size, best_of(1, lambda: nwipe(dev, workdir)))
                rows.append(("nwipe zero + verify=last", speed, speed / dd))
        with loop_devices(workdir, args.parallel, psize) as devices:
            total = 2 * psize * len(devices)
            print(f"{len(devices)} devices at once: {psize >> 20} MiB each", flush=True)
            pdd = mbps(total, best_of(args.repeat, lambda: parallel(devices, lambda d: dd_write_read(d, psize))))
            rows.append((f"{len(devices)} x dd in parallel (aggregate)", pdd, 1.0))
            speed = mbps(total, best_of(args.repeat, lambda: parallel(devices, lambda d: ours(d, "zeros"))))
            rows.append((f"{len(devices)} x engine zeros in parallel (aggregate)", speed, speed / pdd))
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'run':<{width}}  {'MB/s':>8}  {'vs dd':>6}")
    for name, speed, ratio in rows:
        print(f"{name:<{width}}  {speed:>8.1f}  {ratio:>5.2f}x" if ratio is not None else f"{name}  {speed:.1f}")


if __name__ == "__main__":
    main()
