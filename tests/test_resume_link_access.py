"""Who sees resume links: principals that may RUN do, everyone else does not.

A resume link resumes its run without a key, so showing it to a viewer would let a
viewer do what needs RUN. Every way a run or its events reach a client is read here
with a viewer, operator, editor and admin key, over a real server: the execution,
both runs lists, SSE and WebSocket (snapshot, replayed and live events).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from ductwork.cli import RunProgress
from ductwork.models import Event, utcnow
from ductwork.settings import Settings
from tests.support.live_server import LiveServer, auth_headers
from tests.support.polling import wait_until

ROLES = ("viewer", "operator", "editor", "admin")
MAY_RUN = {"viewer": False, "operator": True, "editor": True, "admin": True}
LINK_MARK = "/resume/"
"""What every resume link's path holds (`{base}/resume/{token}`)."""
READ_TIMEOUT = 30.0
"""Seconds a stream may stay silent before the test gives up: a deadline, not a speed check."""

TWO_WAITS: dict[str, Any] = {
    "name": "two approvals",
    "nodes": [
        {"id": "start", "type": "start", "config": {}},
        {"id": "w1", "type": "wait", "config": {"title": "First?", "timeout_seconds": 3600}},
        {"id": "w2", "type": "wait", "config": {"title": "Second?", "timeout_seconds": 3600}},
        {"id": "end", "type": "end", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "w1"},
        {"from": "w1", "to": "w2"},
        {"from": "w2", "to": "end"},
    ],
}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(data_dir=tmp_path, sync_wait_seconds=10)) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def make_key(admin: httpx.Client, role: str) -> str:
    answer = admin.post("/auth/keys", json={"name": f"{role} key", "role": role})
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key


def run_of(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    answer = client.get(f"/workflows/executions/{execution_id}")
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()
    return run


def parked_on(client: httpx.Client, execution_id: str, node_id: str) -> None:
    def parked() -> bool:
        run = run_of(client, execution_id)
        return run["node_states"].get(node_id, {}).get("status") == "waiting"

    wait_until(parked, what=f"{node_id} waiting")


def is_waiting_event(message: dict[str, Any], node_id: str) -> bool:
    return message.get("type") == "node_waiting" and message.get("node_id") == node_id


@dataclass
class SseReader:
    """An open SSE response, read frame by frame; `text` is everything read so far."""

    lines: Iterator[str]
    text: list[str] = field(default_factory=list)

    def until_waiting(self, node_id: str) -> dict[str, Any]:
        """Read up to the `node_waiting` frame of `node_id`; its data."""
        for line in self.lines:
            self.text.append(line)
            if line.startswith("data:"):
                message = json.loads(line.removeprefix("data:"))
                if is_waiting_event(message, node_id):
                    return message
        raise AssertionError(f"the SSE stream ended before {node_id} waited")


@dataclass
class SocketReader:
    """An open WebSocket, read message by message; `text` is everything read so far."""

    socket: ClientConnection
    text: list[str] = field(default_factory=list)

    def until_waiting(self, node_id: str) -> dict[str, Any]:
        """Read up to the `node_waiting` message of `node_id`; its data."""
        while True:
            raw = str(self.socket.recv(timeout=READ_TIMEOUT))
            self.text.append(raw)
            message = json.loads(raw)
            if is_waiting_event(message, node_id):
                result: dict[str, Any] = message
                return result


def test_only_principals_that_may_run_see_resume_links(
    live: LiveServer, admin: httpx.Client
) -> None:
    created = admin.post("/workflows/", json=TWO_WAITS)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    started = admin.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
    assert started.status_code == 202, started.text
    execution_id = started.json()["execution_id"]
    parked_on(admin, execution_id, "w1")

    keys = {role: live.admin_key if role == "admin" else make_key(admin, role) for role in ROLES}
    seen: dict[str, list[str]] = {role: [] for role in ROLES}
    waiting_events: dict[str, list[dict[str, Any]]] = {role: [] for role in ROLES}
    with ExitStack() as stack:
        clients = {
            role: stack.enter_context(
                httpx.Client(base_url=live.url, timeout=READ_TIMEOUT, headers=auth_headers(key))
            )
            for role, key in keys.items()
        }
        # Streams opened while w1 waits: the snapshot and the replayed node_waiting of w1.
        readers: dict[str, list[SseReader | SocketReader]] = {}
        for role, key in keys.items():
            events_path = f"/workflows/executions/{execution_id}/events"
            response = stack.enter_context(clients[role].stream("GET", events_path))
            assert response.status_code == 200
            socket = stack.enter_context(
                connect(
                    f"{live.ws_url}/ws/executions/{execution_id}",
                    additional_headers=auth_headers(key),
                )
            )
            readers[role] = [SseReader(response.iter_lines()), SocketReader(socket)]
        for role in ROLES:
            for reader in readers[role]:
                waiting_events[role].append(reader.until_waiting("w1"))

        # w1 answered (its used link stays in its meta), w2 parks: a live node_waiting.
        answered = admin.post(f"/workflows/executions/{execution_id}/nodes/w1/resume", json={})
        assert answered.status_code == 202, answered.text
        parked_on(admin, execution_id, "w2")
        for role in ROLES:
            for reader in readers[role]:
                waiting_events[role].append(reader.until_waiting("w2"))
                seen[role].extend(reader.text)

        for role, client in clients.items():
            for path in (
                f"/workflows/executions/{execution_id}",
                f"/workflows/{workflow_id}/executions",
                "/workflows/executions",
                "/workflows/executions?status=waiting",
            ):
                answer = client.get(path)
                assert answer.status_code == 200, (role, path, answer.text)
                seen[role].append(answer.text)

    link = live.app.resume_links.url(execution_id, "w2")  # type: ignore[union-attr]
    for role in ROLES:
        text = "\n".join(seen[role])
        if MAY_RUN[role]:
            assert link in text, role
            for event in waiting_events[role]:
                assert LINK_MARK in event["data"]["resume_url"], role
        else:
            assert LINK_MARK not in text, role
            for event in waiting_events[role]:
                assert "resume_url" not in event["data"], event
                assert event["data"]["resumable"] is True
                assert event["data"]["timeout_at"] is not None

    # The viewer still sees that w2 waits, until when and why; only the link is left out.
    with httpx.Client(base_url=live.url, headers=auth_headers(keys["viewer"])) as viewer:
        w2 = run_of(viewer, execution_id)["node_states"]["w2"]
    assert w2["status"] == "waiting"
    assert w2["resumable"] is True
    assert w2["title"] == "Second?"
    assert w2["timeout_at"] is not None
    assert "resume_url" not in w2


def test_the_cli_says_a_node_waits_when_the_server_leaves_its_link_out() -> None:
    """`ductwork watch` with a viewer key: no link to show, and no `resume: None` either."""
    waiting = {"status": "waiting", "resumable": True, "title": "Ship?", "output": None}
    view = {
        "execution_id": "run-1",
        "status": "waiting",
        "definition": {"name": "approval", "nodes": [{"id": "w", "type": "wait"}]},
        "node_states": {"w": waiting},
    }
    from_snapshot = RunProgress(view)
    assert from_snapshot.rows["w"].detail == "waiting to be resumed"
    from_events = RunProgress({**view, "status": "running", "node_states": {}})
    event = Event(
        seq=3,
        type="node_waiting",
        node_id="w",
        timestamp=utcnow(),
        data={"resumable": True, "timeout_at": None},
    )
    from_events.apply(event)
    assert (from_events.rows["w"].status, from_events.rows["w"].detail) == (
        "waiting",
        "waiting to be resumed",
    )
