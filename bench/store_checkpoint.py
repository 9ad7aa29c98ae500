"""How long one checkpoint takes on each store: one node state and two events, one commit.

    .venv/bin/python bench/store_checkpoint.py [--iterations 2000] [--history-iterations 300]

The first table writes checkpoints to a fresh run. The second writes them to a
run that already holds 10 and then 10,000 events: a store whose checkpoint cost
grows with the run's history (MongoDB, when events lived inside the run
document) shows it there.

SQLite writes to a temporary file; PostgreSQL to a fresh database on
DUCTWORK_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test),
dropped afterwards; MongoDB to a SecantusDB server started for the purpose (a
Python wire-protocol server: its numbers say little about a real mongod), or to
the mongod at --mongodb-url. A store that cannot be reached is reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

# The SecantusDB launcher and the PostgreSQL helper are the tests' own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, start_secantus

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    NodeStatus,
    Run,
    WorkflowDefinition,
    utcnow,
)
from ductwork.store.factory import create_store

WARMUP = 100
HISTORY_SIZES = (10, 10_000)


async def measure(url: str, iterations: int, history: int = 0, warmup: int = WARMUP) -> list[float]:
    """Seconds per checkpoint, one run, one checkpoint at a time.

    `history`: events the run holds before the first checkpoint.
    """
    store = create_store(url)
    await store.start()
    try:
        now = utcnow()
        definition = WorkflowDefinition.model_validate(
            {"name": "bench", "nodes": [{"id": f"n{i}", "type": "transformer"} for i in range(10)]}
        )
        run = Run(
            execution_id=str(uuid.uuid4()),
            workflow_id="bench",
            workflow_version=1,
            definition=definition,
            created_at=now,
            events=[
                Event(seq=seq, type="log", timestamp=now, data={"message": f"earlier step {seq}"})
                for seq in range(1, history + 1)
            ],
        )
        await store.create_run(run)
        checkpoints = [
            Checkpoint(
                node_states={
                    f"n{i % 10}": NodeState(
                        status=NodeStatus.COMPLETED,
                        output={"text": f"result {i}", "tokens": i},
                        started_at=now,
                        finished_at=now,
                        latency_ms=1.0,
                        attempts=1,
                    )
                },
                events=[
                    Event(
                        seq=history + 2 * i + 1,
                        type="node_started",
                        node_id=f"n{i % 10}",
                        timestamp=now,
                    ),
                    Event(
                        seq=history + 2 * i + 2,
                        type="node_completed",
                        node_id=f"n{i % 10}",
                        timestamp=now,
                        data={"latency_ms": 1.0},
                    ),
                ],
            )
            for i in range(warmup + iterations)
        ]
        for checkpoint in checkpoints[:warmup]:
            await store.checkpoint(run.execution_id, checkpoint)
        timings = []
        clock = time.perf_counter
        for checkpoint in checkpoints[warmup:]:
            start = clock()
            await store.checkpoint(run.execution_id, checkpoint)
            timings.append(clock() - start)
        return timings
    finally:
        await store.close()


@asynccontextmanager
async def sqlite_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{directory}/bench.db"


@asynccontextmanager
async def postgres_url() -> AsyncIterator[str]:
    admin = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    name = f"ductwork_bench_{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(postgres_execute, admin, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        await asyncio.to_thread(
            postgres_execute, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        )


@asynccontextmanager
async def secantus_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        server = await asyncio.to_thread(start_secantus, Path(directory))
        try:
            yield server.url_for("ductwork_bench")
        finally:
            await asyncio.to_thread(server.stop)


@asynccontextmanager
async def given_url(url: str) -> AsyncIterator[str]:
    yield url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--history-iterations", type=int, default=300)
    parser.add_argument("--mongodb-url", help="a real MongoDB to measure instead of SecantusDB")
    args = parser.parse_args()

    targets: list[tuple[str, Callable[[], AbstractAsyncContextManager[str]]]] = [
        ("sqlite", sqlite_url),
        ("postgresql", postgres_url),
    ]
    if args.mongodb_url:
        targets.append(("mongodb", lambda: given_url(args.mongodb_url)))
    else:
        targets.append(("mongodb (secantusdb)", secantus_url))

    console = Console()
    table = Table(
        title=f"checkpoint = 1 node state + 2 events, {args.iterations} iterations, one run"
    )
    for column in ("store", "mean ms", "p50 ms", "p95 ms", "checkpoints/s"):
        table.add_column(column, justify="left" if column == "store" else "right")
    history = Table(
        title=(
            f"the same checkpoint on a run that already holds N events, "
            f"{args.history_iterations} iterations"
        )
    )
    for column in ("store", "events in run", "mean ms", "p50 ms", "p95 ms"):
        history.add_column(column, justify="left" if column == "store" else "right")
    for name, url_context in targets:
        try:
            async with url_context() as url:
                timings = await measure(url, args.iterations)
                by_history = [
                    (size, await measure(url, args.history_iterations, size, warmup=20))
                    for size in HISTORY_SIZES
                ]
        except Exception as exc:
            console.print(f"[yellow]{name}: skipped ({type(exc).__name__}: {exc})[/yellow]")
            continue
        mean, p50, p95 = summary(timings)
        table.add_row(name, f"{mean:.3f}", f"{p50:.3f}", f"{p95:.3f}", f"{1000 / mean:,.0f}")
        for size, sized in by_history:
            mean, p50, p95 = summary(sized)
            history.add_row(name, f"{size:,}", f"{mean:.3f}", f"{p50:.3f}", f"{p95:.3f}")
    console.print(table)
    console.print(history)


def summary(timings: list[float]) -> tuple[float, float, float]:
    """Mean, median and 95th percentile, in milliseconds."""
    ms = sorted(t * 1000 for t in timings)
    return statistics.fmean(ms), ms[len(ms) // 2], ms[int(len(ms) * 0.95)]


if __name__ == "__main__":
    asyncio.run(main())
