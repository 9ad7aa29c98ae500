"""The Python client (`ductwork.client`) against a real server: every call, errors, auth, SSE.

Every test talks to a LiveServer over TCP (uvicorn in a thread) with its admin key;
the event-stream resume test puts a TCP proxy between the client and the server and
cuts the connection mid-stream.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    Conflict,
    Event,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Snapshot,
    error_from_response,
)
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import LiveServer
from tests.support.polling import eventually, wait_until
from tests.support.tcp_proxy import TcpProxy


def greeting_workflow(name: str = "greet") -> dict[str, Any]:
    """start -> end, whose output greets the `user_name` input."""
    return {
        "name": name,
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {"id": "end", "type": "end", "config": {"output": "Hello {{ user_name }}"}},
        ],
        "edges": [{"from": "start", "to": "end"}],
    }


def webhook_workflow(url: str) -> dict[str, Any]:
    """start -> webhook(url) -> end: holding `url` on the test server holds the run."""
    return {
        "name": "hook",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {"id": "hook", "type": "webhook", "config": {"url": url, "body": {"n": 1}}},
            {"id": "end", "type": "end", "config": {}},
        ],
        "edges": [{"from": "start", "to": "hook"}, {"from": "hook", "to": "end"}],
    }


@pytest.fixture
def admin(server: LiveServer) -> Iterator[Client]:
    """A sync client with the server's admin key."""
    with Client(server.url, api_key=server.admin_key) as client:
        yield client


