"""Every limit of docs/api-limits.md: a clear 4xx or node error naming its setting.

Over HTTP against a live uvicorn server (a real socket for the body size), and
at engine level (`build_plan` with `WorkflowLimits`, runs of an embedded app).
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from ductwork.engine.graph import WorkflowInvalid, build_plan, validate
from ductwork.engine.limits import WorkflowLimits
from ductwork.models import NodeStatus, RunStatus, WorkflowDefinition
from ductwork.nodes.registry import REGISTRY
from ductwork.settings import Settings
from tests.support.engine import definition, embedded
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub
from tests.support.polling import eventually
from tests.support.smtp_server import SmtpTestServer

MB = 1_000_000

NO_AUTH = {"auth": "disabled"}
"""The servers these tests start themselves answer without a key (bound to loopback),
so what they see is the limit under test, whatever the auth guard does first."""


def workflow(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    """A workflow body; every node gets an empty config unless given one."""
    return {
        "name": "limits",
        "nodes": [{"config": {}, **node} for node in nodes],
        "edges": [{"from": a, "to": b} for a, b in edges],
    }


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """start -> nodes... in a line."""
    all_nodes = [{"id": "start", "type": "start"}, *nodes]
    ids = [node["id"] for node in all_nodes]
    return workflow(all_nodes, list(itertools.pairwise(ids)))


def only_issue(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1, detail
    issue: dict[str, Any] = detail[0]
    return issue


# Request body size: a real socket, a real 20 MB body ---------------------------------------


class BodyCounter:
    """Wraps the served ASGI app and counts the body bytes the app pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def small_body_server(full_settings: Settings) -> Iterator[tuple[LiveServer, BodyCounter]]:
    settings = full_settings.model_copy(update={**NO_AUTH, "max_request_bytes": MB})
    live = LiveServer(settings)
    counter = BodyCounter(live.server.config.app)
    live.server.config.app = counter
    with live:
        yield live, counter


