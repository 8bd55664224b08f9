"""The pieces digest (imaging/piece_digest.py): the same value however the content is split into
spans and whichever threads hash it; what a manifest records; what a deploy checks with it."""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imaging.deploy import deploy_image
from imaging.image_manifest import (
    MIN_PIECE_BYTES,
    ImageManifest,
    ManifestError,
    build_manifest,
    load_manifest,
    manifest_path_for,
    save_manifest,
)
from imaging.piece_digest import PIECE_BYTES, PieceHasher, digest_name, pieces_root, split_in_runs

PIECE = 64 * 1024  # small pieces: many of them, and spans that end inside one


def _by_pieces(data: bytes, piece: int) -> str:
    return pieces_root([hashlib.sha256(data[i : i + piece]).digest() for i in range(0, len(data), piece)])


def _fed(data: bytes, spans: list[int], pool: ThreadPoolExecutor | None = None, piece: int = PIECE) -> str:
    hasher, at = PieceHasher(piece, pool), 0
    for length in spans:
        hasher.update(memoryview(data)[at : at + length])
        at += length
    assert at == len(data)
    return hasher.hexdigest()


def _random_spans(size: int, rng: random.Random) -> list[int]:
    spans, left = [], size
    while left:
        spans.append(min(left, rng.choice([1, 511, PIECE - 1, PIECE, PIECE + 3, 5 * PIECE, 9 * PIECE + 17])))
        left -= spans[-1]
    return spans


@pytest.mark.parametrize("size", [1, PIECE - 1, PIECE, 3 * PIECE, 11 * PIECE + 12345])
def test_the_digest_does_not_depend_on_how_the_content_is_split_or_hashed(size: int) -> None:
    data, rng = os.urandom(size), random.Random(size)
    expected = _by_pieces(data, PIECE)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            spans = _random_spans(size, rng)
            assert _fed(data, spans) == expected
            assert _fed(data, spans, pool) == expected
    assert expected != hashlib.sha256(data).hexdigest()  # a digest of its own kind, not the plain one


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that counts the tasks it is given."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers)
        self.tasks = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.tasks += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("hashers", [2, 3, 4])
def test_a_span_is_hashed_as_one_run_of_pieces_per_cpu(hashers: int) -> None:
    # 128 pieces in one span: the caller's thread takes one run and each other hasher one task,
    # not a task per piece (which left the caller one piece and a single helper the other 127).
    data = os.urandom(128 * PIECE + 100)
    with CountingPool(hashers - 1) as pool:
        hasher = PieceHasher(PIECE, pool)
        hasher.hashers = hashers
        hasher.update(memoryview(data))
        assert pool.tasks == hashers - 1
    assert hasher.hexdigest() == _by_pieces(data, PIECE)


def test_runs_of_pieces_keep_their_order_and_differ_in_length_by_one_at_most() -> None:
    pieces = [memoryview(bytes([n])) for n in range(10)]
    for count in range(1, 13):
        runs = split_in_runs(pieces, count)
        assert [bytes(p) for run in runs for p in run] == [bytes(p) for p in pieces]
        assert len(runs) == min(count, len(pieces))
        assert max(map(len, runs)) - min(map(len, runs)) <= 1
    assert split_in_runs([], 4) == []


def test_any_changed_byte_or_a_different_length_changes_the_digest() -> None:
    data = os.urandom(5 * PIECE + 99)
    expected = _by_pieces(data, PIECE)
    for at in (0, PIECE - 1, PIECE, 3 * PIECE + 7, len(data) - 1):
        changed = bytearray(data)
        changed[at] ^= 0x01
        assert _fed(bytes(changed), [len(data)]) != expected
    assert _fed(data[:-1], [len(data) - 1]) != expected
    assert _fed(data + b"\0", [len(data) + 1]) != expected


