"""What masking credentials costs a run. Prints a table.

    .venv/bin/python bench/redaction.py [--runs 200]

1. per-node overhead on a 40-node transformer chain (bench/engine.py's), embedded
   defaults (SQLite checkpoints): without credentials, and with 5 credentials loaded
   (every node's output is searched for their values; none holds one, the usual case);
   with small outputs and with 1 KB of text per output. Runs of both apps alternate,
   so machine noise lands on both alike;
2. the redactor alone: the search of an encoded 1 KB output (the fast path), and
   masking an output that does hold a secret (the walk).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.security.redaction import Redactor
from ductwork.service import Ductwork
from ductwork.settings import Settings

NODES = 40
NAMES = [f"S{i}" for i in range(5)]
VALUES = [f"credential-value-{i}-{'x' * 24}" for i in range(5)]


def chain(with_credentials: bool) -> WorkflowDefinition:
    nodes: list[dict[str, Any]] = [
        {"id": f"t{i}", "type": "transformer", "config": {"transform_type": "map"}}
        for i in range(NODES)
    ]
    # The first node reads five values, so the two chains do the same template work: the
    # five credentials (the run loads and masks them) or five plain strings.
    if with_credentials:
        names = " ~ ".join(f"secrets.{name}" for name in NAMES)
    else:
        names = " ~ ".join(f"'{value}'" for value in VALUES)
    nodes[0]["config"] = {"transform_type": "map", "source": f"input if ({names}) else input"}
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(NODES - 1)]
    return WorkflowDefinition.model_validate({"name": "chain", "nodes": nodes, "edges": edges})


async def _app(directory: Path, with_credentials: bool) -> tuple[Ductwork, str]:
    app = build(Settings(data_dir=directory))
    await app.start()
    if with_credentials:
        # Stored encrypted through the real service: runs load and decrypt them from the store.
        assert app.credentials is not None
        for name, value in zip(NAMES, VALUES, strict=True):
            await app.credentials.create(name, "secret", {"value": value})  # type: ignore[attr-defined]
    workflow = await app.create_workflow(chain(with_credentials))
    return app, workflow.id


async def per_node_ms(
    runs: int, inputs: dict[str, Any], *, control: bool = False
) -> tuple[float, float]:
    """(median ms per node without credentials, with 5), runs alternating.

    `control`: the second app has no credentials either (an A/A run: the noise floor).
    """
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as cred_dir:
        plain, plain_id = await _app(Path(plain_dir), False)
        masked, masked_id = await _app(Path(cred_dir), not control)
        try:
            samples: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(runs + 5):
                order = [(plain, plain_id, False), (masked, masked_id, True)]
                if round_ % 2:
                    order.reverse()
                for app, workflow_id, key in order:
                    started = time.perf_counter()
                    run, _ = await app.execute(workflow_id, inputs, wait=True)
                    elapsed = (time.perf_counter() - started) * 1000 / NODES
                    assert run.status == "success", run.error
                    if round_ >= 5:  # warm-up: plan cache, connections
                        samples[key].append(elapsed)
            return statistics.median(samples[False]), statistics.median(samples[True])
        finally:
            await plain.close()
            await masked.close()


def redactor_costs() -> list[tuple[str, str, str]]:
    redactor = Redactor(VALUES)
    clean = {"text": "lorem ipsum dolor sit amet " * 38, "n": 1}
    encoded = orjson.dumps(clean)
    holding = {"text": f"header: Bearer {VALUES[2]}", "items": [{"a": VALUES[0]}, 1, 2, 3]}
    encoded_holding = orjson.dumps(holding)

    def best(function: Any, number: int) -> float:
        return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6

    search = best(lambda: redactor.output(clean, encoded), 20_000)
    walk = best(lambda: redactor.output(holding, encoded_holding), 20_000)
    return [
        (
            f"redactor: search of a {len(encoded)}-byte output, 5 credentials",
            f"{search:.2f} us",
            "-",
        ),
        ("redactor: mask an output holding two secrets", f"{walk:.2f} us", "-"),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--control", action="store_true", help="A/A: no credentials in either app (noise floor)"
    )
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    for label, inputs in (
        ("small outputs", {"v": 1}),
        ("1 KB outputs", {"v": 1, "text": "lorem ipsum dolor sit amet " * 38}),
    ):
        plain, masked = await per_node_ms(args.runs, inputs, control=args.control)
        overhead = (masked - plain) / plain * 100
        rows.append((f"per node, {label}, no credentials (median)", f"{plain:.3f} ms", "-"))
        rows.append((f"per node, {label}, 5 credentials (median)", f"{masked:.3f} ms", "-"))
        rows.append((f"redaction overhead per node, {label}", f"{overhead:+.1f} %", "<= 5 %"))
    rows.extend(redactor_costs())
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
