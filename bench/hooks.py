"""Inbound webhook benchmarks on embedded defaults (SQLite, in-process queue). Prints a table.

    .venv/bin/python bench/hooks.py [--calls 400] [--in-flight 16]

1. round trip of `POST /hooks/{path}` with `respond: sync` for a 3-node workflow
   (start -> transformer -> end), one call at a time: median and p99, over HTTP
   (a uvicorn server on 127.0.0.1 in this process, as bench/engine.py) and inside
   the service (`Ductwork.call_hook`, no HTTP);
2. requests per second through `/hooks/{path}` (sync and async) against
   `POST /workflows/{id}/execute` (sync and async_execution) for the same workflow,
   `--in-flight` calls at a time. Async calls only queue runs; the table says so.

Rate limits are raised out of the way (DUCTWORK_HOOK_RATE_LIMIT and
DUCTWORK_EXECUTE_RATE_LIMIT), so every call does the work it would in production.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.live_server import LiveServer

from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.triggers.hooks import HookCall

MAPPING = {"x": "body.n + 1", "who": "query.get('who', 'anyone')"}


def workflow(path: str, respond: str) -> dict[str, Any]:
    """start -> transformer -> end, served at /hooks/{path}."""
    return {
        "name": f"hook {respond}",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "t",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": MAPPING},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
        "triggers": [
            {"type": "webhook", "path": path, "respond": respond, "auth": {"type": "none"}}
        ],
    }


def settings_in(directory: str) -> Settings:
    return Settings(
        data_dir=Path(directory),
        hook_rate_limit="100000000/minute",
        execute_rate_limit="100000000/minute",
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def round_trips_http(server: LiveServer, path: str, calls: int) -> list[float]:
    took = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(calls // 10):  # warm-up: connection, plan cache, route cache
            client.post(f"/hooks/{path}", json={"n": i})
        for i in range(calls):
            started = time.perf_counter()
            response = client.post(f"/hooks/{path}?who=bench", json={"n": i})
            took.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["x"] == i + 1, response.text
    return took


async def round_trips_in_service(directory: str, calls: int) -> list[float]:
    app = build(settings_in(directory))
    await app.start()
    try:
        from ductwork.models import WorkflowDefinition

        await app.create_workflow(WorkflowDefinition.model_validate(workflow("inside", "sync")))
        body = b'{"n": 1}'

        async def read(limit: int) -> bytes:
            return body

        call = HookCall(
            path="inside",
            method="POST",
            headers={"content-type": "application/json"},
            query=[("who", "bench")],
            read_body=read,
        )
        for _ in range(calls // 10):
            await app.call_hook(call)
        took = []
        for _ in range(calls):
            started = time.perf_counter()
            answer = await app.call_hook(call)
            took.append((time.perf_counter() - started) * 1000)
            assert answer.status == 200, answer.body
        return took
    finally:
        await app.close()


async def per_second(
    server: LiveServer,
    calls: int,
    in_flight: int,
    send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    expect: int,
) -> float:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with server.async_client(timeout=60, limits=limits) as client:
        semaphore = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with semaphore:
                response = await send(client, i)
                assert response.status_code == expect, response.text

        await asyncio.gather(*(one(i) for i in range(in_flight)))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as directory:
        inside = asyncio.run(round_trips_in_service(directory + "/inside", args.calls))
    with tempfile.TemporaryDirectory() as directory, LiveServer(settings_in(directory)) as server:
        with server.client() as admin:
            ids = {}
            for respond in ("sync", "async"):
                created = admin.post("/workflows/", json=workflow(f"bench-{respond}", respond))
                assert created.status_code == 201, created.text
                ids[respond] = created.json()["id"]
        http = round_trips_http(server, "bench-sync", args.calls)
        rows += [
            ("sync hook round trip, HTTP: median", f"{statistics.median(http):.2f} ms", "<= 5 ms"),
            ("sync hook round trip, HTTP: p99", f"{percentile(http, 0.99):.2f} ms", ""),
            ("sync hook in the service: median", f"{statistics.median(inside):.2f} ms", ""),
            ("sync hook in the service: p99", f"{percentile(inside, 0.99):.2f} ms", ""),
        ]

        def hook(path: str) -> Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]:
            def send(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
                return client.post(f"/hooks/{path}", json={"n": i})

            return send

        def execute(wait: bool) -> Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]:
            def send(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
                return client.post(
                    f"/workflows/{ids['sync']}/execute",
                    json={"inputs": {"body": {"n": i}, "query": {}}, "async_execution": not wait},
                )

            return send

        modes = [
            ("/hooks/{path} sync", hook("bench-sync"), 200),
            ("POST /workflows/{id}/execute sync", execute(True), 200),
            ("/hooks/{path} async (queues only)", hook("bench-async"), 202),
            ("POST /workflows/{id}/execute async (queues only)", execute(False), 202),
        ]
        for label, send, expect in modes:
            rate = asyncio.run(per_second(server, args.calls, args.in_flight, send, expect))
            rows.append((f"{label}: req/s at {args.in_flight} in flight", f"{rate:.0f}", ""))
    print_measures(rows)


if __name__ == "__main__":
    main()
