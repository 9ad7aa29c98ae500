"""What a JSON value must not hold to be stored and served, found by field.

PostgreSQL refuses NUL characters, SQLite and MongoDB integers past 64 bits,
every encoder lone surrogates and NaN, and orjson nesting past 254 levels.
One policy for every way a value enters: request bodies (`ductwork.api.limits`)
and generated workflows (`ductwork.generation`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)

DEFAULT_MAX_DEPTH: Final = 64
"""DUCTWORK_MAX_JSON_DEPTH's default."""

Segment = str | int


def dotted(path: tuple[Segment, ...]) -> str | None:
    """`("nodes", 1, "config")` as `nodes.1.config`, the request validator's spelling."""
    return ".".join(str(part) for part in path) or None


def encodable(text: str) -> bool:
    """Whether `text` is valid Unicode (holds no lone surrogate), so it can be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _children(value: Any) -> Iterator[tuple[Segment, Any]]:
    if isinstance(value, dict):
        yield from value.items()
    elif isinstance(value, list):
        yield from enumerate(value)


_FIELD_SEGMENTS: Final = 4
"""A too-deep path is named by its first segments: the rest is the nesting itself."""


def find_problem(value: Any, max_depth: int) -> tuple[tuple[Segment, ...], str] | None:
    """The first thing in a parsed JSON value the stores cannot hold: (path, why), or None.

    Iterative, so a value nested deeper than the interpreter's recursion limit is
    reported rather than crashing the check.
    """
    stack: list[tuple[tuple[Segment, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path, "contains a NUL character (\\u0000), which cannot be stored"
            if not encodable(item):
                return path, "contains a lone surrogate, which is not valid Unicode"
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return path, "integer out of range (must fit in 64 bits)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, "NaN and Infinity are not JSON numbers"
        elif isinstance(item, dict | list):
            if len(path) >= max_depth:
                shown = path[:_FIELD_SEGMENTS]
                return shown, (
                    f"nested deeper than {max_depth} levels (the limit is DUCTWORK_MAX_JSON_DEPTH)"
                )
            children = []
            for key, child in _children(item):
                if isinstance(key, str):
                    if "\x00" in key:
                        return path, "a key contains a NUL character (\\u0000)"
                    if not encodable(key):
                        return path, "a key contains a lone surrogate"
                children.append(((*path, key), child))
            stack.extend(reversed(children))  # popped in document order: the first problem
        elif isinstance(item, NonFinite):
            return path, "NaN and Infinity are not JSON numbers"
    return None


class NonFinite:
    """Stands in for `NaN`/`Infinity` where a lenient parser reads them (`parse_constant`)."""
