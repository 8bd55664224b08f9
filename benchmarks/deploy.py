"""Golden-image deploy throughput: ``deploy_image`` vs dd (and zstd | dd) on the same loop device.

    .venv/bin/python benchmarks/deploy.py [--size 512M] [--repeat 2] [--workdir DIR]

Needs root, losetup and zstd. The target is a loop device with direct I/O over a file on the local
disk, so every tool runs at that disk's bandwidth; the image's page cache is dropped before every
run so each tool reads it from the disk. MB/s counts image bytes (uncompressed) per second.

    raw            dd if=IMG of=DEV bs=4M oflag=direct
    raw + verify   the above, then dd if=DEV of=/dev/null bs=4M iflag=direct (dd checks nothing)
    zstd           zstd -dc IMG.zst | dd of=DEV bs=4M oflag=direct iflag=fullblock

The engine additionally computes SHA-256 of everything it writes (and reads back): on a CPU without
SHA extensions that single-threaded digest, not the disk, can be the ceiling, so its speed is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imaging.deploy import deploy_image
from imaging.image_manifest import ImageManifest, build_manifest

BS = 4 << 20
MIB = 1 << 20


def parse_size(text: str) -> int:
    units = {"": 0, "K": 10, "M": 20, "G": 30}
    text = text.strip().upper()
    unit = text[-1] if text and text[-1] in units else ""
    try:
        return int(text.removesuffix(unit)) << units[unit]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 512M or 1G)") from exc


def make_image(path: Path, size: int) -> None:
    """A disk-image-like mix: a third random (already-compressed data), the rest text and zeros."""
    text = b"C:\\Windows\\System32\\drivers\\etc\\hosts 127.0.0.1 localhost\n" * (MIB // 60 + 1)
    with open(path, "wb") as f:
        for index, offset in enumerate(range(0, size, MIB)):
            n = min(MIB, size - offset)
            kind = index % 3
            f.write(os.urandom(n) if kind == 0 else text[:n] if kind == 1 else bytes(n))


@contextlib.contextmanager
def loop_device(backing: Path, size: int) -> Iterator[str]:
    with open(backing, "wb") as f:
        f.truncate(size)
    dev = subprocess.run(
        ["losetup", "--direct-io=on", "--find", "--show", str(backing)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def best_of(repeat: int, cold: list[Path], fn: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        for path in cold:
            drop_cache(path)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sh(command: str) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)


def ours(image: Path, dev: str, manifest: ImageManifest, verify: bool) -> None:
    result = deploy_image(image, dev, manifest=manifest, verify=verify)
    if not result.ok:
        raise RuntimeError(f"deploy to {dev} failed: {result.failure_reason}")


def sha256_speed(seconds: float = 1.0) -> float:
    block = os.urandom(8 * MIB)
    digest = hashlib.sha256()
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        digest.update(block)
        done += len(block)
    return done / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("512M"), help="image size (uncompressed)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best counts")
    parser.add_argument("--workdir", type=Path, default=None, help="where the image and backing file go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (losetup)")
    size = args.size - args.size % BS
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="deploy-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        raw, zst = work / "golden.img", work / "golden.img.zst"
        make_image(raw, size)
        subprocess.run(["zstd", "-q", "-3", "-T0", str(raw), "-o", str(zst)], check=True)
        raw_manifest = build_manifest(raw, name="bench", version="1")
        zst_manifest = build_manifest(zst, name="bench", version="1")
        with loop_device(work / "target.img", size) as dev:
            print(f"{dev}: direct-io loop over {work}; image {size >> 20} MiB, zstd {zst.stat().st_size >> 20} MiB")

            def measure(
                label: str, baseline: str, cold: Path, base: Callable[[], None], run: Callable[[], None]
            ) -> None:
                base_s = best_of(args.repeat, [cold], base)
                ours_s = best_of(args.repeat, [cold], run)
                rows.append((baseline, size / base_s / 1e6, 1.0))
                rows.append((label, size / ours_s / 1e6, base_s / ours_s))

            dd_write = f"dd if={raw} of={dev} bs=4M oflag=direct status=none"
            dd_read = f"dd if={dev} of=/dev/null bs=4M iflag=direct status=none"
            zstd_dd = f"zstd -qdc {zst} | dd of={dev} bs=4M oflag=direct iflag=fullblock status=none"
            measure("deploy raw", "dd raw", raw, lambda: sh(dd_write), lambda: ours(raw, dev, raw_manifest, False))
            measure(
                "deploy raw + read-back verify",
                "dd raw + dd read",
                raw,
                lambda: sh(f"{dd_write} && {dd_read}"),
                lambda: ours(raw, dev, raw_manifest, True),
            )
            measure(
                "deploy zstd", "zstd -dc | dd", zst, lambda: sh(zstd_dd), lambda: ours(zst, dev, zst_manifest, False)
            )
            measure(
                "deploy zstd + read-back verify",
                "zstd -dc | dd + dd read",
                zst,
                lambda: sh(f"{zstd_dd} && {dd_read}"),
                lambda: ours(zst, dev, zst_manifest, True),
            )
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'run':<{width}}  {'MB/s':>8}  {'vs base':>7}")
    for name, speed, ratio in rows:
        print(f"{name:<{width}}  {speed:>8.1f}  {ratio:>6.2f}x")
    print(f"\nSHA-256 on one core here (hashlib): {sha256_speed():.0f} MB/s")


if __name__ == "__main__":
    main()
