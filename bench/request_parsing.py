"""Cost of parsing and checking request bodies (`ductwork.api.limits`). Prints a table.

    .venv/bin/python bench/request_parsing.py [--repeat 50]

For each body: Python's `json.loads` (what FastAPI used before), `orjson.loads`
alone, and `parse_json_body` (orjson plus the walk that refuses what the
stores cannot hold). The fastest of `--repeat` calls: on a shared machine the
median mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.api.limits import parse_json_body


def chain_body(length: int) -> bytes:
    nodes = [
        {
            "id": f"n{i}",
            "type": "start" if i == 0 else "transformer",
            "config": {} if i == 0 else {"transform_type": "compose", "mapping": {"v": "input"}},
            "position": {"x": i * 250, "y": 0},
        }
        for i in range(length)
    ]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(length - 1)]
    return orjson.dumps({"name": "chain", "nodes": nodes, "edges": edges})


def inputs_body(size: int) -> bytes:
    rows = [{"id": i, "name": f"user {i}", "tags": ["a", "b"], "score": i / 7} for i in range(size)]
    return orjson.dumps({"inputs": {"rows": rows}})


def best_ms(call: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return min(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    bodies = {
        "1,000-node workflow": chain_body(1000),
        "10,000-node workflow": chain_body(10_000),
        "inputs, 10,000 rows": inputs_body(10_000),
    }
    rows: list[tuple[str, str, str]] = []
    for label, raw in bodies.items():
        kb = len(raw) / 1024
        stdlib = best_ms(lambda raw=raw: json.loads(raw), args.repeat)
        fast = best_ms(lambda raw=raw: orjson.loads(raw), args.repeat)
        checked = best_ms(lambda raw=raw: parse_json_body(raw, 64), args.repeat)
        rows.append((f"{label} ({kb:,.0f} KB): json.loads", f"{stdlib:.2f} ms", "before"))
        rows.append((f"{label}: orjson.loads", f"{fast:.2f} ms", ""))
        rows.append((f"{label}: parse_json_body", f"{checked:.2f} ms", "after"))
    print_measures(rows)


if __name__ == "__main__":
    main()
