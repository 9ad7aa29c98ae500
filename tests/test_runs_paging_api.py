"""Cursor paging over HTTP (issue 12): the runs lists' `after` / `X-Next-Cursor`, a page
of a run's events, and the run record without its events or node states; the Python
client and the CLI follow the cursor."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from ductwork.cli import cli
from ductwork.client import NEXT_CURSOR_HEADER, Client
from tests.support.live_server import LiveServer
from tests.test_runs_list_api import create, execute, flow


def pages(client: httpx.Client, path: str, **params: Any) -> list[list[str]]:
    """Every page of a runs list, following the `Link: rel=next` URLs."""
    found: list[list[str]] = []
    response = client.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        found.append([item["execution_id"] for item in response.json()])
        link = response.headers.get("link")
        if link is None:
            assert NEXT_CURSOR_HEADER not in response.headers
            return found
        assert link.endswith('>; rel="next"')
        assert f"after={response.headers[NEXT_CURSOR_HEADER]}" in link
        response = client.get(link[1 : -len('>; rel="next"')])


def test_runs_lists_page_by_cursor(client: httpx.Client) -> None:
    first, second = create(client, flow("one")), create(client, flow("two"))
    runs = [execute(client, first if i % 2 else second) for i in range(5)]
    newest_first = runs[::-1]

    assert pages(client, "/workflows/executions", limit=2) == [
        newest_first[:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    # A full last page has no next page (the server reads one run more to know).
    assert pages(client, "/workflows/executions", limit=5) == [newest_first]
    of_first = [eid for i, eid in enumerate(runs) if i % 2][::-1]
    assert pages(client, f"/workflows/{first}/executions", limit=1) == [[e] for e in of_first]
    assert pages(client, "/workflows/executions", limit=1, workflow_id=first) == [
        [e] for e in of_first
    ]

    # A run created after the first page was read does not shift the next one.
    head = client.get("/workflows/executions", params={"limit": 2})
    execute(client, first)
    cursor = head.headers[NEXT_CURSOR_HEADER]
    following = client.get("/workflows/executions", params={"limit": 2, "after": cursor})
    assert [item["execution_id"] for item in following.json()] == newest_first[2:4]
    # One workflow's list keeps its logs.
    listed = client.get(f"/workflows/{first}/executions", params={"limit": 1, "after": cursor})
    assert listed.status_code == 200 and listed.json()[0]["logs"]

    for params in (
        {"after": "not-a-cursor"},
        {"after": cursor, "offset": 1},
        {"after": ""},
        {"after": "x" * 401},
        {"limit": 0},
        {"limit": 1001},
    ):
        for path in ("/workflows/executions", f"/workflows/{first}/executions"):
            refused = client.get(path, params=params)
            assert refused.status_code == 422, (path, params, refused.text)
            assert refused.json()["detail"][0]["field"] in ("after", "offset", "limit")


def test_a_runs_events_are_read_a_page_at_a_time(server: LiveServer, client: httpx.Client) -> None:
    workflow_id = create(client, flow("paged"))
    execution_id = execute(client, workflow_id)
    everything = client.get(f"/workflows/executions/{execution_id}").json()
    stored = server.call(server.app.store.list_events(execution_id), timeout=10)
    assert len(stored) >= 5

    path = f"/workflows/executions/{execution_id}/events/page"
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(path, params={"after": after, "limit": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"events", "next_after"}
        assert len(body["events"]) <= 2
        seen.extend(body["events"])
        if body["next_after"] is None:
            break
        assert body["next_after"] == body["events"][-1]["seq"]
        after = body["next_after"]
    assert [e["seq"] for e in seen] == [e.seq for e in stored]
    assert [e["type"] for e in seen] == [e.type for e in stored]
    assert set(seen[0]) == {"seq", "type", "node_id", "timestamp", "data"}
    assert len(everything["logs"]) <= len(seen)

    last = stored[-1].seq
    assert client.get(path, params={"after": last}).json() == {"events": [], "next_after": None}
    assert client.get("/workflows/executions/missing/events/page").status_code == 404
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        assert client.get(path, params=params).status_code == 422
    # Who is calling is checked, as on every route.
    anonymous = httpx.get(server.url + path)
    assert anonymous.status_code == 401


def test_a_run_record_can_leave_its_events_and_node_states_out(client: httpx.Client) -> None:
    execution_id = execute(client, create(client, flow("summary")))
    path = f"/workflows/executions/{execution_id}"
    full = client.get(path).json()
    assert full["logs"] and full["node_states"]
    light = client.get(path, params={"events": "false"}).json()
    assert light["logs"] == [] and light["node_states"] == full["node_states"]
    summary = client.get(path, params={"events": "false", "node_states": "false"}).json()
    assert summary["logs"] == [] and summary["node_states"] == {}
    assert {k: v for k, v in summary.items() if k not in ("logs", "node_states", "errors")} == {
        k: v for k, v in full.items() if k not in ("logs", "node_states", "errors")
    }
    assert client.get(path, params={"events": "maybe"}).status_code == 422


def test_the_python_client_and_the_cli_follow_the_cursor(server: LiveServer) -> None:
    with Client(server.url, api_key=server.admin_key) as admin:
        workflow_id = admin.create_workflow(flow("walked"))["id"]
        runs = [admin.execute(workflow_id)["execution_id"] for _ in range(5)]
        walked = [run["execution_id"] for run in admin.iter_executions(page_size=2)]
        assert walked == runs[::-1]
        of_workflow = admin.iter_executions(workflow_id, status="success", page_size=3)
        assert [run["execution_id"] for run in of_workflow] == runs[::-1]
        head = admin.list_executions(limit=2)
        assert [run["execution_id"] for run in head] == runs[:2:-1]

        events = list(admin.iter_events(runs[0], page_size=2))
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == "run_finished"
        page = admin.event_page(runs[0], after=1, limit=1)
        assert [e["seq"] for e in page["events"]] == [2] and page["next_after"] == 2
        summary = admin.get_execution(runs[0], events=False, node_states=False)
        assert summary["logs"] == [] and summary["node_states"] == {}

    runner = CliRunner()
    common = ["--url", server.url, "--api-key", server.admin_key, "--json"]
    first = runner.invoke(cli, ["runs", "--limit", "2", *common])
    assert first.exit_code == 0, first.output
    assert "More runs: --after " in first.stderr
    cursor = first.stderr.split("--after ", 1)[1].split()[0]
    second = runner.invoke(cli, ["runs", "--limit", "2", "--after", cursor, *common])
    assert second.exit_code == 0, second.output
    every = runner.invoke(cli, ["runs", "--limit", "2", "--all", *common])
    assert every.exit_code == 0, every.output
    assert "More runs" not in every.stderr
    assert every.stdout.count('"execution_id"') == 5


async def test_a_paged_live_stream_sends_no_logs_and_only_what_follows(
    server: LiveServer,
) -> None:
    """`?paged=true`: the snapshot has no logs and a first connection replays nothing
    (the client pages the events); a reconnection still gets what it missed."""
    with server.client(timeout=30) as client:
        execution_id = execute(client, create(client, flow("streamed")))
    stored = server.call(server.app.store.list_events(execution_id), timeout=10)
    url = f"ws://127.0.0.1:{server.port}/ws/executions/{execution_id}?paged=true"

    async def read(query: str = "") -> list[dict[str, Any]]:
        async with connect(url + query, additional_headers=server.headers) as ws:
            messages = [orjson.loads(raw) async for raw in ws]
            assert ws.close_code == 1000
        return messages

    snapshot, *replayed = await read()
    assert snapshot["type"] == "snapshot" and snapshot["paged"] is True
    assert snapshot["run"]["logs"] == [] and snapshot["run"]["node_states"]
    assert snapshot["last_seq"] == stored[-1].seq and replayed == []
    snapshot, *replayed = await read("&after=2")
    assert [m["seq"] for m in replayed] == [e.seq for e in stored if e.seq > 2]
    # Without `paged`, the stream is as it was: logs in the snapshot, every event replayed.
    async with connect(url.split("?")[0], additional_headers=server.headers) as ws:
        whole = [orjson.loads(raw) async for raw in ws]
    assert whole[0]["run"]["logs"] and "paged" not in whole[0]
    assert [m["seq"] for m in whole[1:]] == [e.seq for e in stored]


def test_forged_cursors_and_seqs_out_of_range_are_4xx(client: httpx.Client) -> None:
    def token(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    # A date that overflows when moved to UTC, an id with a NUL, an over-long id.
    for raw in (
        "0001-01-01T00:00:00+01:00|abc",
        "2026-01-01T00:00:00+00:00|a\x00b",
        "2026-01-01T00:00:00+00:00|" + "e" * 201,
    ):
        refused = client.get("/workflows/executions", params={"after": token(raw)})
        assert refused.status_code == 422, (raw, refused.text)
    run = execute(client, create(client, flow("seq")))
    # run_events.seq is a 32-bit column: a larger `after` is refused, not a 500.
    page = client.get(f"/workflows/executions/{run}/events/page", params={"after": 2**31})
    assert page.status_code == 422, page.text
    assert (
        client.get(
            f"/workflows/executions/{run}/events/page", params={"after": 2**31 - 1}
        ).status_code
        == 200
    )
