"""Server memory per idle WebSocket subscriber and per in-flight run. Prints a table.

    .venv/bin/python bench/memory.py [--runs 200] [--subscribers 500]

The server is `ductwork serve` in a subprocess on embedded defaults (SQLite,
in-process queue and bus), as in bench/live_events.py; its resident set size
(VmRSS) is read from /proc before and after each step, once it has settled:

1. in-flight runs: `--runs` runs of start -> delay (1 h, so each is parked:
   `waiting`, no worker held) -> end, started async; RSS growth per run once
   every one is `waiting`;
2. idle subscribers on one run: `--subscribers` WebSockets to one parked run,
   each past its snapshot; RSS growth per connection;
3. idle subscribers, one per run: one WebSocket to each parked run (a bus
   subscription per run); RSS growth per connection.

A warm-up round of each step first pays one-time costs (imports, caches, the
first pages of the allocator), so the rows are the marginal cost. RSS moves in
pages and the allocator keeps freed memory, so a row is an estimate to a few
hundred bytes; run it twice before reading a change into it.

`memory_measures()` returns the rows for a report (bench/report.py's shape).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.live_events import COMPRESSION, HEADERS, Server
from bench.report import print_measures

PARKED_WORKFLOW: dict[str, Any] = {
    "name": "memory-bench-parked",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "park", "type": "delay", "config": {"delay_seconds": 3600}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "park"}, {"from": "park", "to": "end"}],
}
CONCURRENCY = 8
"""Requests and connection handshakes in flight at once."""
SETTLE_SECONDS = 1.0
"""Quiet time before RSS is read (the server finishes what the last step started)."""


async def settled_rss(server: Server) -> float:
    """The server's RSS in KiB after a quiet moment."""
    await asyncio.sleep(SETTLE_SECONDS)
    return server.rss_mib() * 1024


async def start_parked_runs(client: httpx.AsyncClient, workflow_id: str, count: int) -> list[str]:
    """Start `count` runs and wait until every one is parked (`waiting`)."""
    limiter = asyncio.Semaphore(CONCURRENCY)

    async def start_one() -> str:
        async with limiter:
            answer = await client.post(
                f"/workflows/{workflow_id}/execute", json={"async_execution": True}
            )
            answer.raise_for_status()
            return str(answer.json()["execution_id"])

    ids = await asyncio.gather(*(start_one() for _ in range(count)))
    deadline = time.monotonic() + 60 + count * 0.1
    while True:
        waiting = await count_runs(client, workflow_id, "waiting")
        if waiting >= count:
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {waiting} of {count} runs parked in time")
        await asyncio.sleep(0.2)


async def count_runs(client: httpx.AsyncClient, workflow_id: str, status: str) -> int:
    """How many runs of the workflow have `status`, following the runs list's cursor."""
    params: dict[str, Any] = {"workflow_id": workflow_id, "status": status, "limit": 1000}
    total = 0
    while True:
        page = await client.get("/workflows/executions", params=params)
        page.raise_for_status()
        total += len(page.json())
        after = page.headers.get("X-Next-Cursor")
        if after is None:
            return total
        params["after"] = after


async def open_subscribers(port: int, execution_ids: list[str]) -> list[ClientConnection]:
    """One idle WebSocket per id, each past its snapshot (the stream is then quiet)."""
    limiter = asyncio.Semaphore(CONCURRENCY)

    async def open_one(execution_id: str) -> ClientConnection:
        async with limiter:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws/executions/{execution_id}",
                additional_headers=HEADERS,
                ping_interval=None,
                open_timeout=30,
                compression=COMPRESSION,
            )
            first = await asyncio.wait_for(ws.recv(), 30)
            if '"snapshot"' not in str(first):
                raise RuntimeError(f"expected a snapshot first, got {str(first)[:80]}")
            return ws

    return list(await asyncio.gather(*(open_one(eid) for eid in execution_ids)))


async def close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def kib(value: float) -> str:
    return f"{value:.1f} KiB"


async def parked_server_step(tmp: str, runs: int, step: str, subscribers: int) -> float:
    """One step on a fresh server (memory freed by an earlier step would hide the cost
    of the next): KiB of RSS per run (`runs`), per subscriber on one run (`one`) or per
    subscriber with a run of its own (`each`)."""
    server = Server(tempfile.mkdtemp(dir=tmp))
    try:
        server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=HEADERS) as client:
            created = await client.post("/workflows/", json=PARKED_WORKFLOW)
            created.raise_for_status()
            workflow_id = created.json()["id"]
            # Warm-up: the step once, small (imports, caches, the allocator's first pages).
            warm = await start_parked_runs(client, workflow_id, 20)
            await close_all(await open_subscribers(server.port, warm))
            if step == "runs":
                before = await settled_rss(server)
                await start_parked_runs(client, workflow_id, runs + len(warm))
                return (await settled_rss(server) - before) / runs
            if step == "one":
                before = await settled_rss(server)
                sockets = await open_subscribers(server.port, [warm[0]] * subscribers)
                grown = await settled_rss(server) - before
                await close_all(sockets)
                return grown / subscribers
            parked = await start_parked_runs(client, workflow_id, runs + len(warm))
            parked = [eid for eid in parked if eid not in warm]
            before = await settled_rss(server)
            sockets = await open_subscribers(server.port, parked)
            grown = await settled_rss(server) - before
            await close_all(sockets)
            return grown / len(parked)
    finally:
        server.stop()


async def memory_measures(runs: int = 200, subscribers: int = 500) -> list[tuple[str, str, str]]:
    """The table's rows: memory per in-flight run and per idle subscriber (see above)."""
    with tempfile.TemporaryDirectory() as tmp:
        per_run = await parked_server_step(tmp, runs, "runs", subscribers)
        per_subscriber = await parked_server_step(tmp, runs, "one", subscribers)
        per_run_subscriber = await parked_server_step(tmp, runs, "each", subscribers)
    deflate = "permessage-deflate" if COMPRESSION else "no compression"
    return [
        (f"in-flight run, parked ({runs} runs): server RSS per run", kib(per_run), "reported"),
        (
            f"idle WebSocket subscriber ({deflate}), {subscribers} on one run: RSS each",
            kib(per_subscriber),
            "reported",
        ),
        (
            f"idle WebSocket subscriber ({deflate}), one per run ({runs}): RSS each",
            kib(per_run_subscriber),
            "reported",
        ),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=500)
    args = parser.parse_args()
    print_measures(await memory_measures(args.runs, args.subscribers))


if __name__ == "__main__":
    asyncio.run(main())
