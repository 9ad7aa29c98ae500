"""Waiting for something to happen in tests: poll with a deadline, never sleep a guess."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

DEFAULT_WITHIN = 15.0
"""Seconds before a condition counts as never met: generous, because the CI machine is a
loaded 2-core box and this bound only decides how long a failing test takes to fail."""


async def eventually(
    check: Callable[[], object | Awaitable[object]],
    *,
    within: float = DEFAULT_WITHIN,
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """Return once check() (sync or async) is truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within} s")
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], object],
    *,
    within: float = DEFAULT_WITHIN,
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """The blocking twin of `eventually`, for tests that drive a server from a thread."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within} s")
        time.sleep(interval)
