"""The HTTP layer's per-request economies keep their guarantees (issue 12).

- `/health` reads the store at most once per DUCTWORK_HEALTH_CACHE_SECONDS, and
  still reports a store that went down once that time has passed;
- `ductwork serve` writes no access-log line per request unless DUCTWORK_ACCESS_LOG;
- the hot routes (`ductwork.api.hot`) answer every request, good or bad, as the
  FastAPI routes do, and count each execute call once against the rate limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from typer.testing import CliRunner

from ductwork.api.app import create_app
from ductwork.api.hot import HotRoutes
from ductwork.cli import cli
from ductwork.runtime import build
from ductwork.settings import Settings
from tests.support.live_server import LiveServer
from tests.support.polling import eventually


@pytest.fixture
def probed(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[LiveServer, httpx.Client, list[str]]]:
    """A server with a health cache of `request.param` seconds whose store reads are
    recorded."""
    seconds: float = request.param
    with (
        LiveServer(Settings(data_dir=tmp_path, health_cache_seconds=seconds)) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        reads: list[str] = []
        read = live.app.store.get_workflow

        async def recorded(workflow_id: str) -> Any:
            reads.append(workflow_id)
            return await read(workflow_id)

        live.app.store.get_workflow = recorded  # type: ignore[method-assign]
        yield live, client, reads


@pytest.mark.parametrize("probed", [600], indirect=True)
def test_health_reuses_its_store_probe_within_the_interval(
    probed: tuple[LiveServer, httpx.Client, list[str]],
) -> None:
    _, client, reads = probed
    answers = [client.get("/health") for _ in range(5)]
    assert all(answer.status_code == 200 for answer in answers)
    assert answers[0].json()["store"] == "ok"
    assert reads == [""]  # the probe's id: a primary-key read that finds nothing


@pytest.mark.parametrize("probed", [0.2], indirect=True)
async def test_health_reports_a_store_gone_down_after_the_interval(
    probed: tuple[LiveServer, httpx.Client, list[str]],
) -> None:
    live, client, _ = probed
    assert client.get("/health").status_code == 200

    async def failing(*_: Any, **__: Any) -> Any:
        raise ConnectionError("could not connect")

    live.app.store.get_workflow = failing  # type: ignore[method-assign]

    def unavailable() -> bool:
        answer = client.get("/health")
        return answer.status_code == 503 and answer.json()["store"] == "unavailable"

    await eventually(unavailable, within=10, interval=0.05, what="/health to say 503")


@pytest.mark.parametrize(
    ("env", "expected"), [({}, False), ({"DUCTWORK_ACCESS_LOG": "true"}, True)]
)
def test_serve_access_log_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    options: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *_, **kwargs: options.update(kwargs))
    monkeypatch.setenv("DUCTWORK_HOST", "127.0.0.1")
    admin = "dw_" + "a" * 40
    result = CliRunner().invoke(
        cli,
        ["serve", "--port", "1"],
        env={"DUCTWORK_DATA_DIR": str(tmp_path), "DUCTWORK_ADMIN_API_KEY": admin, **env},
    )
    assert result.exit_code == 0, result.output
    assert options["access_log"] is expected
    assert options["log_level"] == "info"  # start-up and error lines stay


# The hot routes answer exactly as the FastAPI routes do ----------------------------------

THREE = {
    "name": "three",
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transformer", "config": {"transform_type": "map"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
}
KEY = "dw_hotroutesadminkey_" + "k" * 40


@asynccontextmanager
async def two_apps(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of one application served with the hot routes and without them."""
    application = build(settings, role="embedded")
    hot, plain = create_app(application), create_app(application)
    wrapper = plain.router.middleware_stack
    assert isinstance(wrapper, HotRoutes)
    plain.router.middleware_stack = wrapper.router
    await application.start()
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(hot), base_url="http://127.0.0.1", headers=headers
            ) as with_hot,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(plain), base_url="http://127.0.0.1", headers=headers
            ) as without,
        ):
            yield with_hot, without
    finally:
        await application.close()


def comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    body: Any = response.json() if response.content else None
    if response.status_code < 300 and isinstance(body, dict):
        # Ids and times differ between two runs; the shape and the outcome must not.
        body = {key: body[key] for key in ("status", "result", "created") if key in body}
    headers = {
        name: response.headers[name]
        for name in ("content-type", "retry-after", "www-authenticate")
        if name in response.headers
    }
    return response.status_code, body, headers


async def test_hot_routes_answer_as_the_router_does(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_api_key=SecretStr(KEY))
    async with two_apps(settings) as (hot, plain):
        workflow = (await hot.post("/workflows/", json=THREE)).json()["id"]
        run = (await hot.post(f"/workflows/{workflow}/execute", json={})).json()["execution_id"]
        execute = f"/workflows/{workflow}/execute"
        json_type = {"Content-Type": "application/json"}
        cases: list[tuple[str, str, dict[str, str], bytes | None]] = [
            ("POST", execute, json_type, b'{"inputs": {"n": 1}}'),
            ("POST", execute, {}, None),  # no body at all
            ("POST", execute, json_type, b"null"),
            ("POST", execute, json_type, b'{"inputs": 5}'),
            ("POST", execute, json_type, b'{"wait_seconds": -1}'),
            ("POST", execute, json_type, b'{"inputs": '),
            ("POST", execute, json_type, b'{"inputs": {"x": NaN}}'),
            ("POST", execute, {"Content-Type": "text/plain"}, b'{"inputs": {}}'),
            ("POST", execute, {**json_type, "Idempotency-Key": "k" * 201}, b"{}"),
            ("POST", "/workflows/nope/execute", json_type, b"{}"),
            ("POST", f"/workflows/{'w' * 201}/execute", json_type, b"{}"),
            ("POST", f"{execute}/", json_type, b"{}"),
            ("GET", f"/workflows/{workflow}", {}, None),
            ("GET", "/workflows/nope", {}, None),
            ("GET", "/workflows/validate", {}, None),
            ("GET", "/workflows/%01", {}, None),
            ("GET", "/workflows/executions", {}, None),
            ("GET", f"/workflows/executions/{run}", {}, None),
            ("GET", "/workflows/executions/nope", {}, None),
            ("GET", f"/workflows/executions/{'e' * 201}", {}, None),
            ("GET", f"/workflows/{workflow}", {"Authorization": "Bearer dw_wrong"}, None),
            # `$` would match before a final newline: the router refuses the id (422).
            ("GET", f"/workflows/{workflow}%0A", {}, None),
            ("GET", f"/workflows/executions/{run}%0A", {}, None),
        ]
        for method, path, headers, content in cases:
            answers = [
                await client.request(method, path, headers=headers, content=content)
                for client in (hot, plain)
            ]
            assert comparable(answers[0]) == comparable(answers[1]), (method, path, content)


async def test_hot_execute_counts_each_call_once_against_the_rate_limit(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, admin_api_key=SecretStr(KEY), execute_rate_limit="3/minute"
    )
    async with two_apps(settings) as (hot, _):
        workflow = (await hot.post("/workflows/", json=THREE)).json()["id"]
        execute = f"/workflows/{workflow}/execute"
        assert (await hot.post(execute, json={})).status_code == 200
        # A body only the router answers (422) still counts, once.
        assert (await hot.post(execute, json={"inputs": 5})).status_code == 422
        assert (await hot.post(execute, json={"inputs": {}})).status_code == 200
        refused = await hot.post(execute, json={})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
