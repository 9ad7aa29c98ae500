"""A JSON response rendered by orjson (stdlib json is ~10x slower on run payloads)."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import orjson
from starlette.responses import JSONResponse

log = logging.getLogger("ductwork.api")

_OPTIONS: Final = orjson.OPT_NON_STR_KEYS

MAX_ENCODED_DEPTH: Final = 200
"""Nesting kept when a value has to be repaired for encoding (orjson's own limit is 254)."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_TOO_DEEP: Final = f"(nested deeper than {MAX_ENCODED_DEPTH} levels: not shown)"


def _encodable(value: Any, depth: int = 0) -> Any:
    """A copy of `value` that orjson can encode: what it cannot is replaced, visibly.

    Requests are checked before anything is stored (`ductwork.api.limits`), but a
    node's output, or a run stored by an older version, may still hold a lone
    surrogate, an integer past 64 bits or a structure nested past orjson's limit;
    reading such a run must not fail.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_ENCODED_DEPTH:
            return _TOO_DEEP
        if isinstance(value, dict):
            return {
                _encodable(key, depth + 1) if isinstance(key, str) else key: _encodable(
                    item, depth + 1
                )
                for key, item in value.items()
            }
        return [_encodable(item, depth + 1) for item in value]
    return value  # datetimes, UUIDs and other objects: orjson or `default=str` handle them


def dumps(value: Any) -> bytes:
    """`value` as JSON bytes; never fails on data a run may hold (see `_encodable`)."""
    try:
        return orjson.dumps(value, option=_OPTIONS, default=str)
    except orjson.JSONEncodeError as exc:
        log.warning("response repaired for JSON encoding: %s", exc)
        return orjson.dumps(_encodable(value), option=_OPTIONS, default=str)


class JSON(JSONResponse):
    """`application/json` via orjson; datetimes, UUIDs and non-str keys handled.

    A `JSONResponse` so that FastAPI documents a route's `response_model` as its body
    (for any other response class it writes `{"type": "string"}`).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
