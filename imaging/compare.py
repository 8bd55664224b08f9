"""Byte comparison at memory speed that lets other threads run: libc ``memcmp`` through ctypes.

ctypes drops the GIL for the call, so one I/O worker compares a chunk while another's request is
on the device (numpy's comparisons hold it). memcmp stops at the first difference; only then does
the verifier count the differences (``differences``, with numpy, imported for that rare case).
"""

from __future__ import annotations

import ctypes

from imaging.blockio import Buffer

_memcmp = ctypes.CDLL(None).memcmp
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int

# A buffer is constant when its first PERIOD bytes are and it equals itself shifted by PERIOD: one
# pass over the memory, both sides read on cache-line boundaries.
PERIOD = 64


def _address(buf: Buffer, length: int) -> int:
    return ctypes.addressof((ctypes.c_char * length).from_buffer(buf))


def same(a: Buffer, b: Buffer, length: int) -> bool:
    """The first ``length`` bytes of ``a`` and ``b`` are equal (both writable buffers)."""
    if length <= 0:
        return True
    return _memcmp(_address(a, length), _address(b, length), length) == 0


def all_bytes(buf: Buffer, length: int, value: int) -> bool:
    """Every one of the first ``length`` bytes of ``buf`` is ``value``."""
    head = min(length, PERIOD)
    if memoryview(buf)[:head] != bytes([value]) * head:
        return False
    if length <= PERIOD:
        return True
    start = _address(buf, length)
    return _memcmp(start, start + PERIOD, length - PERIOD) == 0


def differences(actual: Buffer, length: int, wanted: Buffer | int) -> tuple[int, int]:
    """(index of the first differing byte, number of differing bytes) against a buffer or a
    constant byte value; for a chunk already known to differ."""
    import numpy as np

    got = np.frombuffer(actual, dtype=np.uint8, count=length)  # type: ignore[call-overload]
    want = wanted if isinstance(wanted, int) else np.frombuffer(wanted, dtype=np.uint8, count=length)  # type: ignore[call-overload]
    diff = got != want
    return int(np.argmax(diff)), int(np.count_nonzero(diff))
