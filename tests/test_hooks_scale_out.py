"""Inbound webhooks scaled out: the API process only enqueues, a `ductwork worker` runs.

The sync answer must still be the run's result (the API hears the run end through
Redis), the per-path rate limit is counted in Redis, and a save on one process is
seen by the API's route cache. Real PostgreSQL (a fresh database) and a private
redis-server, as in tests/test_scale_out.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.processes import Process, RedisServer, worker


@pytest.fixture
def env(
    tmp_path: Path, redis_server: RedisServer, store_url_factory: Callable[[str], str]
) -> dict[str, str]:
    return {
        **os.environ,
        "DUCTWORK_STORE_URL": store_url_factory("postgresql"),
        "DUCTWORK_REDIS_URL": redis_server.url,
        "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
        "DUCTWORK_LLM_API_KEY": "unused",
        "DUCTWORK_SECRETS": '{"hook_secret": "scaled-out-token"}',
    }


def api_settings(env: dict[str, str]) -> Settings:
    fields: dict[str, object] = {
        key.removeprefix("DUCTWORK_").lower(): value
        for key, value in env.items()
        if key.startswith("DUCTWORK_")
    }
    fields["secrets"] = json.loads(env["DUCTWORK_SECRETS"])  # JSON only from the environment
    return Settings(**fields)  # type: ignore[arg-type]


@pytest.fixture
def api(env: dict[str, str]) -> Iterator[LiveServer]:
    with LiveServer(api_settings(env), role="api") as live:
        yield live


@pytest.fixture
def running_worker(env: dict[str, str], tmp_path: Path) -> Iterator[Process]:
    process = worker("hooks-worker", env, tmp_path).start()
    process.wait_for_line("consuming runs")
    yield process
    process.kill()


def test_a_sync_hook_answers_with_the_result_of_a_run_on_a_worker(
    api: LiveServer, running_worker: Process
) -> None:
    assert not api.app.components.consume  # only the worker can run it
    definition = {
        "name": "scaled hook",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "shape",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": {"echo": "body.n * 2"}},
            },
            {"id": "end", "type": "end", "config": {"status_code": 201}},
        ],
        "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "end"}],
        "triggers": [
            {
                "type": "webhook",
                "path": "scaled",
                "respond": "sync",
                "rate_limit": "3/minute",
                "auth": {
                    "type": "token",
                    "credential": "hook_secret",
                    "header": "X-Token",
                    "prefix": "",
                },
            }
        ],
    }
    with api.client() as admin, httpx.Client(base_url=api.url, timeout=30) as caller:
        created = admin.post("/workflows/", json=definition)
        assert created.status_code == 201, created.text
        token = {"X-Token": "scaled-out-token"}
        answers = [caller.post("/hooks/scaled", json={"n": n}, headers=token) for n in (1, 2)]
        assert [a.status_code for a in answers] == [201, 201], answers[0].text
        assert [a.json() for a in answers] == [{"echo": 2}, {"echo": 4}]
        run = admin.get(f"/workflows/executions/{answers[0].headers['x-execution-id']}").json()
        assert run["trigger"] == {"type": "webhook", "path": "scaled", "method": "POST"}

        assert (
            caller.post("/hooks/scaled", json={"n": 3}, headers={"X-Token": "no"}).status_code
            == 401
        )
        # The failed call counted too: three calls a minute, kept in Redis.
        limited = caller.post("/hooks/scaled", json={"n": 4}, headers=token)
        assert limited.status_code == 429, limited.text
        assert len(admin.get(f"/workflows/{created.json()['id']}/executions").json()) == 2


def test_a_save_on_one_api_process_reaches_the_route_cache_of_another(
    api: LiveServer, env: dict[str, str]
) -> None:
    def definition(path: str) -> dict[str, object]:
        return {
            "name": "moving hook",
            "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
            "edges": [{"from": "start", "to": "end"}],
            "triggers": [{"type": "webhook", "path": path, "auth": {"type": "none"}}],
        }

    with LiveServer(api_settings(env), role="api") as other:
        # Only the change message can clear the other process's cache within the test.
        other.app.hooks.cache_seconds = 3600
        with api.client() as admin, httpx.Client(base_url=other.url, timeout=30) as caller:
            created = admin.post("/workflows/", json=definition("before"))
            assert created.status_code == 201, created.text
            assert caller.post("/hooks/before", json={}).status_code == 202  # cached there now
            moved = admin.put(f"/workflows/{created.json()['id']}", json=definition("after"))
            assert moved.status_code == 200, moved.text
            wait_until(
                lambda: caller.post("/hooks/before", json={}).status_code == 404,
                what="the other process to forget the old path",
            )
            assert caller.post("/hooks/after", json={}).status_code == 202
