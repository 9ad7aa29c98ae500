"""Parsed workflow definitions, shared by the runs and workflows that store the same one.

Every read of a run or a workflow used to validate its definition again: about 50 µs per
node with the garbage collection it sets off, half a second for a 10,000-node run, on
every GET and every stream snapshot, though a stored definition never changes (a new
version is a new definition). `parse_definition` keys the parsed model by a digest of the
definition's JSON, so the runs of one workflow version share one `WorkflowDefinition`.

Shared means read-only: nothing changes a definition read from a store in place (a
changed workflow is a new model, e.g. `model_copy(update=...)`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import orjson

from ductwork.models import WorkflowDefinition

CACHED_DEFINITIONS: Final = 256
"""How many parsed definitions are kept (least recently read ones go first)..."""
CACHED_JSON_BYTES: Final = 16 * 1024 * 1024
"""...and at most this much of their JSON in all (a parsed 10,000-node definition is
~1 MB of JSON and ~19 MB of objects): a few huge ones, or many ordinary ones."""

_parsed: OrderedDict[bytes, tuple[WorkflowDefinition, int]] = OrderedDict()
_cached_bytes = 0


def parse_definition(stored: Mapping[str, Any] | WorkflowDefinition) -> WorkflowDefinition:
    """The definition a store read (decoded JSON), validated once per distinct content.

    Raises pydantic's ValidationError as `WorkflowDefinition.model_validate` does.
    """
    if isinstance(stored, WorkflowDefinition):
        return stored
    try:
        raw = orjson.dumps(stored)
    except TypeError:  # not plain JSON data: validate it as it is, uncached
        return WorkflowDefinition.model_validate(stored)
    key = hashlib.blake2b(raw, digest_size=16).digest()
    found = _parsed.get(key)
    if found is not None:
        _parsed.move_to_end(key)
        return found[0]
    parsed = WorkflowDefinition.model_validate(stored)
    if len(raw) <= CACHED_JSON_BYTES:
        global _cached_bytes
        _parsed[key] = (parsed, len(raw))
        _cached_bytes += len(raw)
        while len(_parsed) > CACHED_DEFINITIONS or _cached_bytes > CACHED_JSON_BYTES:
            _, (_, size) = _parsed.popitem(last=False)
            _cached_bytes -= size
    return parsed
