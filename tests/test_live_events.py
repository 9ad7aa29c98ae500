"""Live execution updates: WebSocket and SSE against a live server, `live.follow`, the CLI.

Runs are held mid-flight deterministically with the recording HTTP server:
a webhook node calls a path that is `hold()`-ed, so the run waits there until
the test `release()`s it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ductwork import cli as cli_module
from ductwork import live
from ductwork.api import live as live_api
from ductwork.cli import cli
from ductwork.events.base import EventBus
from ductwork.models import Event, WorkflowDefinition
from ductwork.runtime import build
from ductwork.service import NotFound
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.live_server import ADMIN_KEY, LiveServer
from tests.support.openai_stub import OpenAIStub
from tests.support.polling import eventually, wait_until
from tests.support.processes import RedisServer, worker

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEADLINE = 15.0


@pytest.fixture
def server(full_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(full_settings) as running:
        yield running


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=server.headers) as http:
        yield http


# Helpers ------------------------------------------------------------------------------


def webhook(node_id: str, url: str) -> dict[str, Any]:
    return {"id": node_id, "type": "webhook", "config": {"url": url, "method": "POST"}}


def workflow(nodes: list[dict[str, Any]], edges: list[Any]) -> dict[str, Any]:
    return {
        "name": "live",
        "nodes": nodes,
        "edges": [{"from": e[0], "to": e[1]} if isinstance(e, tuple) else e for e in edges],
    }


def branching(gate_url: str) -> dict[str, Any]:
    """A gate, a condition, two parallel branches on `true`, one on `false`, and a join."""
    return workflow(
        [
            {"id": "start", "type": "start"},
            webhook("gate", gate_url),
            {"id": "check", "type": "condition", "config": {"condition": "amount > 10"}},
            {"id": "left", "type": "delay", "config": {"delay_seconds": 0.05}},
            {
                "id": "right",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": {"double": "amount * 2"}},
            },
            {"id": "small", "type": "transformer", "config": {"transform_type": "map"}},
            {"id": "join", "type": "end"},
        ],
        [
            ("start", "gate"),
            ("gate", "check"),
            {"from": "check", "to": "left", "branch": "true"},
            {"from": "check", "to": "right", "branch": "true"},
            {"from": "check", "to": "small", "branch": "false"},
            ("left", "join"),
            ("right", "join"),
            ("small", "join"),
        ],
    )


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/workflows/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def start(client: httpx.AsyncClient, workflow_id: str, inputs: dict[str, Any]) -> str:
    response = await client.post(
        f"/workflows/{workflow_id}/execute", json={"inputs": inputs, "async_execution": True}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["execution_id"])


def on_server(server: LiveServer, coro: Any) -> Any:
    """Run a coroutine on the server's own loop (its SQLite connection lives there)."""
    return server.call(coro, timeout=5)


def stored_events(server: LiveServer, execution_id: str) -> list[Event]:
    events: list[Event] = on_server(server, server.app.store.list_events(execution_id))
    return events


def subscribers(server: LiveServer, execution_id: str) -> int:
    count: int = server.app.bus.subscriber_count(execution_id)  # type: ignore[attr-defined]
    return count


def have_snapshots(*streams: Received) -> Callable[[], bool]:
    return lambda: all(rx.snapshot is not None for rx in streams)


def is_event(kind: str, node_id: str | None = None) -> Callable[[Event], bool]:
    return lambda e: e.type == kind and (node_id is None or e.node_id == node_id)


@dataclass
class Received:
    """What a client got from one live stream."""

    snapshot: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)
    """SSE only: each event's `id:` field, None where the frame had none."""
    comments: int = 0
    status: int | None = None
    body: bytes = b""
    close_code: int | None = None
    close_reason: str = ""
    ended: bool = False
    """The server ended the stream (not the client)."""

    def has(self, predicate: Callable[[Event], bool]) -> bool:
        return any(predicate(e) for e in self.events)