def read_response(sock: socket.socket, within: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(within)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-response"
        body += chunk
    return status, headers, body[:length]


def send_until_refused(sock: socket.socket, chunks: Iterator[bytes]) -> int:
    """Send chunks until they run out or the server drops the connection; bytes sent."""
    sent = 0
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # EPIPE / ECONNRESET: the server closed the connection
        pass
    return sent


def test_declared_body_over_the_limit_gets_413_before_it_is_read(
    small_body_server: tuple[LiveServer, BodyCounter],
) -> None:
    live, counter = small_body_server
    total = 20 * MB
    piece = b"x" * 65536
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(
            b"POST /workflows/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {total}\r\n\r\n".encode()
            + piece[:1024]
        )
        status, headers, body = read_response(sock)
        assert status == 413
        assert headers["connection"] == "close"
        assert "DUCTWORK_MAX_REQUEST_BYTES" in orjson.loads(body)["detail"]
        # The rest of the 20 MB: the server has dropped the connection, so it cannot all go.
        sock.settimeout(15)
        sent = 1024 + send_until_refused(sock, (piece for _ in range(total // len(piece))))
    assert sent < total
    assert counter.read == 0  # not one byte of the body reached the app


def test_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
    small_body_server: tuple[LiveServer, BodyCounter],
) -> None:
    live, counter = small_body_server
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(
            b"POST /workflows/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sent: list[int] = []
        sender = threading.Thread(
            target=lambda: sent.append(
                send_until_refused(sock, (chunk for _ in range(20 * MB // len(piece))))
            ),
            daemon=True,
        )
        sender.start()
        status, _, body = read_response(sock)
        assert status == 413
        assert "DUCTWORK_MAX_REQUEST_BYTES" in orjson.loads(body)["detail"]
        sender.join(timeout=30)
        assert not sender.is_alive()
    assert sent[0] < 20 * MB
    # Read up to the limit, plus at most what the server had buffered in one read.
    assert MB < counter.read <= MB + 4 * len(piece)


def test_body_just_under_the_limit_is_read(
    small_body_server: tuple[LiveServer, BodyCounter],
) -> None:
    live, _ = small_body_server
    body = chain({"id": "end", "type": "end"})
    body["metadata"] = {"padding": "x" * (MB - 10_000)}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.post("/workflows/", json=body).status_code == 201
        body["metadata"] = {"padding": "x" * (MB + 10)}
        refused = client.post("/workflows/", json=body)
    assert refused.status_code == 413
    assert "DUCTWORK_MAX_REQUEST_BYTES" in refused.json()["detail"]


# JSON routes take JSON only ----------------------------------------------------------------


@pytest.fixture
def workflow_id(client: httpx.Client) -> str:
    created = client.post("/workflows/", json=chain({"id": "end", "type": "end"}))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/x-www-form-urlencoded", b"inputs=1"),
        ("application/x-www-form-urlencoded", b""),
        ("multipart/form-data; boundary=b", b"--b\r\n\r\nx\r\n--b--\r\n"),
        ("text/plain", b'{"inputs": {}}'),
        (None, b'{"inputs": {}}'),  # a no-cors fetch of a Blob sends no Content-Type
    ],
)
def test_cross_site_bodies_cannot_start_runs(
    client: httpx.Client, workflow_id: str, content_type: str | None, content: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(f"/workflows/{workflow_id}/execute", content=content, headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    assert client.get(f"/workflows/{workflow_id}/executions").json() == []


def test_form_posts_are_refused_on_every_json_route(client: httpx.Client) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = orjson.dumps(chain({"id": "end", "type": "end"}))
    assert client.post("/workflows/", content=body, headers=form).status_code == 415
    assert client.post("/workflows/validate", content=body, headers=form).status_code == 415
    assert client.get("/workflows/", headers=form).status_code == 200  # reads are not affected
    assert client.get("/workflows/").json() == []


def test_execute_without_a_body_or_with_json_still_works(
    client: httpx.Client, workflow_id: str
) -> None:
    bare = client.post(f"/workflows/{workflow_id}/execute")  # curl -X POST, no -d
    assert bare.status_code == 200 and bare.json()["status"] == "success", bare.text
    charset = client.post(
        f"/workflows/{workflow_id}/execute",
        content=b'{"inputs": {"a": 1}}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200 and charset.json()["result"] == {"a": 1}


# Workflow limits at save time, over HTTP ---------------------------------------------------


@pytest.fixture
def strict(full_settings: Settings) -> Iterator[httpx.Client]:
    settings = full_settings.model_copy(
        update={
            **NO_AUTH,
            "max_workflow_nodes": 6,
            "max_workflow_edges": 5,
            "max_template_chars": 60,
            "max_delay_seconds": 60.0,
            "max_retry_attempts": 3,
            "max_retry_backoff_seconds": 10.0,
            "llm_max_tokens": 100,
            "max_email_recipients": 2,
        }
    )
    with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def test_too_many_nodes_or_edges(strict: httpx.Client) -> None:
    ids = [f"n{i}" for i in range(7)]
    nodes = [{"id": ids[0], "type": "start"}] + [{"id": i, "type": "end"} for i in ids[1:]]
    issue = only_issue(strict.post("/workflows/", json=workflow(nodes, [])))
    assert issue["field"] == "nodes" and "DUCTWORK_MAX_WORKFLOW_NODES" in issue["message"]
    assert "7 nodes; the limit is 6" in issue["message"]

    edges = [("n0", i) for i in ids[1:6]] + [("n0", "n1")] * 1  # 6 edges, 6 nodes
    six = workflow(nodes[:6], edges)
    issue = only_issue(strict.post("/workflows/", json=six))
    assert issue["field"] == "edges" and "DUCTWORK_MAX_WORKFLOW_EDGES" in issue["message"]
    report = strict.post("/workflows/validate", json=six).json()
    assert report["valid"] is False and "DUCTWORK_MAX_WORKFLOW_EDGES" in str(report["issues"])


def test_long_template_or_expression(strict: httpx.Client) -> None:
    long = "{{ input }}" + "x" * 60
    issue = only_issue(
        strict.post(
            "/workflows/",
            json=chain(
                {"id": "mail", "type": "email", "config": {"to": "a@example.com", "subject": long}}
            ),
        )
    )
    assert issue == {
        "node_id": "mail",
        "field": "config.subject",
        "message": "template is 71 characters; the limit is 60 (DUCTWORK_MAX_TEMPLATE_CHARS)",
    }
    expression = " or ".join(["value > 1"] * 10)
    issue = only_issue(
        strict.post(
            "/workflows/",
            json=chain({"id": "if", "type": "condition", "config": {"condition": expression}}),
        )
    )
    assert issue["node_id"] == "if" and issue["field"] == "config.condition"
    assert issue["message"].startswith("expression is") and "MAX_TEMPLATE_CHARS" in issue["message"]
    # A plain string as long is not a template: nothing to compile, nothing refused.
    plain = chain(
        {"id": "mail", "type": "email", "config": {"to": "a@example.com", "body": "x" * 200}}
    )
    assert strict.post("/workflows/", json=plain).status_code == 201


def test_static_ceilings_per_node(strict: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 61}},
            "config.delay_seconds",
            "delay_seconds is 61; the limit is 60 (DUCTWORK_MAX_DELAY_SECONDS)",
        ),
        (
            {"id": "ai", "type": "ai-processor", "config": {"prompt": "hi", "max_tokens": 101}},
            "config.max_tokens",
            "max_tokens is 101; the limit is 100 (DUCTWORK_LLM_MAX_TOKENS)",
        ),
        (
            {
                "id": "mail",
                "type": "email",
                "config": {"to": "a@example.com, b@example.com", "bcc": ["c@example.com"]},
            },
            "config.bcc",
            "to + cc + bcc name 3 recipients; the limit is 2 (DUCTWORK_MAX_EMAIL_RECIPIENTS)",
        ),
        (
            {"id": "p", "type": "start", "retry": {"max_attempts": 4}},
            "retry.max_attempts",
            "max_attempts is 4; the limit is 3 (DUCTWORK_MAX_RETRY_ATTEMPTS)",
        ),
        (
            {"id": "p", "type": "start", "retry": {"max_attempts": 2, "backoff_seconds": 11}},
            "retry.backoff_seconds",
            "backoff_seconds is 11; the limit is 10 (DUCTWORK_MAX_RETRY_BACKOFF_SECONDS)",
        ),
    ]
    for node, field, message in cases:
        issue = only_issue(strict.post("/workflows/", json=chain(node)))
        assert issue == {"node_id": node["id"], "field": field, "message": message}
    # Backoff that grows past the ceiling (4, 8, 16 s) is named by the field that caps it.
    growing = {
        "id": "p",
        "type": "start",
        "retry": {"max_attempts": 3, "backoff_seconds": 4, "backoff_factor": 4},
    }
    issue = only_issue(strict.post("/workflows/", json=chain(growing)))
    assert issue["field"] == "retry.max_backoff_seconds"
    assert (
        "up to 16 s" in issue["message"]
        and "DUCTWORK_MAX_RETRY_BACKOFF_SECONDS" in issue["message"]
    )
    growing["retry"]["max_backoff_seconds"] = 10  # type: ignore[index]
    assert strict.post("/workflows/", json=chain(growing)).status_code == 201
    # At the ceilings exactly: accepted.
    fine = chain(
        {"id": "wait", "type": "delay", "config": {"delay_seconds": 0}},
        {
            "id": "ai",
            "type": "ai-processor",
            "config": {"prompt": "hi", "max_tokens": 100},
            "retry": {"max_attempts": 3, "backoff_seconds": 10, "backoff_factor": 1},
        },
        {
            "id": "mail",
            "type": "email",
            "config": {"to": ["a@example.com", "A@example.com"], "cc": "b@example.com"},
        },
    )
    assert strict.post("/workflows/", json=fine).status_code == 201, "duplicates count once"


def test_templated_values_are_checked_when_the_node_runs(
    strict: httpx.Client, llm: OpenAIStub, smtp: SmtpTestServer
) -> None:
    def run(node: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        created = strict.post("/workflows/", json=chain(node))
        assert created.status_code == 201, created.text
        response = strict.post(
            f"/workflows/{created.json()['id']}/execute", json={"inputs": inputs}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == "error"
        return body

    body = run(
        {"id": "wait", "type": "delay", "config": {"delay_seconds": "{{ wait }}"}}, {"wait": 120}
    )
    assert body["node_states"]["wait"]["error"] == (
        "config.delay_seconds: delay_seconds is 120; the limit is 60 (DUCTWORK_MAX_DELAY_SECONDS)"
    )
    body = run(
        {"id": "ai", "type": "ai-processor", "config": {"prompt": "hi", "max_tokens": "{{ n }}"}},
        {"n": 1000},
    )
    assert "DUCTWORK_LLM_MAX_TOKENS" in body["node_states"]["ai"]["error"]
    assert llm.calls == 0
    body = run(
        {"id": "mail", "type": "email", "config": {"to": "{{ people }}"}},
        {"people": ["a@example.com", "b@example.com", "c@example.com"]},
    )
    assert body["node_states"]["mail"]["error"] == (
        "config.to: to + cc + bcc name 3 recipients; the limit is 2 (DUCTWORK_MAX_EMAIL_RECIPIENTS)"
    )
    assert smtp.messages == []


# Engine level: build_plan with WorkflowLimits --------------------------------------------------


def parse(body: dict[str, Any]) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(body)


def test_build_plan_checks_nothing_without_limits() -> None:
    big = chain(
        {"id": "wait", "type": "delay", "config": {"delay_seconds": 300 * 86_400}},
        {
            "id": "ai",
            "type": "ai-processor",
            "config": {"prompt": "x" * 200_000 + "{{ a }}", "max_tokens": 10**6},
            "retry": {"max_attempts": 100, "backoff_seconds": 3600, "max_backoff_seconds": 10**6},
        },
    )
    assert validate(parse(big), REGISTRY) == []
    issues = validate(parse(big), REGISTRY, WorkflowLimits.from_settings(Settings()))
    fields = {(issue.node_id, issue.field) for issue in issues}
    assert fields == {
        ("wait", "config.delay_seconds"),
        ("ai", "config.prompt"),
        ("ai", "config.max_tokens"),
        ("ai", "retry.max_attempts"),
        ("ai", "retry.max_backoff_seconds"),
    }


def test_size_limits_are_reported_alone_before_other_work() -> None:
    nodes = [{"id": f"n{i}", "type": "no-such-type"} for i in range(50)]
    with pytest.raises(WorkflowInvalid) as raised:
        build_plan(parse(workflow(nodes, [])), REGISTRY, WorkflowLimits(max_nodes=10))
    assert [(i.field, i.message) for i in raised.value.issues] == [
        ("nodes", "50 nodes; the limit is 10 (DUCTWORK_MAX_WORKFLOW_NODES)")
    ]


def test_email_recipients_count_across_fields_and_skip_templates() -> None:
    limits = WorkflowLimits(max_email_recipients=3)
    node = {
        "id": "mail",
        "type": "email",
        "config": {"to": "{{ people }}", "cc": "a@x.io; b@x.io", "bcc": ["c@x.io", "d@x.io"]},
    }
    issues = validate(parse(chain(node)), REGISTRY, limits)
    assert [(i.field, i.message) for i in issues] == [
        (
            "config.bcc",
            "to + cc + bcc name 4 recipients; the limit is 3 (DUCTWORK_MAX_EMAIL_RECIPIENTS)",
        )
    ]
    node["config"]["bcc"] = "c@x.io"  # type: ignore[index]
    assert validate(parse(chain(node)), REGISTRY, limits) == []


# Run-wide limits: events per run, wall clock ---------------------------------------------------


async def test_a_run_writing_too_many_events_fails_naming_the_setting(tmp_path: Path) -> None:
    # start + 60 ends: every node writes node_started and node_completed (> 100 events).
    steps = [{"id": f"s{i}", "type": "end"} for i in range(60)]
    ids = ["start"] + [step["id"] for step in steps]
    body = definition([{"id": "start", "type": "start"}, *steps], list(itertools.pairwise(ids)))
    async with embedded(tmp_path, max_run_events=100) as app:
        run = await app.execute_definition(body, {}, wait=True, wait_seconds=30)
        assert run.status is RunStatus.ERROR
        assert (
            run.error
            == "the run wrote more than 100 events (the limit set by DUCTWORK_MAX_RUN_EVENTS)"
        )
        stored = await app.store.list_events(run.execution_id, 0)
        # Nothing lost: every seq is there, in order, ending with run_finished.
        assert [event.seq for event in stored] == list(range(1, len(stored) + 1))
        assert stored[-1].type == "run_finished" and 100 < len(stored) <= 110
        completed = [s for s in run.node_states.values() if s.status is NodeStatus.COMPLETED]
        assert 40 < len(completed) < 61


async def test_a_run_past_its_wall_clock_fails_while_running(tmp_path: Path) -> None:
    body = definition(
        [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 20}},
        ],
        [("start", "wait")],
    )
    async with embedded(tmp_path, max_run_seconds=1.0, durable_delay_threshold_seconds=60) as app:
        # Waited for up to 15 s, less than the 20 s delay: only the limit can end it.
        run = await app.execute_definition(body, {}, wait=True, wait_seconds=15)
        assert run.status is RunStatus.ERROR
        assert run.error is not None and "DUCTWORK_MAX_RUN_SECONDS" in run.error
        assert run.error.startswith("the run took longer than 1 s since it started at")
        assert run.node_states["wait"].status is NodeStatus.CANCELLED


async def test_a_parked_run_is_woken_at_its_deadline_and_failed(tmp_path: Path) -> None:
    body = definition(
        [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 3600}},
        ],
        [("start", "wait")],
    )
    async with embedded(
        tmp_path,
        max_run_seconds=1.5,
        durable_delay_threshold_seconds=0.1,
        sweep_interval_seconds=0.2,
    ) as app:
        started = await app.execute_definition(body, {}, wait=False)

        async def ended() -> bool:
            current = await app.get_run(started.execution_id)
            return current.status.finished

        await eventually(ended, within=15, what="the parked run failing at its deadline")
        final = await app.get_run(started.execution_id)
        assert final.status is RunStatus.ERROR
        assert final.error is not None and "DUCTWORK_MAX_RUN_SECONDS" in final.error
        assert final.node_states["wait"].status is NodeStatus.CANCELLED
        waiting = [e for e in final.events if e.type == "run_waiting"]
        assert waiting, "the run parked first"
