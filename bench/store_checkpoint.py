"""How long one checkpoint takes on each store: one node state and two events, one commit.

    .venv/bin/python bench/store_checkpoint.py [--iterations 2000]

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


async def measure(url: str, iterations: int) -> list[float]:
    """Seconds per checkpoint, one run, one checkpoint at a time."""
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
                    Event(seq=2 * i + 1, type="node_started", node_id=f"n{i % 10}", timestamp=now),
                    Event(
                        seq=2 * i + 2,
                        type="node_completed",
                        node_id=f"n{i % 10}",
                        timestamp=now,
                        data={"latency_ms": 1.0},
                    ),
                ],
            )
            for i in range(WARMUP + iterations)
        ]
        for checkpoint in checkpoints[:WARMUP]:
            await store.checkpoint(run.execution_id, checkpoint)
        timings = []
        clock = time.perf_counter
        for checkpoint in checkpoints[WARMUP:]:
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
    for name, url_context in targets:
        try:
            async with url_context() as url:
                timings = await measure(url, args.iterations)
        except Exception as exc:
            console.print(f"[yellow]{name}: skipped ({type(exc).__name__}: {exc})[/yellow]")
            continue
        ms = sorted(t * 1000 for t in timings)
        mean = statistics.fmean(ms)
        table.add_row(
            name,
            f"{mean:.3f}",
            f"{ms[len(ms) // 2]:.3f}",
            f"{ms[int(len(ms) * 0.95)]:.3f}",
            f"{1000 / mean:,.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
