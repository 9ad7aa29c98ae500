"""The HTTP layer's per-request economies keep their guarantees (issue 12).

- `/health` reads the store at most once per DUCTWORK_HEALTH_CACHE_SECONDS, and
  still reports a store that went down once that time has passed;
- `ductwork serve` writes no access-log line per request unless DUCTWORK_ACCESS_LOG.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from ductwork.cli import cli
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
