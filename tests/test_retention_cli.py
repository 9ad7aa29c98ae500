"""`ductwork prune`, `ductwork versions` and `ductwork diff`, run in-process (CliRunner)."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ductwork.cli import cli, diff_lines
from ductwork.models import Checkpoint, Run, RunStatus, WorkflowDefinition, utcnow
from ductwork.settings import Settings
from ductwork.store.base import RunQuery
from ductwork.store.factory import create_store
from tests.support.live_server import LiveServer
from tests.test_retention_api import SIMPLE

runner = CliRunner()

DEFINITION = WorkflowDefinition.model_validate(
    {"name": "old", "nodes": [{"id": "start", "type": "start"}]}
)


async def _seed(url: str) -> None:
    """Three finished runs 10, 20 and 40 days old, and one 50 days old still running."""
    store = create_store(url)
    await store.start()
    try:
        for age, status in ((10, "success"), (20, "error"), (40, "success"), (50, "running")):
            created = utcnow() - timedelta(days=age)
            run = Run(
                execution_id=f"run-{age}-{uuid.uuid4().hex[:6]}",
                workflow_id="file:flow.json",
                workflow_version=1,
                definition=DEFINITION,
                created_at=created,
            )
            await store.create_run(run)
            fields = {"status": RunStatus(status), "end_time": created}
            await store.checkpoint(run.execution_id, Checkpoint(run_fields=fields))
    finally:
        await store.close()


async def _count(url: str) -> int:
    store = create_store(url)
    await store.start()
    try:
        return len(await store.find_runs(RunQuery(), limit=100))
    finally:
        await store.close()


def test_prune_counts_then_deletes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCTWORK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DUCTWORK_STORE_URL", raising=False)
    url = Settings().resolved_store_url
    asyncio.run(_seed(url))

    nothing = runner.invoke(cli, ["prune", "--dry-run"])
    assert nothing.exit_code == 0, nothing.output
    assert "Would delete 0 run(s)." in nothing.output  # no retention configured

    dry = runner.invoke(cli, ["prune", "--dry-run", "--days", "15"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete 2 run(s)." in dry.output
    assert asyncio.run(_count(url)) == 4

    monkeypatch.setenv("DUCTWORK_RETENTION_RUNS", "1")
    done = runner.invoke(cli, ["prune"])
    assert done.exit_code == 0, done.output
    assert "Deleted 2 run(s)." in done.output
    assert asyncio.run(_count(url)) == 2  # the newest finished one and the running one

    refused = runner.invoke(cli, ["prune", "--days", "0"])
    assert refused.exit_code == 2


def test_versions_and_diff_against_a_server(server: LiveServer) -> None:
    with server.client() as http:
        workflow_id = http.post("/workflows/", json=SIMPLE).json()["id"]
        edited = copy.deepcopy(SIMPLE)
        edited["name"] = "Greeter v2"
        edited["nodes"].append({"id": "extra", "type": "end"})
        edited["edges"].append({"from": "shape", "to": "extra"})
        assert http.put(f"/workflows/{workflow_id}", json=edited).status_code == 200
    remote = ["--url", server.url, "--api-key", server.admin_key]

    listed = runner.invoke(cli, ["versions", workflow_id, *remote])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert lines[0].split("\t") == ["version", "saved", "name", "nodes", "edges"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["2", "1"]
    assert lines[1].split("\t")[2:] == ["Greeter v2", "4", "3"]

    shown = runner.invoke(cli, ["diff", workflow_id, "1", "2", *remote])
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "+ node extra",
        "+ edge shape -> extra",
        '~ name: "Greeter" -> "Greeter v2"',
    ]
    same = runner.invoke(cli, ["diff", workflow_id, "2", "2", *remote])
    assert "Versions 2 and 2 are the same." in same.output

    unknown = runner.invoke(cli, ["versions", "no-such-workflow", *remote])
    assert unknown.exit_code == 2
    refused = runner.invoke(cli, ["versions", workflow_id, "--url", server.url, "--api-key", "x"])
    assert refused.exit_code == 2
    unreachable = runner.invoke(cli, ["versions", workflow_id, "--url", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 1


def test_diff_lines_cover_every_kind_of_change() -> None:
    lines = diff_lines(
        {
            "from": 1,
            "to": 2,
            "nodes": {
                "added": ["a"],
                "removed": ["b"],
                "changed": [{"id": "c", "changes": [{"path": "config.x", "from": 1, "to": None}]}],
            },
            "edges": {
                "added": [{"from": "a", "to": "c", "branch": "true"}],
                "removed": [{"from": "b", "to": "c", "branch": None}],
            },
            "workflow": [],
        }
    )

    assert lines == [
        "+ node a",
        "- node b",
        "~ node c: config.x: 1 -> null",
        "+ edge a -> c [true]",
        "- edge b -> c",
    ]
