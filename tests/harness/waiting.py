"""Waiting on a condition with a deadline instead of sleeping a guessed time.

A test that sleeps "long enough" is slow when the machine is idle and flaky when it is loaded;
polling the condition it needs returns as soon as it holds and fails with a message naming what
never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "the condition",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Exceptions of the ``ignore`` types count as "not yet" (a port that refuses connections while
    a server starts). The predicate is always tried once more at the deadline, so a slow machine
    that gets there just in time passes.

    :raises AssertionError: naming ``message`` when the deadline passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if last_try:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, message: str = "the condition"
) -> T:
    """``wait_until`` for a coroutine: yields to the event loop between polls.

    :raises AssertionError: naming ``message`` when the deadline passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if last_try:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}")
        await asyncio.sleep(interval)