async def read_ws(
    server: LiveServer,
    execution_id: str,
    *,
    after: int | None = None,
    until: Callable[[Event], bool] | None = None,
    received: Received | None = None,
) -> Received:
    """Read a WebSocket stream until the server closes it (or `until` holds: then hang up)."""
    rx = received or Received()
    url = f"ws://127.0.0.1:{server.port}/ws/executions/{execution_id}"
    if after is not None:
        url += f"?after={after}"
    async with connect(url, additional_headers=server.headers) as ws:
        try:
            async for raw in ws:
                message = orjson.loads(raw)
                if "seq" not in message:
                    assert rx.snapshot is None and message["type"] == "snapshot"
                    rx.snapshot = message
                    continue
                event = Event.model_validate(message)
                rx.events.append(event)
                if until is not None and until(event):
                    return rx
        except ConnectionClosed:
            pass
        rx.ended = True
        assert ws.close_code is not None
        rx.close_code = ws.close_code
        rx.close_reason = ws.close_reason or ""
    return rx


async def read_sse(
    server: LiveServer,
    execution_id: str,
    *,
    last_event_id: int | str | None = None,
    after: int | None = None,
    until: Callable[[Event], bool] | None = None,
    received: Received | None = None,
) -> Received:
    """Read an SSE stream frame by frame (parsed here, to check the wire format itself)."""
    rx = received or Received()
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {"after": after} if after is not None else {}
    path = f"/workflows/executions/{execution_id}/events"
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10, headers=server.headers) as http,
        http.stream("GET", path, headers=headers, params=params) as response,
    ):
        rx.status = response.status_code
        if response.status_code != 200:
            rx.body = await response.aread()
            return rx
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                rx.comments += 1
                continue
            if line:
                name, _, value = line.partition(":")
                assert name not in frame, f"repeated field {name} in one frame"
                frame[name] = value.removeprefix(" ")
                continue
            if not frame:
                continue
            if frame["event"] == "snapshot":
                assert rx.snapshot is None and "id" not in frame
                rx.snapshot = orjson.loads(frame["data"])
            else:
                event = Event.model_validate_json(frame["data"])
                assert event.type == frame["event"]
                rx.events.append(event)
                rx.ids.append(frame.get("id"))
                if until is not None and until(event):
                    return rx
            frame = {}
        rx.ended = True
    return rx


