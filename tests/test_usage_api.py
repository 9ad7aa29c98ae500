"""Usage and cost over HTTP (issue 11): a run's `usage`/`cost`, `GET /workflows/{id}/usage`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ductwork.settings import ModelPrice, Settings
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub

PRICE = {"input": 1000.0, "output": 2000.0}
"""Dollars per million tokens: steep, so a few stub tokens cost cents."""


@pytest.fixture
def priced(full_settings: Settings) -> Iterator[httpx.Client]:
    prices = {"priced/model": ModelPrice.model_validate(PRICE)}
    settings = full_settings.model_copy(update={"llm_prices": prices})
    with LiveServer(settings) as live, live.client(timeout=30) as http:
        yield http


def ai_workflow(**settings: float) -> dict[str, object]:
    return {
        "name": "priced",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "ai1",
                "type": "ai-processor",
                "config": {"prompt": "Say hello", "cache": False, "model": "priced/model"},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "ai1"}, {"from": "ai1", "to": "end"}],
        "settings": settings,
    }


def test_runs_show_their_usage_and_the_workflow_sums_it_per_day(
    priced: httpx.Client, llm: OpenAIStub
) -> None:
    workflow_id = priced.post("/workflows/", json=ai_workflow()).json()["id"]
    empty = priced.get(f"/workflows/{workflow_id}/usage")
    assert empty.status_code == 200, empty.text
    today = datetime.now(UTC).date()
    assert empty.json() == {
        "workflow_id": workflow_id,
        "since": datetime.combine(today - timedelta(days=29), datetime.min.time(), UTC).isoformat(),
        "total": {
            "runs": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost": 0.0,
        },
        "days": [],
    }
    runs = []
    for _ in range(2):
        executed = priced.post(f"/workflows/{workflow_id}/execute", json={})
        assert executed.status_code == 200 and executed.json()["status"] == "success"
        assert executed.json()["usage"]["calls"] == 1
        runs.append(priced.get(f"/workflows/executions/{executed.json()['execution_id']}").json())
    assert llm.calls == 2
    usage = runs[0]["usage"]
    expected = (
        usage["prompt_tokens"] * PRICE["input"] + usage["completion_tokens"] * PRICE["output"]
    ) / 1e6
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["cost"] == pytest.approx(expected) and runs[0]["cost"] == pytest.approx(expected)
    assert usage["by_model"]["priced/model"]["calls"] == 1 and usage["unpriced_calls"] == 0
    assert runs[0]["node_states"]["ai1"]["usage"]["cost"] == pytest.approx(expected)

    report = priced.get(f"/workflows/{workflow_id}/usage", params={"days": 1}).json()
    tokens = sum(run["usage"]["total_tokens"] for run in runs)
    day = {
        "date": today.isoformat(),
        "runs": 2,
        "prompt_tokens": sum(run["usage"]["prompt_tokens"] for run in runs),
        "completion_tokens": sum(run["usage"]["completion_tokens"] for run in runs),
        "total_tokens": tokens,
    }
    assert report["days"] == [{**day, "cost": pytest.approx(2 * expected)}]
    assert report["total"] == {
        **{k: v for k, v in day.items() if k != "date"},
        "cost": pytest.approx(2 * expected),
    }


def test_usage_refuses_bad_input_with_4xx(client: httpx.Client, server: LiveServer) -> None:
    workflow_id = client.post("/workflows/", json=ai_workflow()).json()["id"]
    for days in ("0", "367", "many"):
        response = client.get(f"/workflows/{workflow_id}/usage", params={"days": days})
        assert response.status_code == 422, response.text
        assert "days" in response.text
    missing = client.get("/workflows/no-such-workflow/usage")
    assert missing.status_code == 404 and "no-such-workflow" in missing.text
    anonymous = httpx.get(f"{server.url}/workflows/{workflow_id}/usage")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("setting", ["max_cost_per_run", "max_cost_per_day"])
def test_a_negative_budget_is_refused_at_save_time(client: httpx.Client, setting: str) -> None:
    response = client.post("/workflows/", json=ai_workflow(**{setting: -1}))
    assert response.status_code == 422
    assert setting in response.text
