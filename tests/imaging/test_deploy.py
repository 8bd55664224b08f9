"""Golden-image deploy: raw and zstd images onto regular files and loop devices, byte-compared."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import zstandard
from harness.disks import MIB, loop_device
from harness.fuse_faults import faulty_image
from harness.requirements import require_root, require_tool

import imaging.deploy as deploy_module
import imaging.engine as engine_module
from imaging.deploy import DeployResult, TargetTooSmall, deploy_image
from imaging.deploy_source import ImageRejected
from imaging.engine import Progress
from imaging.errors import TargetInUse, TargetMounted, TargetRefused
from imaging.image_manifest import (
    ImageFormat,
    ImageManifest,
    ManifestError,
    build_manifest,
    load_manifest,
    manifest_path_for,
    save_manifest,
)
from imaging.piece_digest import PIECE_BYTES

CHUNK = 1 * MIB  # several pipeline segments even for small images
IMAGE_SIZE = 6 * MIB + 1234  # not a multiple of 512 or 4096: exercises the last partial block
TARGET_SIZE = 8 * MIB
FILL = 0xA5  # what the target held before: must survive past the end of the image


def _content(size: int) -> bytes:
    # Half random (incompressible), half repetitive (compressible): both zstd block kinds.
    half = size // 2
    return os.urandom(half) + (b"GOLDEN-IMAGE-" * (size // 13 + 1))[: size - half]


def _target_file(path: Path, size: int = TARGET_SIZE) -> Path:
    path.write_bytes(bytes([FILL]) * size)
    return path


def _raw_image(tmp_path: Path, size: int = IMAGE_SIZE) -> tuple[Path, bytes]:
    data = _content(size)
    image = tmp_path / "golden.img"
    image.write_bytes(data)
    save_manifest(build_manifest(image, name="golden", version="1.0"), manifest_path_for(image))
    return image, data


def _zstd_image(tmp_path: Path, size: int = IMAGE_SIZE, frames: int = 2) -> tuple[Path, bytes]:
    data = _content(size)
    image = tmp_path / "golden.img.zst"
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
    step = -(-size // frames)
    # Several concatenated frames, as pzstd and `cat a.zst b.zst` produce.
    image.write_bytes(b"".join(cctx.compress(data[i : i + step]) for i in range(0, size, step)))
    save_manifest(build_manifest(image, name="golden", version="1.0"), manifest_path_for(image))
    return image, data


def _assert_deployed(target: str, data: bytes, target_size: int, *, past_end: int | None = FILL) -> None:
    with open(target, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        content = f.read(target_size)
    assert content[: len(data)] == data, "target content differs from the image"
    if past_end is not None:
        assert content[len(data) :] == bytes([past_end]) * (target_size - len(data)), "bytes past the image changed"


def _assert_ok(result: DeployResult, manifest: ImageManifest) -> None:
    assert result.ok, result.failure_reason
    assert result.failure_reason is None and result.failure_offset is None
    assert (result.image_name, result.image_version) == (manifest.name, manifest.version)
    assert result.image_sha256 == manifest.sha256
    assert result.written_sha256 == result.readback_sha256 == manifest.pieces_sha256 == result.expected_digest
    assert result.content_digest == f"pieces-sha256/{PIECE_BYTES}"
    assert result.bytes_written == manifest.size_bytes


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


# ---------------------------------------------------------------- manifests


def test_manifest_is_built_from_the_uncompressed_content(tmp_path):
    image, data = _zstd_image(tmp_path)
    manifest = load_manifest(manifest_path_for(image))
    assert manifest.format is ImageFormat.ZSTD
    assert manifest.size_bytes == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.compressed_sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
    assert ImageManifest.from_dict(json.loads(manifest_path_for(image).read_text())) == manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "ab" * 31}, "sha256 must be 64 lowercase hex"),
        ({"sha256": "AB" * 32}, "sha256 must be 64 lowercase hex"),
        ({"size_bytes": 0}, "size_bytes must be a positive integer"),
        ({"size_bytes": "12"}, "size_bytes must be a positive integer"),
        ({"format": "gzip"}, "format must be one of"),
        ({"name": " "}, "name must be a non-empty string"),
        ({"compressed_sha256": "00" * 32}, "only meaningful for a zstd image"),
        ({"extra": 1}, "unknown fields extra"),
    ],
)
def test_invalid_manifest_is_rejected_with_its_reason(change, message):
    good = {"name": "golden", "version": "1", "format": "raw", "size_bytes": 4096, "sha256": "0" * 64}
    with pytest.raises(ManifestError, match=message):
        ImageManifest.from_dict({**good, **change})


def test_missing_manifest_field_and_bad_json_are_rejected(tmp_path):
    with pytest.raises(ManifestError, match="lacks sha256, size_bytes"):
        ImageManifest.from_dict({"name": "g", "version": "1", "format": "raw"})
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="cannot read manifest"):
        deploy_image(tmp_path / "absent.img", str(_target_file(tmp_path / "t.img")))


# ---------------------------------------------------------------- regular-file targets


@pytest.mark.parametrize("target_size", [TARGET_SIZE, IMAGE_SIZE], ids=["larger-target", "exact-fit"])
def test_raw_image_deployed_byte_exact(tmp_path, target_size):
    image, data = _raw_image(tmp_path)
    target = _target_file(tmp_path / "target.img", target_size)
    result = deploy_image(image, str(target), chunk=CHUNK)
    _assert_ok(result, load_manifest(manifest_path_for(image)))
    assert result.image_format is ImageFormat.RAW and result.compressed_sha256 is None
    assert result.io_mode == "direct"
    assert result.media is not None and result.media.path == str(target)
    _assert_deployed(str(target), data, target_size)


def test_zstd_image_of_several_frames_deployed_byte_exact(tmp_path):
    image, data = _zstd_image(tmp_path, frames=3)
    target = _target_file(tmp_path / "target.img")
    manifest = load_manifest(manifest_path_for(image))
    result = deploy_image(image, str(target), manifest=manifest, chunk=CHUNK)
    _assert_ok(result, manifest)
    assert result.image_format is ImageFormat.ZSTD
    assert result.compressed_sha256 == manifest.compressed_sha256
    _assert_deployed(str(target), data, TARGET_SIZE)


def test_corrupted_raw_image_fails_on_its_digest(tmp_path):
    image, _ = _raw_image(tmp_path)
    manifest = load_manifest(manifest_path_for(image))
    _flip(image, 3 * MIB + 7)
    result = deploy_image(image, str(_target_file(tmp_path / "t.img")), manifest=manifest, chunk=CHUNK)
    assert not result.ok
    assert result.failure_reason is not None and result.failure_reason.startswith(
        f"image is corrupt: SHA-256 of its {PIECE_BYTES}-byte pieces"
    )
    assert result.written_sha256 is not None and result.written_sha256 != manifest.pieces_sha256
    assert result.readback_sha256 is None  # nothing worth reading back
    assert result.bytes_written == manifest.size_bytes


@pytest.mark.parametrize("where", [0.25, 0.75], ids=["random-half", "repetitive-half"])
def test_corrupted_zstd_stream_is_detected(tmp_path, where):
    image, _ = _zstd_image(tmp_path, frames=1)
    manifest = load_manifest(manifest_path_for(image))
    _flip(image, int(image.stat().st_size * where))
    result = deploy_image(image, str(_target_file(tmp_path / "t.img")), manifest=manifest, chunk=CHUNK)
    assert not result.ok
    # zstd's own checks or the content digest catch it, whichever comes first; never a success.
    assert (result.failure_reason or "").startswith(("image is corrupt", "image is truncated"))


def test_truncated_zstd_image_is_detected(tmp_path):
    image, _ = _zstd_image(tmp_path, frames=1)
    manifest = load_manifest(manifest_path_for(image))
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    result = deploy_image(image, str(_target_file(tmp_path / "t.img")), manifest=manifest, chunk=CHUNK)
    assert not result.ok
    assert (result.failure_reason or "").startswith("image is truncated: it ended after")
    assert result.failure_offset is not None and 0 < result.failure_offset < manifest.size_bytes
    assert result.written_sha256 is None and result.readback_sha256 is None
    assert result.bytes_written <= result.failure_offset


def test_zstd_image_longer_than_its_manifest_is_detected(tmp_path):
    image, data = _zstd_image(tmp_path)
    short = len(data) - 4096
    manifest = ImageManifest("golden", "1.0", ImageFormat.ZSTD, short, hashlib.sha256(data[:short]).hexdigest())
    target = _target_file(tmp_path / "t.img")
    result = deploy_image(image, str(target), manifest=manifest, chunk=CHUNK)
    assert not result.ok
    assert result.failure_reason == f"image is longer than its manifest's {short} bytes"
    _assert_deployed(str(target), data[:short], TARGET_SIZE)  # nothing written past the manifest's size


def test_compressed_digest_mismatch_fails(tmp_path):
    image, _ = _zstd_image(tmp_path)
    manifest = load_manifest(manifest_path_for(image))
    wrong = ImageManifest(**{**manifest.to_dict(), "compressed_sha256": "0" * 64})
    result = deploy_image(image, str(_target_file(tmp_path / "t.img")), manifest=wrong, chunk=CHUNK)
    assert not result.ok
    assert (result.failure_reason or "").startswith("compressed image differs from its manifest")


def test_target_smaller_than_the_image_is_refused_before_writing(tmp_path):
    image, _ = _raw_image(tmp_path)
    target = _target_file(tmp_path / "t.img", IMAGE_SIZE - 1)
    with pytest.raises(TargetTooSmall, match=f"smaller than image golden 1.0 \\({IMAGE_SIZE} bytes\\)"):
        deploy_image(image, str(target))
    assert target.read_bytes() == bytes([FILL]) * (IMAGE_SIZE - 1)


def test_image_not_matching_its_manifest_is_rejected_before_writing(tmp_path):
    image, _ = _raw_image(tmp_path)
    manifest = load_manifest(manifest_path_for(image))
    target = _target_file(tmp_path / "t.img")
    bigger = ImageManifest(**{**manifest.to_dict(), "size_bytes": IMAGE_SIZE + 1})
    with pytest.raises(ImageRejected, match=f"has {IMAGE_SIZE} bytes, its manifest says {IMAGE_SIZE + 1}"):
        deploy_image(image, str(target), manifest=bigger)
    as_zstd = ImageManifest(**{**manifest.to_dict(), "format": "zstd"})
    with pytest.raises(ImageRejected, match="not zstd-compressed"):
        deploy_image(image, str(target), manifest=as_zstd)
    assert target.read_bytes() == bytes([FILL]) * TARGET_SIZE


def test_progress_reports_write_then_verify_monotonically(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "PROGRESS_INTERVAL", 0.0)  # an event per chunk
    image, _ = _raw_image(tmp_path)
    events: list[Progress] = []
    result = deploy_image(image, str(_target_file(tmp_path / "t.img")), progress=events.append, chunk=CHUNK)
    assert result.ok, result.failure_reason
    for phase in ("write", "verify"):
        done = [e.bytes_done for e in events if e.phase == phase]
        assert len(done) >= IMAGE_SIZE // CHUNK, phase
        assert all(a < b for a, b in itertools.pairwise(done)), f"{phase} progress not increasing"
        assert done[-1] == IMAGE_SIZE
        assert all(e.bytes_total == IMAGE_SIZE for e in events if e.phase == phase)
    phases = [e.phase for e in events]
    assert phases.index("verify") > len(phases) - phases[::-1].index("write") - 1  # all writes come first


def test_read_back_mismatch_is_detected(tmp_path, monkeypatch):
    image, _ = _raw_image(tmp_path)
    target = _target_file(tmp_path / "t.img")
    original = deploy_module._read_back
    corrupt_at = 2 * MIB + 5

    def corrupt_then_read_back(io, *args, **kwargs):
        # A bit rots between the write and the read-back (the target, not the stream, is wrong).
        _flip(target, corrupt_at)
        return original(io, *args, **kwargs)

    monkeypatch.setattr(deploy_module, "_read_back", corrupt_then_read_back)
    result = deploy_image(image, str(target), chunk=CHUNK)
    assert not result.ok
    assert (result.failure_reason or "").startswith("read-back verification failed")
    assert result.written_sha256 == result.expected_digest  # the stream itself was right
    assert result.readback_sha256 is not None and result.readback_sha256 != result.expected_digest


def test_verify_false_skips_the_read_back(tmp_path):
    image, data = _raw_image(tmp_path)
    target = _target_file(tmp_path / "t.img")
    result = deploy_image(image, str(target), verify=False, chunk=CHUNK)
    assert result.ok and result.readback_sha256 is None
    assert result.written_sha256 == result.expected_digest
    _assert_deployed(str(target), data, TARGET_SIZE)


def test_cancel_fails_closed_with_the_offset(tmp_path):
    image, _ = _raw_image(tmp_path)
    cancel = threading.Event()

    def cancel_after_first(p: Progress) -> None:
        cancel.set()

    result = deploy_image(
        image, str(_target_file(tmp_path / "t.img")), progress=cancel_after_first, cancel=cancel, chunk=CHUNK
    )
    assert not result.ok
    assert result.failure_reason == "cancelled by operator during write"
    assert result.failure_offset is not None and result.failure_offset == result.bytes_written < IMAGE_SIZE


def test_deploying_an_image_onto_itself_is_refused(tmp_path):
    image, _ = _raw_image(tmp_path)
    with pytest.raises(TargetRefused, match="the image itself"):
        deploy_image(image, str(image))


# ---------------------------------------------------------------- loop devices (root)


@pytest.fixture
def loop(tmp_path: Path):
    require_root()
    require_tool("losetup")
    backing = _target_file(tmp_path / "loop.img")
    with loop_device(backing, "--direct-io=on") as dev:
        yield dev


@pytest.mark.parametrize("fmt", ["raw", "zstd"])
def test_image_deployed_to_a_loop_device_byte_exact(loop, tmp_path, fmt):
    image, data = _raw_image(tmp_path) if fmt == "raw" else _zstd_image(tmp_path)
    manifest = load_manifest(manifest_path_for(image))
    result = deploy_image(image, loop, chunk=CHUNK)
    _assert_ok(result, manifest)
    assert result.io_mode == "direct"
    assert result.media is not None and result.media.target_kind == "block"
    # The last partial 512-byte sector was read-modify-written: the device's bytes after it survive.
    _assert_deployed(loop, data, TARGET_SIZE)


def test_loop_device_detached_mid_deploy_is_not_a_success(loop, tmp_path):
    image, _ = _zstd_image(tmp_path)
    detached: list[bool] = []

    def detach(_p: Progress) -> None:
        if not detached:
            subprocess.run(["losetup", "-d", loop], check=True)
            detached.append(True)

    result = deploy_image(image, loop, progress=detach, chunk=CHUNK)
    assert detached
    assert not result.ok
    assert "detached" in (result.failure_reason or "")


def test_mounted_loop_device_is_refused(loop, tmp_path):
    require_tool("mkfs.ext4")
    image, _ = _raw_image(tmp_path)
    subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, capture_output=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", loop, str(mnt)], check=True)
    try:
        with pytest.raises(TargetMounted, match=str(mnt)):
            deploy_image(image, loop)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_backing_file_of_a_loop_device_is_refused(loop, tmp_path):
    image, _ = _raw_image(tmp_path)
    with pytest.raises(TargetInUse, match="backing file"):
        deploy_image(image, str(tmp_path / "loop.img"))


# ---------------------------------------------------------------- injected EIO (root, FUSE)

FAULT_DISK = 16 * MIB


def test_eio_during_write_fails_closed_at_the_failing_chunk(fuse_ready, tmp_path):
    image, _ = _raw_image(tmp_path)
    backing = _target_file(tmp_path / "backing.img", FAULT_DISK)
    bad_sector = 4 * MIB // 512
    # A whole-request range: the loop driver ignores a short write from its backing file.
    with faulty_image(backing, tmp_path / "mnt", write_eio=[f"{bad_sector}:{bad_sector + 2048}"]) as exposed:
        with loop_device(exposed) as dev:
            result = deploy_image(image, dev, chunk=CHUNK)
    assert not result.ok
    assert result.failure_reason == "I/O error during write"
    assert result.failure_offset == bad_sector * 512
    assert result.bytes_written == bad_sector * 512
    assert result.written_sha256 is None and result.readback_sha256 is None


def test_eio_during_read_back_fails_closed(fuse_ready, tmp_path):
    image, _ = _zstd_image(tmp_path)
    backing = _target_file(tmp_path / "backing.img", FAULT_DISK)
    bad_sector = 5 * MIB // 512 + 3
    with faulty_image(backing, tmp_path / "mnt", read_eio=[f"{bad_sector}:{bad_sector + 1}"]) as exposed:
        with loop_device(exposed) as dev:
            result = deploy_image(image, dev, chunk=CHUNK)
    assert not result.ok
    assert result.written_sha256 == result.expected_digest  # the write itself succeeded
    assert result.failure_reason == "I/O error during read"
    assert result.failure_offset == 5 * MIB
