"""Cold start of a `ductwork` process: no garbage collection while it imports and builds.

Starting `ductwork run` or `ductwork serve` allocates a few hundred thousand objects that
live as long as the process (modules, classes, pydantic validators, SQLAlchemy tables)
and makes next to no garbage, yet the collector walks the growing heap again and again
while it does (228 collections, about a tenth of a cold `ductwork run`'s CPU). So the
CLI holds collection while it imports (`ductwork.cli` imports `ductwork.startup_hold`
before anything else) and while a command builds and starts its application.

`release` then moves every object alive into the permanent generation (`gc.freeze`)
before collecting again: without that, the first collection after the hold walks all
of them at once (30 ms), and every full collection after, the one at exit included,
walks them again. What start-up built stays for the life of the process anyway.

Holding and releasing are no-ops when collection was already off, so a program that
manages the collector itself keeps its own choice.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_held = False


def hold() -> bool:
    """Stop garbage collection until `release` (unless it is off already); returns whether
    this call stopped it."""
    global _held
    if _held or not gc.isenabled():
        return False
    gc.disable()
    _held = True
    return True


def release() -> None:
    """After `hold`: exempt every object alive now from collection, and collect again."""
    global _held
    if not _held:
        return
    _held = False
    gc.freeze()
    gc.enable()


def is_held() -> bool:
    """Whether `hold` stopped collection and nothing released it yet (for tests)."""
    return _held


@contextmanager
def held() -> Iterator[None]:
    """No collection inside the block (imports, building and starting an application).

    Collects again when the block ends only if the block stopped it (not inside another
    hold)."""
    took = hold()
    try:
        yield
    finally:
        if took:
            release()
