"""The audit log: write actions leave entries (who, what, target, when, from where),
`GET /audit` filters and pages them, they never hold secrets, nothing updates or
deletes them, and a failing store never fails the action being recorded."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.security.audit import AuditLog, clean_details, new_audit_id
from ductwork.security.context import RequestContext, set_current
from ductwork.security.models import AuditEntry, AuditQuery, Principal, Role
from ductwork.settings import Settings
from ductwork.store.base import Store
from ductwork.store.security import SecurityStore
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.seed import SEED_BODY

SECRET = "sk-audit-0123456789abcdefSECRET"


def _expected_who(server: LiveServer) -> tuple[str, str | None]:
    """The actor and client address the `client` fixture's requests are audited as.

    Without the API guard (`ductwork.api.guard`, the auth helper's) no request has
    a principal, so requests act as the system and no address is known; with it,
    the fixture's admin key is `admin-key` from 127.0.0.1.
    """
    if importlib.util.find_spec("ductwork.api.guard") is None:
        return "system", None
    if server.app.settings.auth == "disabled":
        return "anonymous", "127.0.0.1"
    return "admin-key", "127.0.0.1"


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/workflows/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def audit(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/audit", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def only(client: httpx.Client, action: str, target: str) -> dict[str, Any]:
    entries = audit(client, action=action, target=target)["entries"]
    assert len(entries) == 1, entries
    entry: dict[str, Any] = entries[0]
    return entry


def delay_body(seconds: float) -> dict[str, Any]:
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1] = {"id": "ai1", "type": "delay", "config": {"delay_seconds": seconds}}
    return body


# Over HTTP ---------------------------------------------------------------------------


def test_every_write_action_leaves_an_entry(client: httpx.Client, server: LiveServer) -> None:
    actor, address = _expected_who(server)
    started = datetime.now(UTC)
    workflow_id = create(client, SEED_BODY)
    updated = copy.deepcopy(SEED_BODY) | {"name": "Renamed"}
    assert client.put(f"/workflows/{workflow_id}", json=updated).status_code == 200
    ran = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {}})
    assert ran.status_code == 200 and ran.json()["status"] == "success", ran.text
    execution_id = ran.json()["execution_id"]

    slow_id = create(client, delay_body(1.5))
    slow = client.post(f"/workflows/{slow_id}/execute", json={"async_execution": True}).json()
    slow_run = slow["execution_id"]
    assert client.post(f"/workflows/executions/{slow_run}/cancel").status_code == 200

    def status() -> str:
        return str(client.get(f"/workflows/executions/{slow_run}").json()["status"])

    wait_until(lambda: status() == "cancelled", within=10, what="the run to be cancelled")
    assert client.post(f"/workflows/executions/{slow_run}/retry").status_code == 202
    assert client.delete(f"/workflows/{workflow_id}").status_code == 204
    finished = datetime.now(UTC)

    expected: list[tuple[str, str, dict[str, Any]]] = [
        ("workflow.create", f"workflow:{workflow_id}", {"name": "Test Workflow", "version": 1}),
        ("workflow.update", f"workflow:{workflow_id}", {"name": "Renamed", "version": 2}),
        ("workflow.delete", f"workflow:{workflow_id}", {"name": "Renamed", "version": 2}),
        (
            "run.start",
            f"execution:{execution_id}",
            {"workflow_id": workflow_id, "version": 2},
        ),
        ("workflow.create", f"workflow:{slow_id}", {"name": "Test Workflow", "version": 1}),
        ("run.start", f"execution:{slow_run}", {"workflow_id": slow_id, "version": 1}),
        ("run.cancel", f"execution:{slow_run}", {"workflow_id": slow_id}),
        ("run.retry", f"execution:{slow_run}", {"workflow_id": slow_id, "version": 1}),
    ]
    for action, target, details in expected:
        entry = only(client, action, target)
        assert entry["actor"] == actor, entry
        assert entry["client"] == address, entry
        assert entry["outcome"] == "ok"
        assert details.items() <= entry["details"].items(), entry
        at = datetime.fromisoformat(entry["at"])
        # Recorded while the request ran (entries keep milliseconds on MongoDB).
        assert started.replace(microsecond=started.microsecond // 1000 * 1000) <= at <= finished
    # Reads record nothing: every entry is one of the writes above.
    assert len(audit(client, limit=1000)["entries"]) == len(expected)


def test_an_idempotent_replay_is_not_a_second_start(client: httpx.Client) -> None:
    workflow_id = create(client, SEED_BODY)
    headers = {"Idempotency-Key": "audit-once"}
    first = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers).json()
    again = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers).json()
    assert first["execution_id"] == again["execution_id"]
    starts = audit(client, action="run.start")["entries"]
    assert [entry["target"] for entry in starts] == [f"execution:{first['execution_id']}"]


def test_filters_and_paging(client: httpx.Client, server: LiveServer) -> None:
    actor, _ = _expected_who(server)
    ids = [create(client, SEED_BODY | {"name": f"wf {n}"}) for n in range(5)]
    assert client.put(f"/workflows/{ids[0]}", json=SEED_BODY).status_code == 200
    assert client.delete(f"/workflows/{ids[1]}").status_code == 204

    creates = audit(client, action="workflow.create")
    assert [e["target"] for e in creates["entries"]] == [f"workflow:{i}" for i in reversed(ids)]
    assert creates["next_before"] is None
    everything = audit(client, action="workflow.")["entries"]
    assert [e["action"] for e in everything[:2]] == ["workflow.delete", "workflow.update"]
    assert len(everything) == 7
    assert audit(client, action="workflow")["entries"] == []  # a prefix ends in `.`
    assert len(audit(client, target=f"workflow:{ids[0]}")["entries"]) == 2
    assert len(audit(client, actor=actor)["entries"]) == 7
    assert audit(client, actor="key:nobody")["entries"] == []

    # Paging: newest first, `next_before` until the last page, no entry twice.
    seen: list[str] = []
    before: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"action": "workflow.", "limit": 3}
        if before is not None:
            params["before"] = before
        page = audit(client, **params)
        pages += 1
        seen += [entry["id"] for entry in page["entries"]]
        before = page["next_before"]
        if before is None:
            break
        assert before == page["entries"][-1]["id"]
    assert pages == 3 and seen == [entry["id"] for entry in everything]
    assert seen == sorted(seen, reverse=True)
    # An exact fit has no further page (the extra row read says so).
    assert audit(client, action="workflow.create", limit=5)["next_before"] is None

    # Time window: since/until are inclusive; a time without an offset is UTC.
    times = [datetime.fromisoformat(entry["at"]) for entry in everything]
    middle = times[3]
    newer = audit(client, action="workflow.", since=middle.isoformat())["entries"]
    assert [e["id"] for e in newer] == seen[:4]
    older = audit(client, action="workflow.", until=middle.isoformat())["entries"]
    assert [e["id"] for e in older] == seen[3:]
    naive = middle.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert len(audit(client, action="workflow.", since=naive, until=naive)["entries"]) == 1
    late = audit(client, since="9999-12-31T23:00:00-05:00")  # past datetime.max in UTC
    assert late == {"entries": [], "next_before": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, "until"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "not-an-id"}, "before"),
        ({"action": "run.\x00"}, "action"),
        ({"actor": "x" * 256}, "actor"),
    ],
)
def test_bad_parameters_are_422(client: httpx.Client, params: dict[str, Any], field: str) -> None:
    response = client.get("/audit", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "request is invalid"
    assert [issue["field"] for issue in body["detail"]] == [field]


def test_entries_never_copy_configs_or_secrets(
    client: httpx.Client, server: LiveServer, full_settings: Settings
) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1]["config"]["prompt"] = f"Use the key {SECRET}"
    body["metadata"]["description"] = SECRET
    body["variables"] = [{"name": "token", "default": SECRET}]
    workflow_id = create(client, body)
    assert client.put(f"/workflows/{workflow_id}", json=body).status_code == 200
    ran = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"key": SECRET}})
    assert ran.status_code == 200, ran.text
    assert client.delete(f"/workflows/{workflow_id}").status_code == 204

    response = client.get("/audit", params={"limit": 1000})
    assert len(response.json()["entries"]) == 4
    assert SECRET not in response.text
    # Nor in the rows themselves.
    database = Path(full_settings.resolved_store_url.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as rows:
        stored = rows.execute("SELECT * FROM audit_log").fetchall()
    assert len(stored) == 4
    assert SECRET not in repr(stored)


def test_the_log_is_append_only(client: httpx.Client, server: LiveServer) -> None:
    workflow_id = create(client, SEED_BODY)
    entry = only(client, "workflow.create", f"workflow:{workflow_id}")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/audit").status_code == 405
        assert client.request(method, f"/audit/{entry['id']}").status_code == 404
    openapi = client.get("/openapi.json").json()
    assert set(openapi["paths"]["/audit"]) == {"get"}
    assert not [path for path in openapi["paths"] if path.startswith("/audit/")]
    assert only(client, "workflow.create", f"workflow:{workflow_id}") == entry
    # The port itself offers no way to change an entry.
    assert sorted(name for name in dir(SecurityStore) if "audit" in name) == [
        "append_audit",
        "list_audit",
    ]


class FailingAuditStore:
    """A SecurityStore whose audit writes fail (the only part AuditLog uses)."""

    def __init__(self) -> None:
        self.attempts = 0

    async def append_audit(self, entry: AuditEntry) -> None:
        self.attempts += 1
        raise ConnectionError("audit table unreachable")

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        return []


@pytest.fixture
def failing_server(full_settings: Settings) -> Iterator[tuple[LiveServer, FailingAuditStore]]:
    live = LiveServer(full_settings)
    store = FailingAuditStore()
    live.app.audit = AuditLog(store)  # type: ignore[arg-type]
    with live:
        yield live, store


def test_a_failing_audit_write_does_not_fail_the_request(
    failing_server: tuple[LiveServer, FailingAuditStore], caplog: pytest.LogCaptureFixture
) -> None:
    live, store = failing_server
    # The admin key's header once the auth branch is in (its LiveServer has one).
    headers = getattr(live, "headers", {})
    with (
        httpx.Client(base_url=live.url, headers=headers, timeout=30) as http,
        caplog.at_level(logging.ERROR),
    ):
        workflow_id = create(http, SEED_BODY)
        ran = http.post(f"/workflows/{workflow_id}/execute", json={})
        assert ran.status_code == 200 and ran.json()["status"] == "success"
        assert http.delete(f"/workflows/{workflow_id}").status_code == 204
    assert store.attempts == 3
    failures = [r for r in caplog.records if r.name == "ductwork.audit"]
    assert [r.levelno for r in failures] == [logging.ERROR] * 3
    assert "workflow.create" in failures[0].getMessage()


# Unit level ----------------------------------------------------------------------------

DEFINITION = WorkflowDefinition.model_validate(
    {
        "name": "tiny",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {"id": "end", "type": "end", "config": {}},
        ],
        "edges": [{"from": "start", "to": "end"}],
    }
)


async def test_record_takes_the_principal_and_client_from_the_request_context(
    tmp_path: Path,
) -> None:
    app = build(Settings(data_dir=tmp_path), role="isolated")
    await app.start()
    try:
        key = Principal(kind="key", role=Role.EDITOR, key_id="k1", name="ci")

        async def as_key() -> None:
            set_current(RequestContext(key, "10.1.2.3"))
            await app.create_workflow(DEFINITION)

        await asyncio.get_running_loop().create_task(as_key())
        # The shell's own actions (the CLI's `run FILE` included) are the system's.
        run = await app.execute_definition(DEFINITION, wait=True, wait_seconds=10)
        user = Principal(kind="user", role=Role.ADMIN, user_id="u1", name="ada@example.com")
        await app.audit.record("user.update", target="user:u2", principal=user, client="::1")

        entries, next_before = await app.audit.page(AuditQuery())
        assert next_before is None
        by_action = {entry.action: entry for entry in entries}
        created = by_action["workflow.create"]
        assert (created.actor, created.actor_name, created.client) == ("key:k1", "ci", "10.1.2.3")
        started = by_action["run.start"]
        assert (started.actor, started.actor_name, started.client) == ("system", "system", None)
        assert started.target == f"execution:{run.execution_id}"
        assert str(started.details["workflow_id"]).startswith("file:")
        updated = by_action["user.update"]
        assert (updated.actor, updated.actor_name, updated.client) == (
            "user:u1",
            "ada@example.com",
            "::1",
        )
    finally:
        await app.close()


async def test_a_store_failure_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    app = build(Settings(data_dir=tmp_path), role="isolated")
    store = FailingAuditStore()
    app.audit = AuditLog(store)  # type: ignore[arg-type]
    await app.start()
    try:
        with caplog.at_level(logging.ERROR, logger="ductwork.audit"):
            workflow = await app.create_workflow(DEFINITION)
            await app.update_workflow(workflow.id, DEFINITION)
        assert (await app.get_workflow(workflow.id)).version == 2
        assert store.attempts == 2
        messages = [r.getMessage() for r in caplog.records if r.name == "ductwork.audit"]
        assert messages == [
            f"audit: could not record workflow.create on workflow:{workflow.id}",
            f"audit: could not record workflow.update on workflow:{workflow.id}",
        ]
    finally:
        await app.close()


def test_secret_looking_details_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    details = {
        "name": "deploy",
        "role": "editor",
        "password": "hunter2-hunter2",
        "api_key": "whatever",
        "Token": "t",
        "data": {"value": SECRET},
        "note": "dw_abcdefgh12345678_secretsecret",
        "config": {"prompt": SECRET},
        "long": "x" * 1000,
        "password_changed": True,
    }
    with caplog.at_level(logging.ERROR, logger="ductwork.audit"):
        cleaned = clean_details(details, "key.create")
    assert cleaned == {
        "name": "deploy",
        "role": "editor",
        "config": "<dict of 1>",
        "long": "x" * 200,
        "password_changed": True,
    }
    (record,) = caplog.records
    message = record.getMessage()
    assert "password" in message and "note" in message
    assert "hunter2" not in message and SECRET not in message and "dw_" not in message


async def test_record_drops_secret_details_before_the_store(tmp_path: Path) -> None:
    app = build(Settings(data_dir=tmp_path), role="isolated")
    await app.start()
    try:
        await app.audit.record(
            "credential.update", target="credential:smtp", details={"secret": SECRET, "type": "x"}
        )
        (entry,) = await app.store.security.list_audit(AuditQuery())
        assert entry.details == {"type": "x"}
    finally:
        await app.close()


def test_ids_sort_by_time_and_never_repeat() -> None:
    made = [new_audit_id() for _ in range(2000)]
    ids = [entry_id for entry_id, _ in made]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    times = [at for _, at in made]
    assert times == sorted(times) and all(at.tzinfo is UTC for at in times)
    assert abs(times[-1] - datetime.now(UTC)) < timedelta(seconds=5)


async def test_paging_and_clamped_times_on_each_store(store: Store) -> None:
    log = AuditLog(store.security)
    for n in range(5):
        await log.record("workflow.create", target=f"workflow:{n}", details={"n": n})
    first, cursor = await log.page(AuditQuery(limit=2))
    assert [e.target for e in first] == ["workflow:4", "workflow:3"] and cursor == first[-1].id
    rest, end = await log.page(AuditQuery(limit=3, before=cursor))
    assert [e.target for e in rest] == ["workflow:2", "workflow:1", "workflow:0"]
    assert end is None
    assert rest[0].details == {"n": 2} and rest[0].actor == "system"
    # What the route clamps an out-of-range bound to still works as a filter.
    latest = datetime.max.replace(tzinfo=UTC)
    earliest = datetime.min.replace(tzinfo=UTC)
    assert await log.page(AuditQuery(since=latest)) == ([], None)
    assert await log.page(AuditQuery(until=earliest)) == ([], None)
    assert len((await log.page(AuditQuery(since=earliest, until=latest)))[0]) == 5
