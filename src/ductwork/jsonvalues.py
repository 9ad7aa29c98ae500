"""What a JSON value must not hold to be stored and served, found by field.

PostgreSQL refuses NUL characters, SQLite and MongoDB integers past 64 bits,
every encoder lone surrogates and NaN, and orjson nesting past 254 levels.
One policy for every way a value enters: request bodies (`ductwork.api.limits`),
inbound webhook bodies (`ductwork.triggers.hooks`) and generated workflows
(`ductwork.generation`).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any, Final

import orjson

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


# Brackets only, both kinds as `[`/`]`: nesting does not care which.
_BRACKETS: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_at_least(encoded: bytes, depth: int) -> bool:
    """Whether JSON text (as orjson writes it) nests containers `depth` levels deep or more.

    The top-level container is level 1. Works on the bytes with C-speed operations
    only, so a wide but shallow value (a list of 500 objects) is not walked object by
    object: string contents are dropped (escaped backslashes and quotes first, then
    every other piece between quotes), then each pass removes the innermost `[]`
    pairs, one level a pass. ~8x faster than `find_problem` on a 33 kB list of objects.
    """
    if encoded.count(b"[") + encoded.count(b"{") < depth:
        return False  # not even that many containers: the common case, at C speed
    parts = encoded.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')
    brackets = b"".join(parts[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    passes = 0
    while brackets and passes < depth:
        if len(brackets) < 2 * (depth - passes):
            return False  # too few pairs left to reach `depth`
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return False  # unbalanced: not JSON as orjson writes it
        brackets = inner
        passes += 1
    return passes >= depth


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


class JSONProblem(ValueError):
    """A JSON text that cannot be parsed, or holds what the stores cannot hold.

    `path` locates the value (None for a syntax error); `document` is the value as a
    lenient parser read it (for callers that name more than the path, e.g. a node id).
    """

    def __init__(self, message: str, path: tuple[Segment, ...] | None, document: Any) -> None:
        super().__init__(message if path is None else f"{dotted(path)}: {message}")
        self.message = message
        self.path = path
        self.document = document


def loads_checked(raw: bytes, max_depth: int) -> Any:
    """Parse JSON by orjson and check the stores can hold it; raises JSONProblem.

    orjson refuses `NaN`/`Infinity` and lone surrogates (the stdlib parser accepts
    them); the walk (`find_problem`) refuses NUL characters, nesting past
    `max_depth` and integers past 64 bits, naming the field.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _explain(raw, exc, max_depth) from None
    # The full walk builds a path per value (several times orjson's parse time on a
    # large body), so it runs only when a quick pass or the bytes hint at a problem.
    if _NUL_ESCAPE not in raw and not _suspect(value, max_depth):
        return value
    # orjson reads integers past 64 bits as floats, silently rounding them; the stdlib
    # parser keeps them exact, so the walk can refuse them by name.
    with contextlib.suppress(ValueError, RecursionError):
        value = json.loads(raw)
    problem = find_problem(value, max_depth)
    if problem is not None:
        path, why = problem
        raise JSONProblem(why, path, value)
    return value


def _explain(raw: bytes, error: orjson.JSONDecodeError, max_depth: int) -> JSONProblem:
    """Why orjson refused a text, naming the field when the lenient parser can find it.

    Python's parser accepts what orjson refuses by design (NaN, Infinity, lone
    surrogates, numbers past a double), so parsing again with it and walking the
    result finds the field; a plain syntax error keeps orjson's position.
    """
    try:
        lenient = json.loads(raw, parse_constant=lambda _: NonFinite())
    except (ValueError, RecursionError):
        return JSONProblem(f"invalid JSON: {error}", None, None)
    problem = find_problem(lenient, max_depth)
    if problem is None:
        return JSONProblem(f"invalid JSON: {error}", None, lenient)
    path, why = problem
    return JSONProblem(why, path, lenient)


_NUL_ESCAPE: Final = b"\\u0000"
"""The only way a NUL reaches a parsed string: orjson refuses raw control characters."""

_ROUNDED: Final = float(INT64_MAX)
"""orjson reads an integer literal outside int64 (past u64, or below int64) as a float
at least this large; a float literal may be that large too, so such a float is only
a hint that the exact parse has to look."""


def _suspect(value: Any, max_depth: int) -> bool:
    """Whether `value` may hold a problem: nesting past `max_depth`, or a number past 64
    bits. One level of the tree at a time, without paths; `find_problem` names it."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict or kind is list:
                if depth > max_depth:
                    return True
                below.extend(item.values() if kind is dict else item)
            elif kind is int:
                if not INT64_MIN <= item <= INT64_MAX:
                    return True
            elif kind is float and not -_ROUNDED < item < _ROUNDED:
                return True
        level = below
    return False
