"""Overwrite + full verify: ``factory wipe`` and the imaging engine vs dd on the same loop device.

    .venv/bin/python benchmarks/wipe.py [--size 4G] [--parallel 4] [--rounds 3] [--no-nwipe]

Needs root and losetup. Each target is a loop device with direct I/O over a file on the local
disk, and every backing file is written in full once before anything is timed (pre-allocated:
no tool pays for the file system allocating blocks another tool then reuses).

Reference (the practical limit), with the engine's own block size (``imaging.overwrite_pass.
DEFAULT_CHUNK``, 8 MiB) and O_DIRECT both ways, writing and reading back every byte as a full
verify does (dd checks nothing it reads, so the reference never pays for a comparison):

* zeros: ``dd if=/dev/zero of=DEV bs=8M oflag=direct`` then ``dd if=DEV of=/dev/null bs=8M
  iflag=direct``;
* random: the same pattern source the engine writes, an AES-256-CTR keystream, from
  ``openssl enc -aes-256-ctr -bufsize 65536`` (AES-NI, the fastest keystream a shell pipeline has;
  its default 8 KiB writes would make the reference 3-4 times slower) piped into
  ``dd of=DEV bs=8M iflag=fullblock oflag=direct``, then the same ``dd`` read. ``/dev/urandom``
  (the kernel's ChaCha20, several times slower than AES-NI here) would be a slower, flattering
  reference; a reference that regenerated the stream to compare would be slower still;
* random, the device's limit for those bytes: the same AES-256-CTR keystream, made before anything
  is timed and held in a file on tmpfs (``/dev/shm``), written by ``dd if=FILE of=DEV bs=8M
  oflag=direct``, then the same ``dd`` read. The reference makes no pattern at all, so it flatters
  dd; it is here because this host's virtual disk takes zeros faster than incompressible bytes
  (1 GiB O_DIRECT writes, 7 Dec: zeros 0.37-0.47 s, random bytes from tmpfs 0.51-0.66 s), so dd of
  /dev/zero is a limit no random overwrite can reach on it.

Method (benchmarks/fair.py): each round runs the reference and every project run once on the same
device, in an order rotated round by round; each ratio is that round's reference time / the
project's time (above 1: faster than the reference), reported as min / median / max over at least
3 rounds, with the load average before and after. Every project run (zeros and random, full verify)
is measured against dd of /dev/zero (the device's own limit: no pattern to make, nothing compared),
then the random runs again, in rounds of their own, against dd of the random bytes from memory and
against openssl's keystream into dd. Project runs:

* ``factory wipe DEV --yes --method M --verify full`` - the user's command, as a new process
  (start-up, imports, signing the certificate included);
* the engine call ``imaging.engine.erase`` alone, in this process.

Then N devices at once: N x the engine (zeros, full verify) in parallel vs N x dd (/dev/zero write
+ read) in parallel, aggregate, alternated the same way. nwipe (zero + verify=last), if installed,
is timed once for context only.

Huge pages: the engine's buffers ask for transparent huge pages (``imaging.patterns.aligned_buffer``);
dd cannot, so the run sets them for every process (``fair.huge_pages_for_everyone``, restored after)
and dd's buffers get them too. With dd on the kernel's default 4 KiB pages it ran at half speed
(1501 against 3229-3596 MB/s) and the engine measured 2.02 (wipe zeros) against it: not a fair figure.

Measured 7 Dec 2026 (later, d8bf794 + this reference), 4 GiB, 3 rounds, two runs, nothing else
running (load 0.7-2.8, the benchmark's own). ``factory wipe`` zeros vs dd of zeros 0.82 / 0.84 /
0.95 and 0.98 / 1.03 / 1.24; random vs dd of zeros 0.74 / 0.77 / 0.80 and 0.81 / 0.96 / 1.05;
**random vs dd of the same random bytes 0.91 / 0.99 / 1.22 and 0.95 / 1.00 / 1.15**; random vs
openssl|dd 1.51 / 1.60 / 1.70 and 1.59 / 1.82 / 1.83. The engine call alone: zeros 0.94 / 1.06 /
1.08 and 1.10 / 1.19 / 1.36, random vs dd of random 0.94 / 1.06 / 1.35 and 0.98 / 1.06 / 1.21.
4 devices at once 1.25 / 1.28 / 1.42 (load 2.0 -> 3.2). What ``factory wipe`` adds to the engine
is its start-up, about 0.2-0.3 s before the erase begins on this host: imports (~0.17 s) and
typer's coercion of the 12 options through pydantic TypeAdapters (~0.06-0.09 s); the erase itself
and the signing after it take what the engine alone does. On 4 GiB at ~2.7 GB/s that is 7-10%;
on a real disk it vanishes. On a faster host later that day (dd of zeros 4.3 GB/s), 5 rounds, load
1.4-3.0: ``factory wipe`` zeros 0.88 / 1.09 / 1.25; random vs dd of the same random bytes 0.88 / 0.94 /
1.04 (the engine alone 0.94 / 0.98 / 1.14: the start-up is a larger share of a faster run), vs
openssl|dd 1.70 / 1.71 / 1.78; 4 devices at once 1.11 / 1.14 / 1.28.
Since then the project's bytecode is written before anything is timed (``fair.compile_project``):
these machines set PYTHONDONTWRITEBYTECODE, so every timed ``factory wipe`` had compiled every project
module it imported, about 0.1 s per start. Another host, 7 Dec 2026, 5 rounds (load 0.9-2.6, dd of
zeros 3.3 GB/s): ``factory wipe`` zeros 0.73 / 1.07 / 1.60, random vs dd of the same random bytes
0.83 / 1.01 / 1.24 (the engine alone 1.08 / 1.17 / 1.49), vs openssl|dd 1.68 / 1.80 / 2.08; 4
devices at once 1.14 / 1.22 / 1.36.
Earlier figures: docs/benchmarks.md ("Wipe").
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
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fair import Figure, compare, compile_project, huge_pages_for_everyone, load_average, timed

from factory.kernel.config import Settings
from factory.kernel.site_keys import init_keys
from imaging.engine import erase
from imaging.overwrite_pass import DEFAULT_CHUNK
from imaging.patterns import aligned_buffer, make_pattern
from imaging.result import Level, VerifyMode

BS = DEFAULT_CHUNK  # the reference uses the engine's block size
# openssl enc's writes: its default 8 KiB buffer makes the pipeline 3-4 times slower than the
# pipe's own 64 KiB capacity allows (measured: 250 vs 930 MB/s into /dev/null).
PIPE = "65536"
FACTORY = str(Path(sys.executable).parent / "factory")


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
            # Written in full (untimed): every block exists before the first timed run.
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={backing}", f"bs={BS}", f"count={size // BS}", "conv=fsync", "status=none"],
                check=True,
            )
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


@contextlib.contextmanager
def random_bytes_in_memory(size: int) -> Iterator[Path | None]:
    """``size`` bytes of AES-256-CTR keystream (what the random pattern writes: incompressible) in a
    file on tmpfs, made before anything is timed; None where /dev/shm cannot hold them."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shutil.disk_usage(shm).free < size + (256 << 20):
        yield None
        return
    path = shm / f"wipe-bench-random-{os.getpid()}"
    try:
        pattern, zeros, buf = make_pattern("random"), aligned_buffer(BS), aligned_buffer(BS)
        with open(path, "wb") as out:
            for offset in range(0, size, BS):
                pattern.fill(buf, offset, BS, zeros)
                out.write(buf)
        yield path
    finally:
        path.unlink(missing_ok=True)