def check_order(events: list[Event], edges: list[tuple[str, str]]) -> None:
    """Stored-event invariants: contiguous seqs, run_started first, causal node order."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run_started"
    assert events[-1].type == "run_finished" and events[-1].data["status"] == "success"
    assert [e.type for e in events].count("run_finished") == 1
    where = {(e.type, e.node_id): i for i, e in enumerate(events)}
    assert len(where) == len(events), "an event repeated"
    for kind, node_id in where:
        if kind == "node_completed":
            assert where[("node_started", node_id)] < where[(kind, node_id)]
    for source, target in edges:
        if ("node_started", target) in where:
            assert where[("node_completed", source)] < where[("node_started", target)]


# WebSocket and SSE ----------------------------------------------------------------------


async def test_branching_parallel_run_arrives_in_order_on_both_transports(
    server: LiveServer, client: httpx.AsyncClient, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/gate")
    workflow_id = await create(client, branching(http_server.url("/gate")))
    execution_id = await start(client, workflow_id, {"amount": 42})
    await http_server.wait_for_calls_async("/gate", 1)

    ws_rx, sse_rx = Received(), Received()
    async with asyncio.timeout(DEADLINE):
        ws_task = asyncio.create_task(read_ws(server, execution_id, received=ws_rx))
        sse_task = asyncio.create_task(read_sse(server, execution_id, received=sse_rx))
        await eventually(have_snapshots(ws_rx, sse_rx), what="both snapshots")
        assert ws_rx.snapshot is not None
        run = ws_rx.snapshot["run"]
        assert run["status"] == "running" and run["node_states"]["gate"]["status"] == "running"
        assert [n["id"] for n in run["definition"]["nodes"]][:2] == ["start", "gate"]
        # Both are subscribed now, so what follows comes live from the bus.
        http_server.release("/gate")
        await asyncio.gather(ws_task, sse_task)

    stored = stored_events(server, execution_id)
    assert ws_rx.events == stored
    assert sse_rx.events == stored
    assert sse_rx.ids == [str(e.seq) for e in stored]
    assert ws_rx.ended and ws_rx.close_code == 1000
    assert sse_rx.ended
    check_order(
        stored,
        [
            ("start", "gate"),
            ("gate", "check"),
            ("check", "left"),
            ("check", "right"),
            ("left", "join"),
            ("right", "join"),
        ],
    )
    where = {(e.type, e.node_id): i for i, e in enumerate(stored)}
    assert ("node_skipped", "small") in where and ("node_started", "small") not in where
    # The branches overlapped: `right` ran while `left` was sleeping.
    assert where[("node_started", "left")] < where[("node_completed", "right")]
    assert where[("node_started", "right")] < where[("node_completed", "left")]
    assert stored[-1].data == {"status": "success"}
    await eventually(lambda: subscribers(server, execution_id) == 0, what="subscriptions to end")


async def test_late_subscriber_gets_a_full_replay_then_a_clean_close(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    body = workflow(
        [{"id": "start", "type": "start"}, {"id": "t", "type": "transformer"}],
        [("start", "t")],
    )
    body["nodes"][1]["config"] = {"transform_type": "compose", "mapping": {"x": "n + 1"}}
    workflow_id = await create(client, body)
    response = await client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"n": 1}})
    assert response.json()["status"] == "success"
    execution_id = response.json()["execution_id"]
    stored = stored_events(server, execution_id)
    assert len(stored) == 6

    async with asyncio.timeout(DEADLINE):
        ws_rx = await read_ws(server, execution_id)
        sse_rx = await read_sse(server, execution_id)
    assert ws_rx.events == stored == sse_rx.events
    assert ws_rx.close_code == 1000 and sse_rx.ended
    for rx in (ws_rx, sse_rx):
        assert rx.snapshot is not None
        assert rx.snapshot["run"]["status"] == "success"
        assert rx.snapshot["last_seq"] == stored[-1].seq

    async with asyncio.timeout(DEADLINE):
        # Resuming: Last-Event-ID wins over ?after=, which is the fallback.
        resumed = await read_sse(server, execution_id, last_event_id=4, after=1)
        assert resumed.events == stored[4:] and resumed.ended
        fallback = await read_sse(server, execution_id, after=2)
        assert fallback.events == stored[2:]
        # Nothing after the last id of a finished run: 204 tells EventSource to stop retrying.
        done = await read_sse(server, execution_id, last_event_id=stored[-1].seq)
        assert done.status == 204
        ws_done = await read_ws(server, execution_id, after=stored[-1].seq)
        assert ws_done.events == [] and ws_done.close_code == 1000 and ws_done.snapshot
        bad = await read_sse(server, execution_id, last_event_id="abc")
        assert bad.status == 422


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_reconnecting_mid_run_gets_exactly_the_missing_events(
    server: LiveServer,
    client: httpx.AsyncClient,
    http_server: RecordingHttpServer,
    transport: str,
) -> None:
    http_server.hold("/first")
    http_server.hold("/second")
    body = workflow(
        [
            {"id": "start", "type": "start"},
            webhook("first", http_server.url("/first")),
            webhook("second", http_server.url("/second")),
            {"id": "end", "type": "end"},
        ],
        [("start", "first"), ("first", "second"), ("second", "end")],
    )
    execution_id = await start(client, await create(client, body), {})
    await http_server.wait_for_calls_async("/first", 1)

    async def read(resume: int | None = None, **kwargs: Any) -> Received:
        if transport == "ws":
            return await read_ws(server, execution_id, after=resume, **kwargs)
        return await read_sse(server, execution_id, last_event_id=resume, **kwargs)

    async with asyncio.timeout(DEADLINE):
        # First connection: hang up while the run is held on /first.
        part1 = await read(until=is_event("node_started", "first"))
        last_seen = part1.events[-1].seq
        await eventually(
            lambda: subscribers(server, execution_id) == 0, what="the server to let go"
        )

        # While nobody watches, the run moves on to /second.
        http_server.release("/first")
        await http_server.wait_for_calls_async("/second", 1)

        part2 = Received()
        task = asyncio.create_task(read(last_seen, received=part2))
        await eventually(
            lambda: part2.has(is_event("node_started", "second")), what="the replayed part"
        )
        assert subscribers(server, execution_id) == 1
        http_server.release("/second")
        await task

    stored = stored_events(server, execution_id)
    assert part2.events[0].seq == last_seen + 1
    assert part1.events + part2.events == stored
    assert part2.ended and stored[-1].type == "run_finished"
    if transport == "sse":
        assert part2.ids == [str(e.seq) for e in part2.events]
    else:
        assert part2.close_code == 1000


async def test_streaming_ai_node_sends_token_deltas_before_it_completes(
    server: LiveServer,
    client: httpx.AsyncClient,
    http_server: RecordingHttpServer,
    llm: OpenAIStub,
) -> None:
    llm.token_latency = 0.01
    body = workflow(
        [
            {"id": "start", "type": "start"},
            webhook("gate", http_server.url("/gate")),
            {
                "id": "ai",
                "type": "ai-processor",
                "config": {"prompt": "alpha beta gamma delta epsilon", "stream": True},
            },
            {"id": "end", "type": "end"},
        ],
        [("start", "gate"), ("gate", "ai"), ("ai", "end")],
    )
    workflow_id = await create(client, body)
    # The second run is answered from the cache: its one token is produced at once,
    # before the node's `node_started` is even committed, and must still come after it.
    for expected_tokens in (range(3, 100), range(1, 2)):
        http_server.reset()
        http_server.hold("/gate")
        execution_id = await start(client, workflow_id, {})
        await http_server.wait_for_calls_async("/gate", 1)

        ws_rx, sse_rx = Received(), Received()
        async with asyncio.timeout(DEADLINE):
            tasks = [
                asyncio.create_task(read_ws(server, execution_id, received=ws_rx)),
                asyncio.create_task(read_sse(server, execution_id, received=sse_rx)),
            ]
            await eventually(have_snapshots(ws_rx, sse_rx), what="both snapshots")
            http_server.release("/gate")
            await asyncio.gather(*tasks)

        stored = stored_events(server, execution_id)
        assert not any(e.type == "token" for e in stored), "tokens must not be stored"
        for rx in (ws_rx, sse_rx):
            kinds = [(e.type, e.node_id) for e in rx.events]
            tokens = [i for i, e in enumerate(rx.events) if e.type == "token"]
            assert len(tokens) in expected_tokens, kinds
            started = kinds.index(("node_started", "ai"))
            completed = kinds.index(("node_completed", "ai"))
            assert started < tokens[0] and tokens[-1] < completed
            text = "".join(rx.events[i].data["text"] for i in tokens)
            output = rx.events[completed].data["output"]
            assert text == output == "Echo: alpha beta gamma delta epsilon"
            assert [e for e in rx.events if e.type != "token"] == stored
        # Token frames carry no id, so a reconnect resumes from the last stored seq.
        pairs = list(zip(sse_rx.events, sse_rx.ids, strict=True))
        assert all(i is None for e, i in pairs if e.type == "token")
        assert [i for e, i in pairs if e.type != "token"] == [str(e.seq) for e in stored]
    assert llm.calls == 1


async def test_unknown_execution_ids(server: LiveServer, client: httpx.AsyncClient) -> None:
    async with (
        asyncio.timeout(DEADLINE),
        connect(
            f"ws://127.0.0.1:{server.port}/ws/executions/nope", additional_headers=server.headers
        ) as ws,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404 and "not found" in closed.value.rcvd.reason
    response = await client.get("/workflows/executions/nope/events")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


async def test_sse_sends_keep_alive_comments_while_the_run_is_quiet(
    server: LiveServer,
    client: httpx.AsyncClient,
    http_server: RecordingHttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_api, "SSE_KEEPALIVE_SECONDS", 0.05)
    http_server.hold("/gate")
    body = workflow(
        [{"id": "start", "type": "start"}, webhook("gate", http_server.url("/gate"))],
        [("start", "gate")],
    )
    execution_id = await start(client, await create(client, body), {})
    await http_server.wait_for_calls_async("/gate", 1)
    rx = Received()
    async with asyncio.timeout(DEADLINE):
        task = asyncio.create_task(read_sse(server, execution_id, received=rx))
        await eventually(lambda: rx.comments >= 2, what="keep-alive comments")
        http_server.release("/gate")
        await task
    assert rx.ended and rx.events == stored_events(server, execution_id)


@pytest.mark.redis
@pytest.mark.postgres
async def test_streams_a_run_executing_in_a_worker_process(
    tmp_path: Path,
    http_server: RecordingHttpServer,
    store_url_factory: Callable[[str], str],
) -> None:
    """API process (here, role api) and a `ductwork worker` share PostgreSQL and Redis only."""
    redis = RedisServer(tmp_path).start()
    env = {
        **os.environ,
        "DUCTWORK_STORE_URL": store_url_factory("postgresql"),
        "DUCTWORK_REDIS_URL": redis.url,
        "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
        "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
    }
    settings = Settings(
        store_url=env["DUCTWORK_STORE_URL"],
        redis_url=redis.url,
        data_dir=tmp_path / "data",
        http_allow_private_networks=True,
    )
    process = worker("live-worker", env, tmp_path).start()
    api = LiveServer(settings, role="api").start()
    try:
        await asyncio.to_thread(process.wait_for_line, "consuming runs")
        http_server.hold("/gate")
        async with httpx.AsyncClient(base_url=api.url, timeout=10, headers=api.headers) as client:
            workflow_id = await create(client, branching(http_server.url("/gate")))
            execution_id = await start(client, workflow_id, {"amount": 1})
            await http_server.wait_for_calls_async("/gate", 1, timeout=10)
            ws_rx, sse_rx = Received(), Received()
            async with asyncio.timeout(DEADLINE):
                tasks = [
                    asyncio.create_task(read_ws(api, execution_id, received=ws_rx)),
                    asyncio.create_task(read_sse(api, execution_id, received=sse_rx)),
                ]
                await eventually(have_snapshots(ws_rx, sse_rx), what="both snapshots")
                await eventually(
                    lambda: subscribers(api, execution_id) == 2, what="two subscriptions"
                )
                http_server.release("/gate")
                await asyncio.gather(*tasks)
            stored = stored_events(api, execution_id)
    finally:
        api.stop()
        process.kill()
        redis.kill()
    assert ws_rx.events == stored == sse_rx.events
    assert ws_rx.close_code == 1000 and sse_rx.ended
    assert stored[-1].type == "run_finished" and stored[-1].data["status"] == "success"
    # amount 1 takes the false branch this time: `small` ran, both parallel ones were skipped.
    assert {e.node_id for e in stored if e.type == "node_skipped"} == {"left", "right"}
    assert ws_rx.snapshot is not None
    assert ws_rx.snapshot["run"]["worker"].startswith("live-worker")


# live.follow on its own ----------------------------------------------------------------


class LossyBus:
    """An in-process bus that loses the events `drop` picks (as a real one may)."""

    def __init__(self, inner: EventBus, drop: Callable[[Event], bool]) -> None:
        self.inner = inner
        self.drop = drop

    @asynccontextmanager
    async def subscribe(self, execution_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self.inner.subscribe(execution_id) as events:

            async def survivors() -> AsyncIterator[Event]:
                async for event in events:
                    if not self.drop(event):
                        yield event

            yield survivors()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_follow_fills_gaps_and_recovers_a_lost_run_finished(tmp_path: Path) -> None:
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "pause", "type": "delay", "config": {"delay_seconds": 0.1}},
        *[{"id": f"t{i}", "type": "transformer"} for i in range(5)],
    ]
    edges = [("start", "pause"), ("pause", "t0"), *[(f"t{i}", f"t{i + 1}") for i in range(4)]]
    definition = WorkflowDefinition.model_validate(workflow(nodes, edges))
    app = build(Settings(data_dir=tmp_path))
    await app.start()
    try:
        # Every even seq and the run_finished never reach the subscriber over the bus.
        app.bus = LossyBus(app.bus, lambda e: e.seq % 2 == 0 or e.type == "run_finished")  # type: ignore[assignment]
        # Record what the follower read from the store: the lost run_finished can only
        # come from there.
        reads: list[list[Event]] = []
        list_events = app.store.list_events

        async def recorded_list_events(execution_id: str, after_seq: int = 0) -> list[Event]:
            events = await list_events(execution_id, after_seq)
            reads.append(events)
            return events

        app.store.list_events = recorded_list_events  # type: ignore[method-assign]
        run = await app.execute_definition(definition, wait=False)
        async with asyncio.timeout(DEADLINE):
            got = [e async for e in live.follow(app, run.execution_id, recheck_seconds=0.05)]
        assert any(e.type == "run_finished" for events in reads for e in events)
        stored = await list_events(run.execution_id)
        assert got == stored
        assert got[-1].type == "run_finished" and len(got) > 10

        # Once finished, a follower stops right after the replay: no live tail, no re-read.
        reads.clear()
        async with asyncio.timeout(DEADLINE):
            again = [e async for e in live.follow(app, run.execution_id, after_seq=3)]
        assert again == stored[3:]
        assert reads == []
        with pytest.raises(NotFound):
            async for _ in live.follow(app, "missing"):
                pass
    finally:
        await app.close()


# CLI -----------------------------------------------------------------------------------


def invoke(args: list[str], tmp_path: Path) -> Result:
    env = {"DUCTWORK_DATA_DIR": str(tmp_path), "DUCTWORK_API_KEY": ADMIN_KEY}
    return CliRunner().invoke(cli, args, env=env)


def test_cli_run_prints_events_and_the_node_table(tmp_path: Path) -> None:
    result = invoke(["run", str(EXAMPLES / "03-branching.json")], tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Not a terminal: one line per event, in order, then the summary table.
    kinds = [line.split()[2] for line in lines if line[:2].isdigit() and line[2] == ":"]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("node_completed") == 4 and kinds.count("node_skipped") == 2
    assert "welcome_back" in result.output and "Status: success" in result.output
    assert "skipped" in result.output

    as_json = invoke(["run", str(EXAMPLES / "03-branching.json"), "--json"], tmp_path)
    assert as_json.exit_code == 0
    assert orjson.loads(as_json.stdout)["status"] == "success"


def test_cli_watch_follows_a_run_on_a_server(
    server: LiveServer, http_server: RecordingHttpServer, tmp_path: Path
) -> None:
    http_server.hold("/gate")
    http_server.script("/boom", Reply(status=500, body={"error": "down"}))
    with httpx.Client(base_url=server.url, timeout=10, headers=server.headers) as http:
        ok = http.post(
            "/workflows/",
            json=workflow(
                [{"id": "start", "type": "start"}, webhook("gate", http_server.url("/gate"))],
                [("start", "gate")],
            ),
        ).json()["id"]
        execution_id = http.post(f"/workflows/{ok}/execute", json={"async_execution": True}).json()[
            "execution_id"
        ]
        http_server.wait_for_calls("/gate", 1)

        outcome: list[Result] = []
        watcher = threading.Thread(
            target=lambda: outcome.append(
                invoke(["watch", execution_id, "--url", server.url], tmp_path)
            )
        )
        watcher.start()
        wait_until(lambda: subscribers(server, execution_id) == 1, what="watch to subscribe")
        http_server.release("/gate")
        watcher.join(DEADLINE)
        assert outcome, "watch did not finish"
        assert outcome[0].exit_code == 0, outcome[0].output
        assert "run_finished" in outcome[0].output and "Status: success" in outcome[0].output
        assert "gate" in outcome[0].output

        failing = http.post(
            "/workflows/",
            json=workflow(
                [{"id": "start", "type": "start"}, webhook("boom", http_server.url("/boom"))],
                [("start", "boom")],
            ),
        ).json()["id"]
        failed_id = http.post(f"/workflows/{failing}/execute", json={}).json()["execution_id"]
    failed = invoke(["watch", failed_id, "--url", server.url], tmp_path)
    assert failed.exit_code == 1 and "Status: error" in failed.output
    unknown = invoke(["watch", "no-such-run", "--url", server.url], tmp_path)
    assert unknown.exit_code == 2


def test_cli_run_on_a_terminal_shows_a_live_table_with_streamed_text(
    tmp_path: Path, llm: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow enough that a frame (12 a second) falls between two chunks on a loaded machine.
    llm.token_latency = 0.5
    # As on a terminal (Rich decides at creation; the CLI's console was made under pytest).
    monkeypatch.setattr(
        cli_module, "console", Console(force_terminal=True, force_interactive=True, width=120)
    )
    path = tmp_path / "stream.json"
    path.write_bytes(
        orjson.dumps(
            workflow(
                [
                    {"id": "start", "type": "start"},
                    {
                        "id": "ai",
                        "type": "ai-processor",
                        "config": {"prompt": "one two three four five six", "stream": True},
                    },
                ],
                [("start", "ai")],
            )
        )
    )
    env = {
        "DUCTWORK_DATA_DIR": str(tmp_path),
        "DUCTWORK_LLM_BASE_URL": llm.base_url,
        "DUCTWORK_LLM_API_KEY": "test-key",
        "COLUMNS": "120",
    }
    result = CliRunner().invoke(cli, ["run", str(path)], env=env)
    assert result.exit_code == 0, result.output
    # Frames of the live table went by: a spinner on the running node with part of its
    # streamed reply, then the final table (no per-event lines on a terminal).
    running = [line for line in result.output.splitlines() if "running" in line and "│ ai " in line]
    assert any("Echo: one" in line and "six" not in line for line in running), running
    assert "node_started" not in result.output
    assert "Status:" in result.output and "success" in result.output


class TcpProxy:
    """Forwards a local port to the server; `cut()` drops every open connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.heads: list[bytes] = []
        """The first bytes each client sent (its request line and headers)."""
        self._down: list[bytearray] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        )
        self._server = started.result(5)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        first = await reader.read(65536)
        self.heads.append(first)
        down = bytearray()
        self._down.append(down)
        up_writer.write(first)

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, seen: bytearray | None = None
        ) -> None:
            try:
                while data := await src.read(65536):
                    if seen is not None:
                        seen += data
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer, down))
        self._writers -= {writer, up_writer}

    def downstream(self, index: int) -> bytes:
        """What the server sent back on the index-th connection so far."""
        return bytes(self._down[index]) if index < len(self._down) else b""

    def cut(self) -> None:
        def abort() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self.loop.call_soon_threadsafe(abort)

    def __exit__(self, *exc: object) -> None:
        self.cut()
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def test_cli_watch_resumes_with_last_event_id_after_the_connection_drops(
    server: LiveServer, http_server: RecordingHttpServer, tmp_path: Path
) -> None:
    http_server.hold("/gate")
    body = workflow(
        [{"id": "start", "type": "start"}, webhook("gate", http_server.url("/gate"))],
        [("start", "gate")],
    )
    with (
        httpx.Client(base_url=server.url, timeout=10, headers=server.headers) as http,
        TcpProxy(server.port) as proxy,
    ):
        workflow_id = http.post("/workflows/", json=body).json()["id"]
        execution_id = http.post(
            f"/workflows/{workflow_id}/execute", json={"async_execution": True}
        ).json()["execution_id"]
        http_server.wait_for_calls("/gate", 1)
        seen = len(stored_events(server, execution_id))

        outcome: list[Result] = []
        watcher = threading.Thread(
            target=lambda: outcome.append(
                invoke(["watch", execution_id, "--url", proxy.url], tmp_path)
            )
        )
        watcher.start()
        # Cut once the replay up to the held node has reached the client.
        wait_until(lambda: b"id: %d\n" % seen in proxy.downstream(0), what="the replay to arrive")
        proxy.cut()
        wait_until(lambda: len(proxy.heads) >= 2, what="watch to reconnect")
        wait_until(lambda: subscribers(server, execution_id) == 1, what="the new subscription")
        http_server.release("/gate")
        watcher.join(DEADLINE)

    assert outcome, "watch did not finish"
    assert outcome[0].exit_code == 0, outcome[0].output
    assert b"last-event-id: %d" % seen in proxy.heads[1].lower()
    seqs = [
        int(line.split()[1])
        for line in outcome[0].output.splitlines()
        if line[:2].isdigit() and line[2] == ":"
    ]
    assert seqs == [e.seq for e in stored_events(server, execution_id)], outcome[0].output
