"""Live event delivery over WebSocket from one embedded API process. Prints a table.

    .venv/bin/python bench/live_events.py [--levels 100,500,1000,2000] [--nodes 40]

The server is `ductwork serve` in a subprocess (embedded defaults: SQLite,
in-process queue and bus, uvloop and httptools), so this process's client work
does not share its event loop. Everything is on 127.0.0.1.

1. Latency: one subscriber follows runs of a chain of delay+transformer nodes;
   for every `node_completed` the latency is the client's receive time minus the
   event's timestamp (set when the node finished, before its commit).
2. Fan-out: N subscribers on ONE run (held at a gate until all are connected),
   N ramped up. For each level: how many subscribers received every stored event
   (exactly, in order) and a clean close, latency percentiles over all
   (subscriber, node_completed) pairs, the time from the last node finishing to
   the last subscriber getting `run_finished`, and the server's RSS growth.

Clients negotiate permessage-deflate as browsers do; BENCH_WS_COMPRESSION= (empty)
turns it off.

Bounded: every wait has a deadline, and the default levels finish well under
two minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import ADMIN_KEY, auth_headers
from tests.support.smtp_server import free_port

HEADERS = auth_headers(ADMIN_KEY)

CONNECT_CONCURRENCY = 200
COMPRESSION: str | None = os.environ.get("BENCH_WS_COMPRESSION", "deflate") or None


def chain_workflow(gate_url: str, nodes: int, delay: float) -> dict[str, Any]:
    """start -> gate (held webhook) -> (delay -> transformer) x nodes -> end."""
    spec: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "gate", "type": "webhook", "config": {"url": gate_url, "method": "POST"}},
    ]
    edges = [{"from": "start", "to": "gate"}]
    previous = "gate"
    for i in range(nodes):
        spec.append({"id": f"d{i}", "type": "delay", "config": {"delay_seconds": delay}})
        spec.append(
            {
                "id": f"t{i}",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": {"i": str(i)}},
            }
        )
        edges += [{"from": previous, "to": f"d{i}"}, {"from": f"d{i}", "to": f"t{i}"}]
        previous = f"t{i}"
    spec.append({"id": "end", "type": "end"})
    edges.append({"from": previous, "to": "end"})
    return {"name": f"live-bench-{nodes}", "nodes": spec, "edges": edges}


class Server:
    """`ductwork serve` in a subprocess on a free port."""

    def __init__(self, data_dir: str, scaled_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DUCTWORK_DATA_DIR": data_dir,
            "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
            "DUCTWORK_REDIS_URL": "",
            "DUCTWORK_ADMIN_API_KEY": ADMIN_KEY,
        }
        env.pop("DUCTWORK_STORE_URL", None)
        env.update(scaled_env or {})
        self.log = open(Path(data_dir) / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ductwork.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ductwork server did not start; see server.log")
            time.sleep(0.05)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


@dataclass
class Subscriber:
    """One WebSocket client: what it received and when."""

    snapshot: bool = False
    seqs: list[int] = field(default_factory=list)
    received: list[tuple[float, float]] = field(default_factory=list)
    """(node_completed timestamp, receive time) pairs, epoch seconds."""
    finished_at: float | None = None
    close_code: int | None = None
    error: str | None = None


async def subscribe(ws: ClientConnection, sub: Subscriber, ready: asyncio.Event) -> None:
    try:
        async for raw in ws:
            now = time.time()
            message = orjson.loads(raw)
            if "seq" not in message:
                sub.snapshot = True
                ready.set()
                continue
            sub.seqs.append(message["seq"])
            if message["type"] == "node_completed":
                stamp = datetime.fromisoformat(message["timestamp"]).timestamp()
                sub.received.append((stamp, now))
            elif message["type"] == "run_finished":
                sub.finished_at = now
    except Exception as exc:
        sub.error = f"{type(exc).__name__}: {exc}"
    sub.close_code = ws.close_code


def live_latencies(subs: list[Subscriber], released_at: float) -> list[float]:
    """Milliseconds from node finished to received, for nodes that finished live.

    Events replayed to a subscriber that connected later (the run's start) do
    not measure delivery, so only nodes finished after the gate opened count.
    """
    return [
        (received - stamp) * 1000
        for sub in subs
        for stamp, received in sub.received
        if stamp >= released_at
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def start_run(client: httpx.AsyncClient, workflow_id: str) -> str:
    response = await client.post(
        f"/workflows/{workflow_id}/execute", json={"async_execution": True}
    )
    response.raise_for_status()
    return str(response.json()["execution_id"])


async def stored_seqs(client: httpx.AsyncClient, execution_id: str) -> list[int]:
    """The run's stored seqs, read back over SSE from a finished run (a full replay)."""
    seqs = []
    async with client.stream("GET", f"/workflows/executions/{execution_id}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                seqs.append(int(line[4:]))
    return seqs


async def one_level(
    server: Server,
    client: httpx.AsyncClient,
    gate: RecordingHttpServer,
    workflow_id: str,
    count: int,
    deadline_s: float,
) -> dict[str, Any]:
    gate.reset()
    gate.hold("/gate")
    execution_id = await start_run(client, workflow_id)
    await gate.wait_for_calls_async("/gate", 1, timeout=10)
    ws_url = f"ws://127.0.0.1:{server.port}/ws/executions/{execution_id}"
    rss_before = server.rss_mib()
    subs = [Subscriber() for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    sockets: list[ClientConnection] = []
    tasks: list[asyncio.Task[None]] = []
    limiter = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(i: int) -> None:
        async with limiter:
            ws = await connect(
                ws_url,
                additional_headers=HEADERS,
                ping_interval=None,
                max_queue=None,
                open_timeout=30,
                compression=COMPRESSION,
            )
            sockets.append(ws)
            tasks.append(asyncio.create_task(subscribe(ws, subs[i], readies[i])))
            await readies[i].wait()

    began = time.monotonic()
    try:
        async with asyncio.timeout(deadline_s):
            await asyncio.gather(*(open_one(i) for i in range(count)))
            connect_s = time.monotonic() - began
            rss_connected = server.rss_mib()
            cpu_server, cpu_client = server.cpu_seconds(), time.process_time()
            released_at = time.time()
            gate.release("/gate")
            await asyncio.gather(*tasks)
            cpu_server, cpu_client = (
                server.cpu_seconds() - cpu_server,
                time.process_time() - cpu_client,
            )
    except TimeoutError:
        connect_s = time.monotonic() - began
        rss_connected = server.rss_mib()
        cpu_server = cpu_client = float("nan")
        released_at = time.time()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    expected = await stored_seqs(client, execution_id)
    complete = sum(1 for s in subs if s.seqs == expected and s.close_code == 1000)
    latencies = live_latencies(subs, released_at)
    finishes = [s.finished_at for s in subs if s.finished_at is not None]
    run = (await client.get(f"/workflows/executions/{execution_id}")).json()
    last_node_done = max(
        datetime.fromisoformat(state["finished_at"]).timestamp()
        for state in run["node_states"].values()
        if state.get("finished_at")
    )
    errors = sorted({s.error for s in subs if s.error})
    return {
        "subscribers": count,
        "complete": complete,
        "events": len(expected),
        "connect_s": connect_s,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "drain_ms": (max(finishes) - last_node_done) * 1000 if finishes else float("nan"),
        "rss_mib": rss_connected,
        "rss_growth_mib": rss_connected - rss_before,
        "cpu_server": cpu_server,
        "cpu_client": cpu_client,
        "errors": errors[:3],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="100,500,1000,2000")
    parser.add_argument("--nodes", type=int, default=40, help="delay+transformer pairs per run")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per delay node")
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="API-only server + one `ductwork worker` on PostgreSQL and a private Redis: "
        "events cross processes through Redis",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]

    with tempfile.TemporaryDirectory() as tmp, RecordingHttpServer() as gate:
        scaled_env: dict[str, str] = {}
        cleanup: list[Any] = []
        if args.scaled:
            from tests.support.processes import RedisServer, worker
            from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, unique_name

            redis = RedisServer(Path(tmp)).start()
            cleanup.append(redis.kill)
            database = unique_name("live_bench")
            postgres_execute(DEFAULT_POSTGRES_URL, f'CREATE DATABASE "{database}"')
            cleanup.append(
                lambda: postgres_execute(
                    DEFAULT_POSTGRES_URL, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
                )
            )
            scaled_env = {
                "DUCTWORK_REDIS_URL": redis.url,
                "DUCTWORK_STORE_URL": DEFAULT_POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}",
            }
            runner = worker(
                "bench-worker",
                {
                    **os.environ,
                    **scaled_env,
                    "DUCTWORK_DATA_DIR": tmp,
                    "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
                },
                Path(tmp),
            ).start()
            runner.wait_for_line("consuming runs")
            cleanup.insert(0, runner.kill)
        server = Server(tmp, scaled_env)
        try:
            server.wait_ready()
            async with httpx.AsyncClient(
                base_url=server.url, timeout=30, headers=HEADERS
            ) as client:
                body = chain_workflow(gate.url("/gate"), args.nodes, args.delay)
                created = await client.post("/workflows/", json=body)
                created.raise_for_status()
                workflow_id = created.json()["id"]

                # 1. One subscriber, several runs: latency of every node_completed.
                samples = await single_subscriber_samples(server, client, gate, workflow_id, args)
                print_latency(samples, args)

                # 2. Fan-out to many subscribers on one run.
                rows = []
                for count in levels:
                    rows.append(await one_level(server, client, gate, workflow_id, count, 60))
                print_fanout(rows, args)
        finally:
            server.stop()
            for step in cleanup:
                step()


async def single_subscriber_samples(
    server: Server,
    client: httpx.AsyncClient,
    gate: RecordingHttpServer,
    workflow_id: str,
    args: argparse.Namespace,
) -> list[float]:
    """Every node_completed latency seen by one subscriber over `latency_runs` runs."""
    samples: list[float] = []
    for _ in range(args.latency_runs):
        gate.reset()
        gate.hold("/gate")
        execution_id = await start_run(client, workflow_id)
        await gate.wait_for_calls_async("/gate", 1, timeout=10)
        sub, ready = Subscriber(), asyncio.Event()
        async with asyncio.timeout(30):
            ws = await connect(
                f"ws://127.0.0.1:{server.port}/ws/executions/{execution_id}",
                additional_headers=HEADERS,
            )
            task = asyncio.create_task(subscribe(ws, sub, ready))
            await ready.wait()
            released_at = time.time()
            gate.release("/gate")
            await task
        assert sub.close_code == 1000, sub
        samples.extend(live_latencies([sub], released_at))
    return samples


def print_latency(samples: list[float], args: argparse.Namespace) -> None:
    print()
    print(
        f"node finished -> WebSocket client received, 1 subscriber, "
        f"{args.latency_runs} runs x {args.nodes} delay+transformer pairs "
        f"({len(samples)} node_completed events)"
    )
    print(f"{'median':>10} {'p90':>10} {'p99':>10} {'max':>10}")
    print(
        f"{statistics.median(samples):>8.2f}ms {percentile(samples, 0.9):>8.2f}ms "
        f"{percentile(samples, 0.99):>8.2f}ms {max(samples):>8.2f}ms"
    )


def print_fanout(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"fan-out: N WebSocket subscribers on one run ({rows[0]['events']} stored events: "
        f"{args.nodes} delay+transformer pairs, {args.delay * 1000:.0f} ms delays), "
        f"one API process, WebSocket compression {COMPRESSION or 'off'}"
    )
    header = (
        f"{'subs':>6} {'got all':>8} {'connect':>9} {'p50':>9} {'p99':>9} {'max':>9} "
        f"{'drain':>9} {'RSS':>8} {'srv CPU':>8} {'cli CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['subscribers']:>6} {row['complete']:>8} {row['connect_s']:>8.2f}s "
            f"{row['p50']:>7.1f}ms {row['p99']:>7.1f}ms {row['max']:>7.1f}ms "
            f"{row['drain_ms']:>7.1f}ms {row['rss_mib']:>5.0f}MiB "
            f"{row['cpu_server']:>7.2f}s {row['cpu_client']:>7.2f}s"
        )
        if row["errors"]:
            print(f"       errors: {row['errors']}")
    print(
        "\ngot all: subscribers that received every stored event in order and a 1000 close;"
        "\nlatency: receive time - node_completed timestamp, over all subscribers;"
        "\ndrain: last node finished -> last subscriber received run_finished;"
        "\nRSS: the server process with N subscribers connected (allocator keeps earlier peaks);"
        "\nCPU: seconds used by the server / this client process from gate release to the end."
    )


if __name__ == "__main__":
    asyncio.run(main())
