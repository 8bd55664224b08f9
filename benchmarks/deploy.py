"""Golden-image deploy throughput: ``deploy_image`` vs dd (and zstd | dd) on the same loop device.

    .venv/bin/python benchmarks/deploy.py [--size 512M] [--rounds 3] [--workdir DIR]

Needs root, losetup and zstd. The target is a loop device with direct I/O over a file on the local
disk, written in full once before anything is timed (pre-allocated), so every tool runs at that
disk's bandwidth; the image's page cache is dropped before every run so each tool reads it from
the disk. MB/s counts image bytes (uncompressed) per second.

Method (benchmarks/fair.py): each deploy and its reference alternate on the same device, the
order swapped each round, at least 3 rounds; ratio = reference time / deploy time (above 1: faster
than the reference), min / median / max, with the load average before and after. References:

    raw            dd if=IMG of=DEV bs=4M oflag=direct
    raw + verify   the above, then dd if=DEV of=/dev/null bs=4M iflag=direct (dd checks nothing)
    zstd           zstd -dc IMG.zst | dd of=DEV bs=4M oflag=direct iflag=fullblock

The engine additionally computes SHA-256 of everything it writes (and reads back): on a CPU without
SHA extensions that single-threaded digest, not the disk, can be the ceiling, so its speed is shown.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair import Figure, compare
from wipe import loop_devices, parse_size

from imaging.deploy import deploy_image
from imaging.image_manifest import ImageManifest, build_manifest

BS = 4 << 20
MIB = 1 << 20


def make_image(path: Path, size: int) -> None:
    """A disk-image-like mix: a third random (already-compressed data), the rest text and zeros."""
    text = b"C:\\Windows\\System32\\drivers\\etc\\hosts 127.0.0.1 localhost\n" * (MIB // 60 + 1)
    with open(path, "wb") as f:
        for index, offset in enumerate(range(0, size, MIB)):
            n = min(MIB, size - offset)
            kind = index % 3
            f.write(os.urandom(n) if kind == 0 else text[:n] if kind == 1 else bytes(n))


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


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


def measure(dev: str, raw: Path, zst: Path, rounds: int) -> list[Figure]:
    dd_read = f"dd if={dev} of=/dev/null bs=4M iflag=direct status=none"
    cases = (
        ("raw", raw, "dd", f"dd if={raw} of={dev} bs=4M oflag=direct status=none"),
        ("zstd", zst, "zstd -dc | dd", f"zstd -qdc {zst} | dd of={dev} bs=4M oflag=direct iflag=fullblock status=none"),
    )
    figures: list[Figure] = []
    for kind, image, ref_name, ref_cmd in cases:
        manifest = build_manifest(image, name="bench", version="1")
        for verify in (False, True):
            name = f"deploy {kind}" + (" + read-back verify" if verify else "")
            figures += compare(
                f"{ref_name} + dd read" if verify else ref_name,
                lambda c=ref_cmd, v=verify: sh(f"{c} && {dd_read}" if v else c),
                {name: lambda i=image, m=manifest, v=verify: ours(i, dev, m, v)},
                rounds,
                setup=lambda i=image: drop_cache(i),
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=parse_size("512M"), help="image size (uncompressed)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (at least 3)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the image and backing file go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (losetup)")
    size = args.size - args.size % BS
    with tempfile.TemporaryDirectory(prefix="deploy-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        raw, zst = work / "golden.img", work / "golden.img.zst"
        make_image(raw, size)
        subprocess.run(["zstd", "-q", "-3", "-T0", str(raw), "-o", str(zst)], check=True)
        with loop_devices(work, 1, size) as (dev,):
            print(f"{dev}: direct-io loop over {work}; image {size >> 20} MiB, zstd {zst.stat().st_size >> 20} MiB")
            figures = measure(dev, raw, zst, args.rounds)
    print(f"\n{'run':<32} {'MB/s best':>9}  {'vs':<22} {'MB/s best':>9}  ratio min / median / max  load")
    for f in figures:
        r = f.ratios()
        print(f"{f.name:<32} {size / min(f.project) / 1e6:>9.1f}  {f.reference_name:<22} "
              f"{size / min(f.reference) / 1e6:>9.1f}  {r[0]:.2f} / {median(r):.2f} / {r[-1]:.2f}  "
              f"{f.load_before:.1f} -> {f.load_after:.1f}")  # fmt: skip
    print(f"\nSHA-256 on one core here (hashlib): {sha256_speed():.0f} MB/s")


if __name__ == "__main__":
    main()
