"""Inbound webhook benchmarks on embedded defaults (SQLite, in-process queue). Prints a table.

    .venv/bin/python bench/hooks.py [--calls 400] [--in-flight 16]

1. round trip of a `respond: sync` webhook for a 3-node workflow (start ->
   transformer -> end), one call at a time, median and p99: over HTTP (`POST
   /hooks/{path}` to a uvicorn server on 127.0.0.1 in this process, as
   bench/engine.py) and inside the service (`Ductwork.call_hook`, no HTTP). Each is
   interleaved call by call with the same run through `POST /workflows/{id}/execute`
   (resp. `Ductwork.execute`), so a busy machine slows both alike and the difference
   is what the webhook path adds. Each is also given as CPU time of this process per
   call (client and server share it; calls are sequential, so on an idle machine the
   round trip is about that): a shared, busy machine inflates wall time, not CPU time;
2. requests per second through `/hooks/{path}` (sync and async) against
   `POST /workflows/{id}/execute` (sync and `async_execution`), `--in-flight` calls
   at a time. Async calls only queue runs; the backlog is drained between modes.

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
from tests.support.polling import wait_until

from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.triggers.hooks import HookCall

MAPPING = {"x": "body.n + 1", "who": "query.get('who', 'anyone')"}

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


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


def inputs(n: int) -> dict[str, Any]:
    """What the execute route is given: the inputs a hook call would produce."""
    return {"body": {"n": n}, "query": {"who": "bench"}}


def settings_in(directory: str) -> Settings:
    return Settings(
        data_dir=Path(directory),
        hook_rate_limit="100000000/minute",
        execute_rate_limit="100000000/minute",
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Timings:
    """Wall and CPU milliseconds of each measured call."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._wall = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self, keep: bool = True) -> None:
        if keep:
            self.wall.append((time.perf_counter() - self._wall) * 1000)
            self.cpu.append((time.process_time() - self._cpu) * 1000)


def round_trips_http(
    server: LiveServer, path: str, workflow_id: str, calls: int
) -> tuple[Timings, Timings, Timings]:
    """(hook, execute, refused) round trips, one call at a time, interleaved; `refused`
    is a call to a path nobody serves: the HTTP floor of the route, no run."""
    hook, execute, refused = Timings(), Timings(), Timings()
    with httpx.Client(base_url=server.url, timeout=30, headers=server.headers) as client:
        for i in range(calls + calls // 10):
            keep = i >= calls // 10  # warm-up: connection, plan cache, route cache
            hook.start()
            response = client.post(f"/hooks/{path}?who=bench", json={"n": i})
            hook.stop(keep)
            assert response.status_code == 200 and response.json()["x"] == i + 1, response.text
            execute.start()
            response = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": inputs(i)})
            execute.stop(keep)
            assert response.json()["result"]["x"] == i + 1, response.text
            refused.start()
            response = client.post("/hooks/nobody-serves-this", json={"n": i})
            refused.stop(keep)
            assert response.status_code == 404, response.text
    return hook, execute, refused


async def round_trips_in_service(directory: str, calls: int) -> tuple[Timings, Timings]:
    """(hook, execute) inside one process, without HTTP, interleaved."""
    app = build(settings_in(directory))
    await app.start()
    try:
        saved = await app.create_workflow(
            WorkflowDefinition.model_validate(workflow("inside", "sync"))
        )
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
        hook, execute = Timings(), Timings()
        for i in range(calls + calls // 10):
            keep = i >= calls // 10
            hook.start()
            answer = await app.call_hook(call)
            hook.stop(keep)
            assert answer.status == 200, answer.body
            execute.start()
            run, _ = await app.execute(saved.id, inputs(1), wait=True, with_events=False)
            execute.stop(keep)
            assert run.status == "success", run.error
        return hook, execute
    finally:
        await app.close()


async def per_second(
    server: LiveServer, calls: int, in_flight: int, send: Send, expect: int
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


def drained(server: LiveServer) -> bool:
    """No run of the server is queued or running (async modes leave a backlog)."""
    queue = server.app.queue
    backlog = getattr(queue, "_queue", None)
    return not server.app.executor.active_runs and (backlog is None or backlog.empty())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as directory:
        inside_hook, inside_execute = asyncio.run(round_trips_in_service(directory, args.calls))
    with tempfile.TemporaryDirectory() as directory, LiveServer(settings_in(directory)) as server:
        with server.client() as admin:
            ids = {}
            for respond in ("sync", "async"):
                created = admin.post("/workflows/", json=workflow(f"bench-{respond}", respond))
                assert created.status_code == 201, created.text
                ids[respond] = created.json()["id"]
        http_hook, http_execute, http_refused = round_trips_http(
            server, "bench-sync", ids["sync"], args.calls
        )
        for label, hook, execute, target in (
            ("HTTP", http_hook, http_execute, "<= 5 ms"),
            ("in the service", inside_hook, inside_execute, ""),
        ):
            if label == "HTTP":
                rows.append(
                    (
                        "refused hook (404, no run), HTTP: median",
                        f"{statistics.median(http_refused.wall):.2f} ms",
                        "",
                    )
                )
            for what, timings, goal in (("sync hook", hook, target), ("  execute", execute, "")):
                rows += [
                    (f"{what}, {label}: median", f"{statistics.median(timings.wall):.2f} ms", goal),
                    (f"{what}, {label}: p99", f"{percentile(timings.wall, 0.99):.2f} ms", ""),
                    (
                        f"{what}, {label}: CPU per call",
                        f"{statistics.median(timings.cpu):.2f} ms",
                        goal,
                    ),
                ]

        def hook(path: str) -> Send:
            def send(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
                return client.post(f"/hooks/{path}?who=bench", json={"n": i})

            return send

        def execute(wait: bool) -> Send:
            def send(client: httpx.AsyncClient, i: int) -> Awaitable[httpx.Response]:
                return client.post(
                    f"/workflows/{ids['sync']}/execute",
                    json={"inputs": inputs(i), "async_execution": not wait},
                )

            return send

        modes: list[tuple[str, Send, int]] = [
            ("/hooks/{path} sync", hook("bench-sync"), 200),
            ("POST /workflows/{id}/execute sync", execute(True), 200),
            ("/hooks/{path} async (queues only)", hook("bench-async"), 202),
            ("POST /workflows/{id}/execute async (queues only)", execute(False), 202),
        ]
        for label, send, expect in modes:
            rate = asyncio.run(per_second(server, args.calls, args.in_flight, send, expect))
            rows.append((f"{label}: req/s, {args.in_flight} in flight", f"{rate:.0f}", ""))
            wait_until(lambda: drained(server), within=300, interval=0.1, what="backlog drained")
    print_measures(rows)


if __name__ == "__main__":
    main()
