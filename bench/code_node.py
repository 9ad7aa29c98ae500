"""What a `code` node's sandboxed call costs. Prints a table.

    .venv/bin/python bench/code_node.py [--calls 500]

1. warm call overhead: `main` returns its small input, through a started pool of two
   workers (pipe round trip, JSON both ways, exec of the source, stdout capture);
   median and p99 over --calls calls, one at a time;
2. the same with 1 KB of JSON in and out;
3. cold start: a fresh pool of one worker started and its first call answered
   (interpreter start, limits, preloaded modules, privilege drop), median of 10;
4. a failed call replaced: an `os._exit` crash answered and the next call served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.code.pool import CodePool
from ductwork.nodes.base import NodeError

ECHO = "def main(input, inputs, outputs):\n    return input\n"
CRASH = "import os\ndef main():\n    os._exit(3)\n"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def _calls(pool: CodePool, payload: object, calls: int) -> list[float]:
    arguments = {"input": payload, "inputs": {}, "outputs": {}}
    for _ in range(20):  # warm-up: both workers, the compiled-source path
        await pool.call(ECHO, arguments, timeout_seconds=10)
    spans = []
    for _ in range(calls):
        started = time.perf_counter()
        await pool.call(ECHO, arguments, timeout_seconds=10)
        spans.append(time.perf_counter() - started)
    return sorted(spans)


async def _cold() -> float:
    started = time.perf_counter()
    pool = CodePool(size=1, memory_mb=256, max_answer_bytes=1_000_000)
    try:
        await pool.call(ECHO, {"input": 1, "inputs": {}, "outputs": {}}, timeout_seconds=10)
    finally:
        await pool.close()
    return time.perf_counter() - started


async def _replaced(pool: CodePool) -> float:
    started = time.perf_counter()
    with contextlib.suppress(NodeError):
        await pool.call(CRASH, {}, timeout_seconds=10)
    for _ in range(pool.size):
        await pool.call(ECHO, {"input": 1, "inputs": {}, "outputs": {}}, timeout_seconds=10)
    return time.perf_counter() - started


async def main(calls: int) -> None:
    pool = CodePool(size=2, memory_mb=256, max_answer_bytes=1_000_000)
    await pool.start()
    try:
        small = await _calls(pool, {"n": 1}, calls)
        kilobyte = await _calls(
            pool, {"items": [{"id": i, "name": "x" * 20} for i in range(30)]}, calls
        )
        replaced = [await _replaced(pool) for _ in range(5)]
    finally:
        await pool.close()
    cold = [await _cold() for _ in range(10)]
    p99 = max(0, int(len(small) * 0.99) - 1)
    print_measures(
        [
            ("warm call, small JSON (median)", _ms(statistics.median(small)), "<= 5 ms"),
            ("warm call, small JSON (p99)", _ms(small[p99]), ""),
            ("warm call, 1 KB JSON (median)", _ms(statistics.median(kilobyte)), "<= 5 ms"),
            ("warm call, 1 KB JSON (p99)", _ms(kilobyte[p99]), ""),
            ("cold start: pool of 1 + first call (median)", _ms(statistics.median(cold)), ""),
            (
                "crash, then every worker serves again (median)",
                _ms(statistics.median(replaced)),
                "",
            ),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args().calls))