@pytest.fixture(autouse=True)
def no_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say which URL and key they use; the environment running them must not."""
    monkeypatch.delenv("DUCTWORK_URL", raising=False)
    monkeypatch.delenv("DUCTWORK_API_KEY", raising=False)


# Calls ----------------------------------------------------------------------------------
def test_workflow_calls_and_a_sync_execute(admin: Client) -> None:
    assert admin.health()["status"] == "ok"
    me = admin.me()
    assert me["role"] == "admin" and me["kind"] == "admin_key"
    assert "start" in {node["type"] for node in admin.node_types()}

    created = admin.create_workflow(greeting_workflow())
    workflow_id = created["id"]
    assert created["version"] == 1 and created["name"] == "greet"
    assert admin.get_workflow(workflow_id)["id"] == workflow_id
    assert [w["id"] for w in admin.list_workflows()] == [workflow_id]
    assert admin.list_workflows(offset=1) == []
    assert [w["id"] for w in admin.list_workflows(q="GRE")] == [workflow_id]
    assert admin.list_workflows(q="gr%") == []

    updated = admin.update_workflow(workflow_id, greeting_workflow("greet v2"))
    assert (updated["version"], updated["name"]) == (2, "greet v2")
    assert admin.validate_workflow(greeting_workflow()) == {"valid": True, "issues": []}

    result = admin.execute(workflow_id, {"user_name": "Ada"})
    assert result["status"] == "success" and result.get("result") == "Hello Ada"
    run = admin.get_execution(result["execution_id"])
    assert run["status"] == "success" and run["node_states"]["end"]["status"] == "completed"
    assert [r["execution_id"] for r in admin.list_executions(workflow_id)] == [
        result["execution_id"]
    ]
    assert admin.list_dead_letters() == []

    admin.delete_workflow(workflow_id)
    with pytest.raises(NotFound) as caught:
        admin.get_workflow(workflow_id)
    assert caught.value.status_code == 404 and workflow_id in caught.value.message


def test_execute_with_an_idempotency_key_returns_the_same_run(admin: Client) -> None:
    workflow_id = admin.create_workflow(greeting_workflow())["id"]
    first = admin.execute(workflow_id, {"user_name": "Bo"}, idempotency_key="order-17")
    again = admin.execute(workflow_id, {"user_name": "Bo"}, idempotency_key="order-17")
    other = admin.execute(workflow_id, {"user_name": "Bo"}, idempotency_key="order-18")
    assert again["execution_id"] == first["execution_id"]
    assert "existing run" in again["message"]
    assert other["execution_id"] != first["execution_id"]
    assert len(admin.list_executions(workflow_id)) == 2


async def test_async_execute_cancel_and_retry(
    server: LiveServer, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/slow")
    async with AsyncClient(server.url, api_key=server.admin_key) as dw:
        workflow_id = (await dw.create_workflow(webhook_workflow(http_server.url("/slow"))))["id"]
        assert [w["id"] for w in await dw.list_workflows(q="HOOK")] == [workflow_id]
        started = await dw.execute(workflow_id, wait=False)
        assert started["status"] == "queued" and "result" not in started
        execution_id = started["execution_id"]
        await http_server.wait_for_calls_async("/slow", 1)

        await dw.cancel(execution_id)

        async def status_is(wanted: str) -> bool:
            return (await dw.get_execution(execution_id))["status"] == wanted

        await eventually(lambda: status_is("cancelled"), what="the run to be cancelled")
        http_server.release("/slow")

        retried = await dw.retry(execution_id)
        assert retried["execution_id"] == execution_id
        await eventually(lambda: status_is("success"), what="the retried run to succeed")
        with pytest.raises(Conflict):  # a successful run cannot be retried
            await dw.retry(execution_id)


def test_credentials_data_in_metadata_out(admin: Client) -> None:
    info = admin.create_credential("api_token", "secret", {"value": "s3cr3t-value"})
    assert set(info) == {"name", "type", "created_at", "updated_at", "created_by"}
    assert (info["name"], info["type"]) == ("api_token", "secret")
    assert admin.get_credential("api_token") == info
    assert [c["name"] for c in admin.list_credentials()] == ["api_token"]
    replaced = admin.replace_credential("api_token", "secret", {"value": "n3w-value"})
    assert replaced["updated_at"] >= info["updated_at"]
    with pytest.raises(Conflict):
        admin.create_credential("api_token", "secret", {"value": "s3cr3t-value"})

    workflow = greeting_workflow()
    workflow["nodes"][1]["config"]["output"] = "{{ secrets.api_token }}"
    workflow_id = admin.create_workflow(workflow)["id"]
    with pytest.raises(Conflict) as in_use:
        admin.delete_credential("api_token")
    assert in_use.value.body["workflows"] == [{"id": workflow_id, "name": "greet"}]
    admin.delete_credential("api_token", force=True)
    with pytest.raises(NotFound):
        admin.get_credential("api_token")


def test_path_segments_are_encoded_and_never_empty(admin: Client) -> None:
    # "../auth/keys" must stay one segment: a 404 for that id, not a call to /auth/keys.
    for call in (admin.get_workflow, admin.get_execution):
        with pytest.raises((NotFound, InvalidRequest)):
            call("../auth/keys")
        with pytest.raises((NotFound, InvalidRequest)):
            call("..%2F..%2Fauth%2Fkeys")
    with pytest.raises(ValueError, match="workflow_id"):
        admin.get_workflow("")


# Errors ---------------------------------------------------------------------------------
def test_an_invalid_workflow_is_invalid_request_with_every_problem(admin: Client) -> None:
    workflow = greeting_workflow()
    workflow["nodes"].append({"id": "ghost", "type": "no-such-type", "config": {}})
    workflow["edges"].append({"from": "end", "to": "nowhere"})
    with pytest.raises(InvalidRequest) as caught:
        admin.create_workflow(workflow)
    error = caught.value
    assert error.status_code == 422 and error.message == "workflow is invalid"
    assert {"node_id", "field", "message"} <= set(error.detail[0])
    assert any(p["node_id"] == "ghost" for p in error.detail), error.detail
    assert any("nowhere" in p["message"] for p in error.detail), error.detail
    for problem in error.detail:  # str() carries every problem, for logs and tracebacks
        assert problem["message"] in str(error)

    report = admin.validate_workflow(workflow)
    assert report["valid"] is False and len(report["issues"]) == len(error.detail)

    # A request the API's models refuse is the same shape, naming the field.
    workflow_id = admin.create_workflow(greeting_workflow())["id"]
    with pytest.raises(InvalidRequest) as bad_wait:
        admin.execute(workflow_id, wait_seconds=-1)
    assert [p["field"] for p in bad_wait.value.detail] == ["wait_seconds"]


def test_no_key_is_authentication_error(server: LiveServer) -> None:
    with Client(server.url) as anonymous:
        assert not anonymous.has_api_key
        assert anonymous.health()["status"] == "ok"  # public
        with pytest.raises(AuthenticationError) as caught:
            anonymous.list_workflows()
    assert caught.value.status_code == 401
    with (
        Client(server.url, api_key="dw_not_a_real_key_" + "x" * 30) as wrong,
        pytest.raises(AuthenticationError),
    ):
        wrong.me()


def test_a_viewer_key_reads_but_writes_are_permission_denied(admin: Client) -> None:
    workflow_id = admin.create_workflow(greeting_workflow())["id"]
    created = admin.create_key("dashboard", "viewer")
    assert created["key"].startswith("dw_") and created["role"] == "viewer"
    listed = admin.list_keys()
    assert created["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)

    with Client(admin.base_url, api_key=created["key"]) as viewer:
        assert viewer.me()["role"] == "viewer"
        assert viewer.get_workflow(workflow_id)["id"] == workflow_id
        for write in (
            lambda: viewer.create_workflow(greeting_workflow()),
            lambda: viewer.delete_workflow(workflow_id),
            lambda: viewer.execute(workflow_id),
            lambda: viewer.create_credential("token", "secret", {"value": "abcdefgh"}),
        ):
            with pytest.raises(PermissionDenied) as caught:
                write()
            assert caught.value.status_code == 403

        admin.revoke_key(created["id"])
        with pytest.raises(AuthenticationError):
            viewer.me()
    assert admin.get_workflow(workflow_id)["id"] == workflow_id


def test_failed_keys_past_the_limit_are_rate_limited_with_retry_after(
    full_settings: Settings,
) -> None:
    settings = full_settings.model_copy(update={"login_rate_limit": "2/minute"})
    with (
        LiveServer(settings) as live,
        Client(live.url, api_key="dw_wrong_" + "x" * 40) as wrong,
    ):
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                wrong.list_workflows()
        with pytest.raises(RateLimited) as caught:
            wrong.list_workflows()
    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 60


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (422, InvalidRequest),
        (429, RateLimited),
        (500, ApiError),
    ],
)
def test_each_status_has_its_error_class(status: int, kind: type[ApiError]) -> None:
    request = httpx.Request("POST", "http://dw.test/workflows/")
    response = httpx.Response(
        status, json={"detail": "why"}, headers={"Retry-After": "7"}, request=request
    )
    error = error_from_response(response)
    assert type(error) is kind and error.status_code == status and error.message == "why"
    if isinstance(error, RateLimited):
        assert error.retry_after == 7


def test_retry_after_may_be_an_http_date() -> None:
    request = httpx.Request("GET", "http://dw.test/")
    response = httpx.Response(
        429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, request=request
    )
    error = error_from_response(response)
    assert isinstance(error, RateLimited) and error.retry_after == 0


# The key stays secret ---------------------------------------------------------------------
async def test_the_key_is_in_no_repr_error_or_log(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dw_wrong_but_secret_" + "q" * 30
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG
    async with AsyncClient(server.url, api_key=secret) as dw:
        assert secret not in repr(dw) and "api_key=***" in repr(dw)
        with pytest.raises(AuthenticationError) as caught:
            await dw.list_workflows()
        # Nor is it readable back from the client's public surface.
        public = {name: getattr(dw, name) for name in dir(dw) if not name.startswith("_")}
        assert secret not in repr(public)
        assert secret not in repr(vars(dw)) + repr(dw._http.auth)  # nor printed by a debugger
    with Client(server.url, api_key=secret) as client:
        assert secret not in repr(client)
        with pytest.raises(AuthenticationError) as caught_sync:
            client.me()
    assert "dw_wrong" not in caplog.text, "nothing of the key is logged"
    for error in (caught.value, caught_sync.value):
        for text in (str(error), repr(error), repr(vars(error))):
            assert secret not in text


def test_base_url_and_key_default_to_the_environment(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUCTWORK_URL", server.url + "/")
    monkeypatch.setenv("DUCTWORK_API_KEY", server.admin_key)
    with Client() as client:
        assert client.base_url == server.url
        assert client.me()["role"] == "admin"


def test_the_client_imports_without_the_server_side() -> None:
    # A machine that only talks to a server needs httpx and httpx-sse, nothing else.
    code = (
        "import sys, ductwork.client; "
        "loaded = sorted(m for m in sys.modules if m.startswith(('ductwork.', 'fastapi', "
        "'pydantic', 'sqlalchemy'))); print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['ductwork.client']"


# Live events ----------------------------------------------------------------------------
def test_sync_events_replay_a_finished_run_and_end(admin: Client) -> None:
    workflow_id = admin.create_workflow(greeting_workflow())["id"]
    execution_id = admin.execute(workflow_id, {"user_name": "Cy"})["execution_id"]
    items = list(admin.events(execution_id))
    assert isinstance(items[0], Snapshot) and items[0].type == "snapshot"
    assert items[0].run["execution_id"] == execution_id
    events = [item for item in items if isinstance(item, Event)]
    assert len(events) == len(items) - 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run_started" and events[-1].type == "run_finished"
    assert events[-1].data["status"] == "success"
    # Nothing after the last event of a finished run: the stream ends at once (204).
    assert list(admin.events(execution_id, after=events[-1].seq or 0)) == []
    with pytest.raises(NotFound):
        list(admin.events("no-such-run"))


class RecordingTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, remembering every request (to see the resume header)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_events_resume_after_a_dropped_connection(
    server: LiveServer, admin: Client, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/slow")
    workflow_id = admin.create_workflow(webhook_workflow(http_server.url("/slow")))["id"]
    execution_id = admin.execute(workflow_id, wait=False)["execution_id"]
    transport = RecordingTransport()
    items: list[Snapshot | Event] = []
    cut_after: int | None = None
    with TcpProxy("127.0.0.1", server.port) as proxy:
        async with AsyncClient(
            f"http://127.0.0.1:{proxy.port}", api_key=server.admin_key, transport=transport
        ) as dw:
            async for item in dw.events(execution_id):
                items.append(item)
                if (
                    isinstance(item, Event)
                    and item.type == "node_started"
                    and item.node_id == "hook"
                ):
                    # The run is held in its webhook: drop the stream, then let the run go on.
                    await http_server.wait_for_calls_async("/slow", 1)
                    cut_after = item.seq
                    proxy.cut()
                    proxy.restore()
                    http_server.release("/slow")
    assert proxy.refused >= 1, "the cut was not felt"

    opened = [r for r in transport.requests if r.url.path.endswith("/events")]
    assert len(opened) >= 2, "the stream was not opened again"
    assert opened[0].headers["Last-Event-ID"] == "0"
    assert opened[-1].headers["Last-Event-ID"] == str(cut_after)
    assert all(r.headers["Authorization"] == f"Bearer {server.admin_key}" for r in opened)

    # One snapshot, then every event exactly once, in order, to run_finished.
    assert isinstance(items[0], Snapshot)
    events = [item for item in items[1:] if isinstance(item, Event)]
    assert len(events) == len(items) - 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "run_finished" and events[-1].data["status"] == "success"
    assert any(e.type == "node_completed" and e.node_id == "hook" for e in events)
    stored = admin.get_execution(execution_id)
    assert stored["status"] == "success"


async def test_events_give_up_after_max_reconnects(server: LiveServer) -> None:
    # Nothing listens on the port: every connect fails; the error surfaces after the budget.
    with TcpProxy("127.0.0.1", server.port) as proxy:
        proxy.cut()
        async with AsyncClient(f"http://127.0.0.1:{proxy.port}", api_key="dw_x") as dw:
            with pytest.raises(httpx.TransportError):
                async for _ in dw.events("any", max_reconnects=2):
                    pass
        wait_until(lambda: proxy.refused >= 3, what="three refused connections")


# The guide's example ----------------------------------------------------------------------
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "python-client.md"


def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_guides_round_trip_runs_as_written(server: LiveServer, tmp_path: Path) -> None:
    blocks = python_blocks(GUIDE.read_text())
    example = next(block for block in blocks if "asyncio.run(main())" in block)
    script = tmp_path / "hello.py"
    script.write_text(example)
    env = {**os.environ, "DUCTWORK_URL": server.url, "DUCTWORK_API_KEY": server.admin_key}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run ") and "run_finished" in done.stdout
    assert lines[-1] == "success Hello ADA!"


def test_the_guides_sync_and_error_examples_run(server: LiveServer, tmp_path: Path) -> None:
    blocks = python_blocks(GUIDE.read_text())
    example = next(block for block in blocks if "asyncio.run(main())" in block)
    sync = next(block for block in blocks if "with Client() as dw:" in block and "execute" in block)
    errors = next(block for block in blocks if "except InvalidRequest" in block)
    script = tmp_path / "sync.py"
    # The sync block reuses the round trip's WORKFLOW.
    script.write_text(example.replace("asyncio.run(main())", "") + sync + errors)
    env = {**os.environ, "DUCTWORK_URL": server.url, "DUCTWORK_API_KEY": server.admin_key}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "success Hello ADA!" and "run_finished" in lines
    assert any(line.startswith("a ") and "nope" in line for line in lines), lines
