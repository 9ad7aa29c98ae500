"""The workflows the benchmarks and their CI guards measure (bench/suite.py,
bench/engine.py, tests/test_bench_guard.py, tests/test_cold_imports.py), written once."""

from __future__ import annotations

from typing import Any

THREE_NODE: dict[str, Any] = {
    "name": "three",
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "t",
            "type": "transformer",
            "config": {"transform_type": "compose", "mapping": {"x": "n + 1"}},
        },
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
}
"""start -> transformer (`x = n + 1`) -> end: one run of the issue-12 runs/s rows."""


def transformer_chain(length: int, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """`length` transformer nodes in a line (pass-through unless `config` says otherwise)."""
    node_config = config if config is not None else {"transform_type": "map"}
    return {
        "name": f"chain{length}",
        "nodes": [
            {"id": f"t{i}", "type": "transformer", "config": node_config} for i in range(length)
        ],
        "edges": [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(length - 1)],
    }