def dd_write_read(dev: str, size: int, method: str = "zeros", source: Path | None = None) -> None:
    """dd write then dd read of every byte, O_DIRECT, the engine's block size. The bytes written:
    /dev/zero ("zeros"), ``source`` (a file in memory), or openssl's keystream ("random")."""
    count = str(size // BS)
    write = ["dd", f"of={dev}", f"bs={BS}", f"count={count}", "oflag=direct", "status=none"]
    if source is not None:
        subprocess.run([*write, f"if={source}"], check=True)
    elif method == "zeros":
        subprocess.run([*write, "if=/dev/zero"], check=True)
    else:
        key, iv = os.urandom(32).hex(), bytes(16).hex()
        stream = ["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", iv, "-nosalt", "-in", "/dev/zero"]
        stream += ["-bufsize", PIPE]
        with subprocess.Popen(stream, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as source:
            assert source.stdout is not None
            subprocess.run([*write, "iflag=fullblock"], stdin=source.stdout, check=True)
            source.stdout.close()
            source.kill()  # it would write /dev/zero's keystream forever
    subprocess.run(
        ["dd", f"if={dev}", "of=/dev/null", f"bs={BS}", f"count={count}", "iflag=direct", "status=none"],
        check=True,
    )


def engine(dev: str, method: str) -> None:
    result = erase(dev, level=Level.CLEAR, method=method, verify=VerifyMode.FULL)
    if not result.ok:
        raise RuntimeError(f"erase of {dev} failed: {result.failure_reason}")


def factory_wipe(dev: str, method: str, home: Path) -> None:
    done = subprocess.run(
        [FACTORY, "wipe", dev, "--yes", "--method", method, "--verify", "full", "--out", str(home / "cert.json")],
        env={**os.environ, "FACTORY_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"factory wipe {dev} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


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


def single(dev: str, size: int, rounds: int, home: Path) -> list[Figure]:
    """Every project run against the device's limit for zeros (dd of /dev/zero); the random ones
    again against the device's limit for random bytes (dd of the same keystream, made beforehand,
    from memory), then against the pattern source's limit (openssl's AES-256-CTR into dd)."""
    runs: dict[str, Callable[[], object]] = {}
    for method in ("zeros", "random"):
        runs[f"factory wipe {method}"] = lambda m=method: factory_wipe(dev, m, home)
        runs[f"engine {method}"] = lambda m=method: engine(dev, m)
    device = f"dd write (/dev/zero) + dd read ({BS >> 20}M, O_DIRECT)"
    figures = compare(device, lambda: dd_write_read(dev, size), runs, rounds)
    randoms = {name: run for name, run in runs.items() if name.endswith("random")}
    with random_bytes_in_memory(size) as held:
        if held is None:
            print("no room in /dev/shm for the random bytes: that reference is left out", flush=True)
        else:
            memory = f"dd write (random bytes from tmpfs) + dd read ({BS >> 20}M, O_DIRECT)"
            figures += compare(memory, lambda: dd_write_read(dev, size, source=held), randoms, rounds)
    source = f"dd write (openssl aes-256-ctr) + dd read ({BS >> 20}M, O_DIRECT)"
    return figures + compare(source, lambda: dd_write_read(dev, size, "random"), randoms, rounds)


_REFERENCE_LABELS = (("openssl", "vs openssl|dd"), ("tmpfs", "vs dd of random"), ("/dev/zero", "vs dd of zeros"))


def report(figures: list[Figure], size: int) -> None:
    """One line per figure; every run writes and reads back (verifies) every byte."""
    print(f"\n{'figure (write + full verify)':<48} {'MB/s best':>9}  {'ratio min / median / max':>24}  load")
    for f in figures:
        nbytes = 2 * size * (int(f.name.split(" x ")[0]) if " x " in f.name else 1)
        r = f.ratios()
        ref_best = nbytes / min(f.reference) / 1e6
        ref = next((label for key, label in _REFERENCE_LABELS if key in f.reference_name), "vs dd")
        print(f"{f.name + ' ' + ref:<48} {nbytes / min(f.project) / 1e6:>9.1f}  {r[0]:>6.2f} / {median(r):>5.2f} / "
              f"{r[-1]:>5.2f}   {f.load_before:.1f} -> {f.load_after:.1f}  (ref best {ref_best:.0f} MB/s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=parse_size("4G"), help="per single device")
    parser.add_argument("--parallel", type=int, default=4, help="devices in the concurrent run (0: none)")
    parser.add_argument("--parallel-size", type=parse_size, default=None, help="per device (default size/4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (at least 3)")
    parser.add_argument("--no-nwipe", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the backing files go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (losetup)")
    size = args.size - args.size % BS
    psize = (args.parallel_size or size // max(args.parallel, 1)) // BS * BS
    compile_project()  # factory wipe starts as on an installed site
    with huge_pages_for_everyone() as pages:
        print(pages, flush=True)
        run(args, size, psize)


def run(args: argparse.Namespace, size: int, psize: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wipe-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        init_keys(Settings(home=home, database_url=f"sqlite:///{home / 'factory.db'}", site_name="bench-site"))
        with loop_devices(workdir, 1, size) as (dev,):
            print(f"single device: {dev}, {size >> 20} MiB, direct-io loop over {workdir}", flush=True)
            figures = single(dev, size, args.rounds, home)
            if not args.no_nwipe and shutil.which("nwipe"):
                load = load_average()
                seconds = timed(lambda: nwipe(dev, workdir))
                speed = 2 * size / seconds / 1e6
                print(f"nwipe zero + verify=last, once, for context: {speed:.1f} MB/s (load {load:.1f})")
        if args.parallel < 1:
            report(figures, size)
            return
        with loop_devices(workdir, args.parallel, psize) as devices:
            n = len(devices)
            print(f"{n} devices at once: {psize >> 20} MiB each", flush=True)
            figures += compare(
                f"{n} x dd in parallel",
                lambda: parallel(devices, lambda d: dd_write_read(d, psize)),
                {f"{n} x engine zeros in parallel": lambda: parallel(devices, lambda d: engine(d, "zeros"))},
                args.rounds,
            )
    report(figures[:-1], size)
    report(figures[-1:], psize)


if __name__ == "__main__":
    main()