def test_a_manifest_names_both_digests_or_only_the_plain_one(tmp_path: Path) -> None:
    image = tmp_path / "golden.img"
    data = os.urandom(2 * PIECE_BYTES + 4321)
    image.write_bytes(data)
    manifest = build_manifest(image, name="golden", version="1")
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert (manifest.piece_bytes, manifest.pieces_sha256) == (PIECE_BYTES, _by_pieces(data, PIECE_BYTES))
    assert ImageManifest.from_dict(manifest.to_dict()) == manifest
    older = {k: v for k, v in manifest.to_dict().items() if k not in ("piece_bytes", "pieces_sha256")}
    assert ImageManifest.from_dict(older).pieces_sha256 is None
    for broken, reason in (
        ({"piece_bytes": None}, "both or neither"),
        ({"pieces_sha256": "A" * 64}, "64 lowercase hex"),
        ({"piece_bytes": 0}, "at least 65536"),
        # A tiny piece is refused before any deploy would hash the content a few bytes at a time.
        ({"piece_bytes": 1}, "at least 65536"),
        ({"piece_bytes": MIN_PIECE_BYTES - 1}, "at least 65536"),
        ({"piece_bytes": True}, "an integer"),
        ({"piece_bytes": "4194304"}, "an integer"),
    ):
        with pytest.raises(ManifestError, match=reason):
            ImageManifest.from_dict({k: v for k, v in {**manifest.to_dict(), **broken}.items() if v is not None})
    smallest = {**manifest.to_dict(), "piece_bytes": MIN_PIECE_BYTES}
    assert ImageManifest.from_dict(smallest).piece_bytes == MIN_PIECE_BYTES


def _image_and_target(tmp_path: Path, size: int) -> tuple[Path, Path, bytes]:
    image, target = tmp_path / "golden.img", tmp_path / "target.img"
    data = os.urandom(size)
    image.write_bytes(data)
    target.write_bytes(b"\xa5" * (size + PIECE_BYTES))
    save_manifest(build_manifest(image, name="golden", version="1"), manifest_path_for(image))
    return image, target, data


def test_a_deploy_checks_the_pieces_digest_with_every_cpu(tmp_path: Path) -> None:
    # Default 8 MiB slots: two pieces each, hashed at once; the last slot and piece are short.
    image, target, data = _image_and_target(tmp_path, 5 * PIECE_BYTES + 777)
    result = deploy_image(image, str(target))
    manifest = load_manifest(tmp_path / "golden.img.manifest.json")
    assert result.ok, result.failure_reason
    assert result.content_digest == digest_name(PIECE_BYTES) == f"pieces-sha256/{PIECE_BYTES}"
    assert result.written_sha256 == result.readback_sha256 == manifest.pieces_sha256
    assert result.image_sha256 == manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert target.read_bytes()[: len(data)] == data


def test_a_manifest_without_pieces_is_checked_against_its_plain_digest(tmp_path: Path) -> None:
    image, target, data = _image_and_target(tmp_path, 3 * PIECE_BYTES + 5)
    full = load_manifest(tmp_path / "golden.img.manifest.json")
    older = ImageManifest(full.name, full.version, full.format, full.size_bytes, full.sha256)
    result = deploy_image(image, str(target), manifest=older)
    assert result.ok, result.failure_reason
    assert result.content_digest == "sha256"
    assert result.written_sha256 == result.readback_sha256 == hashlib.sha256(data).hexdigest()


def test_a_corrupt_image_fails_its_pieces_digest(tmp_path: Path) -> None:
    image, target, _ = _image_and_target(tmp_path, 4 * PIECE_BYTES + 3)
    manifest = load_manifest(tmp_path / "golden.img.manifest.json")
    with open(image, "r+b") as f:
        f.seek(2 * PIECE_BYTES + 11)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))
    result = deploy_image(image, str(target), manifest=manifest)
    assert not result.ok
    assert (result.failure_reason or "").startswith(f"image is corrupt: SHA-256 of its {PIECE_BYTES}-byte pieces")
    assert result.readback_sha256 is None


def test_a_deploy_checks_the_smallest_pieces_a_manifest_may_name(tmp_path: Path) -> None:
    # 128 pieces to each 8 MiB slot, the content ending inside one: the check is the manifest's.
    image, target, data = _image_and_target(tmp_path, 2 * PIECE_BYTES + 12345)
    published = load_manifest(manifest_path_for(image))
    small = {**published.to_dict(), "piece_bytes": MIN_PIECE_BYTES, "pieces_sha256": _by_pieces(data, MIN_PIECE_BYTES)}
    save_manifest(ImageManifest.from_dict(small), manifest_path_for(image))
    result = deploy_image(image, str(target))
    assert result.ok, result.failure_reason
    assert result.content_digest == f"pieces-sha256/{MIN_PIECE_BYTES}"
    expected = _by_pieces(data, MIN_PIECE_BYTES)
    assert result.written_sha256 == result.readback_sha256 == expected == result.expected_digest
    assert target.read_bytes()[: len(data)] == data
