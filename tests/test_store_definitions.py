"""store/definitions.py: stored definitions parsed once per content, within bounds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ductwork.store import definitions
from ductwork.store.definitions import parse_definition


def _body(name: str, nodes: int = 3) -> dict[str, Any]:
    ids = [f"n{i}" for i in range(nodes)]
    return {
        "name": name,
        "nodes": [{"id": node_id, "type": "transformer", "config": {}} for node_id in ids],
        "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)],
    }


def test_the_same_content_is_parsed_once_and_other_content_apart() -> None:
    first = parse_definition(_body("same"))
    assert parse_definition(_body("same")) is first
    other = parse_definition(_body("other"))
    assert other is not first and other.name == "other"


def test_the_cache_holds_at_most_its_bytes_of_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(definitions, "_parsed", type(definitions._parsed)())
    monkeypatch.setattr(definitions, "_cached_bytes", 0)
    one = len(definitions.orjson.dumps(_body("big-0", 50)))
    monkeypatch.setattr(definitions, "CACHED_JSON_BYTES", 2 * one + one // 2)
    parsed = [parse_definition(_body(f"big-{i}", 50)) for i in range(4)]
    assert len(definitions._parsed) == 2  # the two newest fit; older ones went
    assert definitions._cached_bytes <= definitions.CACHED_JSON_BYTES
    assert parse_definition(_body("big-3", 50)) is parsed[3]
    assert parse_definition(_body("big-0", 50)) is not parsed[0]  # parsed again
    # A definition larger than the whole cache is parsed, never kept.
    monkeypatch.setattr(definitions, "CACHED_JSON_BYTES", one // 2)
    huge = parse_definition(_body("huge", 50))
    assert parse_definition(_body("huge", 50)) is not huge
