"""Bad input is a clear 4xx, never a 500 (and never a run that cannot be read back).

Each case here answered 500, or stored something that answered 500 on every
later read, before request bodies were parsed and checked by
`ductwork.api.limits`.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from ductwork.api.limits import parse_json_body
from ductwork.api.responses import JSON, MAX_ENCODED_DEPTH
from ductwork.jsonvalues import find_problem
from ductwork.settings import Settings
from tests.support.live_server import LiveServer
from tests.support.seed import SEED_BODY

# The seed's workflow without the LLM: runs in milliseconds, needs no stub.
WORKFLOW: dict[str, Any] = copy.deepcopy(SEED_BODY)
WORKFLOW["nodes"][1] = {"id": "ai1", "type": "transformer", "config": {}}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[LiveServer, httpx.Client]]:
    with (
        LiveServer(Settings(data_dir=tmp_path, sync_wait_seconds=20)) as live,
        httpx.Client(base_url=live.url, timeout=60, headers=live.headers) as client,
    ):
        yield live, client


@pytest.fixture
def client(api: tuple[LiveServer, httpx.Client]) -> httpx.Client:
    return api[1]


def nested(depth: int, leaf: Any = "x", key: str | None = "a") -> Any:
    """`depth` containers around `leaf`: objects {key: ...} or, with key None, lists."""
    value = leaf
    for _ in range(depth):
        value = [value] if key is None else {key: value}
    return value


JSON_TYPE = {"content-type": "application/json"}


def post_raw(client: httpx.Client, path: str, text: str) -> httpx.Response:
    """POST a body the test writes by hand (httpx's own encoder refuses NaN and surrogates)."""
    return client.post(path, content=text.encode(), headers=JSON_TYPE)


def rejected(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    """Assert a 422 in the documented shape; return its first issue."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["detail"], body
    for issue in body["detail"]:
        assert set(issue) == {"node_id", "field", "message"}, issue
    issue: dict[str, Any] = body["detail"][0]
    if field is not None:
        assert issue["field"] == field, body
    return issue


def workflow_id(client: httpx.Client) -> str:
    created = client.post("/workflows/", json=WORKFLOW)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def runs_of(client: httpx.Client, wid: str) -> list[Any]:
    listed = client.get(f"/workflows/{wid}/executions")
    assert listed.status_code == 200, listed.text
    return list(listed.json())


# Query parameters --------------------------------------------------------------------

INT64_OVERFLOW = str(2**63)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"offset={INT64_OVERFLOW}", "offset"),
        (f"offset={2**64}", "offset"),
        (f"limit={INT64_OVERFLOW}", "limit"),
        ("offset=-1", "offset"),
        ("limit=-5", "limit"),
        ("limit=0", "limit"),
        ("offset=1e3", "offset"),
    ],
)
def test_list_paging_out_of_range_is_422(client: httpx.Client, query: str, field: str) -> None:
    rejected(client.get(f"/workflows/?{query}"), field)
    wid = workflow_id(client)
    rejected(client.get(f"/workflows/{wid}/executions?{query}"), field)


def test_event_resume_points_out_of_range_are_422(client: httpx.Client) -> None:
    wid = workflow_id(client)
    run = client.post(f"/workflows/{wid}/execute", json={})
    execution_id = run.json()["execution_id"]
    events = f"/workflows/executions/{execution_id}/events"
    rejected(client.get(f"{events}?after={INT64_OVERFLOW}"), "after")
    too_far = client.get(events, headers={"Last-Event-ID": INT64_OVERFLOW})
    assert "non-negative seq" in rejected(too_far, "Last-Event-ID")["message"]


@pytest.mark.parametrize("bad_id", ["%00", "a%00b", "x" * 201, "%1b%5B31m"])
def test_ids_that_no_store_can_look_up_are_422(client: httpx.Client, bad_id: str) -> None:
    for path in (
        f"/workflows/{bad_id}",
        f"/workflows/{bad_id}/executions",
        f"/workflows/executions/{bad_id}",
        f"/workflows/executions/{bad_id}/events",
    ):
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)


# Request bodies ----------------------------------------------------------------------


def test_a_999_node_chain_saves_validates_and_runs(client: httpx.Client) -> None:
    size = 999
    nodes = [
        {"id": f"n{i}", "type": "start" if i == 0 else "transformer", "config": {}}
        for i in range(size)
    ]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(size - 1)]
    body = {"name": "long chain", "nodes": nodes, "edges": edges}
    assert client.post("/workflows/validate", json=body).json() == {"valid": True, "issues": []}
    created = client.post("/workflows/", json=body)
    assert created.status_code == 201, created.text[:500]
    wid = created.json()["id"]
    assert len(client.get(f"/workflows/{wid}").json()["nodes"]) == size
    run = client.post(f"/workflows/{wid}/execute", json={"inputs": {"n": 1}})
    assert run.status_code == 200, run.text[:500]
    assert run.json()["status"] == "success"
    read = client.get(f"/workflows/executions/{run.json()['execution_id']}")
    assert read.status_code == 200 and len(read.json()["node_states"]) == size


def test_metadata_nested_300_deep_is_422_and_nothing_is_saved(client: httpx.Client) -> None:
    body = dict(WORKFLOW, metadata=nested(300))
    issue = rejected(client.post("/workflows/", json=body))
    assert issue["field"].startswith("metadata.a") and "nested deeper than 64" in issue["message"]
    assert "DUCTWORK_MAX_JSON_DEPTH" in issue["message"]
    rejected(client.post("/workflows/validate", json=body))
    assert client.get("/workflows/").json() == []


def test_metadata_within_the_depth_bound_round_trips(client: httpx.Client) -> None:
    # The body itself is one level: 62 more under "metadata" stay within 64.
    deep = nested(62, leaf={})
    created = client.post("/workflows/", json=dict(WORKFLOW, metadata=deep))
    assert created.status_code == 201, created.text
    assert client.get(f"/workflows/{created.json()['id']}").json()["metadata"] == deep


def test_depth_bound_follows_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_json_depth=8)
    with LiveServer(settings) as live, live.client() as client:
        ok = client.post("/workflows/", json=dict(WORKFLOW, metadata=nested(6)))
        assert ok.status_code == 201, ok.text
        issue = rejected(client.post("/workflows/", json=dict(WORKFLOW, metadata=nested(8))))
        assert "deeper than 8 levels" in issue["message"]
    with pytest.raises(ValidationError):
        Settings(max_json_depth=300)  # responses nest deeper than requests: orjson stops at 254


def test_lone_surrogate_in_a_node_id_is_422(client: httpx.Client) -> None:
    text = orjson.dumps(WORKFLOW).decode().replace('"ai1"', '"ai\\ud800"', 1)
    issue = rejected(post_raw(client, "/workflows/", text), "nodes.1.id")
    assert "surrogate" in issue["message"] and issue["node_id"] is None
    rejected(post_raw(client, "/workflows/validate", text), "nodes.1.id")
    assert client.get("/workflows/").json() == []


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ('{"name": "\\ud800"}', "inputs.name", "surrogate"),
        ('{"name": "low \\udc00 alone"}', "inputs.name", "surrogate"),
        ('{"\\ud800": 1}', "inputs", "surrogate"),
        ('{"x": NaN}', "inputs.x", "NaN"),
        ('{"x": [1, Infinity]}', "inputs.x.1", "NaN and Infinity"),
        ('{"x": -Infinity}', "inputs.x", "NaN and Infinity"),
        ('{"x": 1e400}', "inputs.x", "NaN and Infinity"),
        ('{"x": "a\\u0000b"}', "inputs.x", "NUL"),
        ('{"a\\u0000": 1}', "inputs", "NUL"),
        (f'{{"x": {2**63}}}', "inputs.x", "64 bits"),
        (f'{{"x": {2**64}}}', "inputs.x", "64 bits"),
        (f'{{"x": [{-(2**200)}]}}', "inputs.x.0", "64 bits"),
        (f'{{"x": {-(2**63) - 1}}}', "inputs.x", "64 bits"),
    ],
)
def test_inputs_a_store_cannot_hold_are_422_and_no_run_is_created(
    client: httpx.Client, inputs: str, field: str, words: str
) -> None:
    wid = workflow_id(client)
    issue = rejected(post_raw(client, f"/workflows/{wid}/execute", f'{{"inputs": {inputs}}}'))
    assert issue["field"] == field and words in issue["message"], issue
    assert runs_of(client, wid) == []


def test_inputs_nested_500_deep_are_422_and_no_run_is_created(client: httpx.Client) -> None:
    wid = workflow_id(client)
    for deep in (nested(500), nested(500, key=None)):
        issue = rejected(client.post(f"/workflows/{wid}/execute", json={"inputs": {"x": deep}}))
        assert issue["field"].startswith("inputs.x") and "nested deeper" in issue["message"]
    assert runs_of(client, wid) == []


def test_inputs_larger_than_the_setting_are_422(client: httpx.Client) -> None:
    wid = workflow_id(client)
    big = {"text": "x" * 1_000_001}
    issue = rejected(client.post(f"/workflows/{wid}/execute", json={"inputs": big}), "inputs")
    assert "DUCTWORK_MAX_INPUTS_BYTES" in issue["message"]
    assert runs_of(client, wid) == []
    fits = client.post(f"/workflows/{wid}/execute", json={"inputs": {"text": "x" * 900_000}})
    assert fits.status_code == 200 and fits.json()["status"] == "success"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('"y":0}', '"y":NaN}', "nodes.0.position.y"),
        ('"y":0}', '"y":Infinity}', "nodes.0.position.y"),
        ('"Test Workflow"', '"Test\\u0000Workflow"', "name"),
        ('"version":"1.0"', '"version":"\\udfff"', "metadata.version"),
    ],
)
def test_workflow_bodies_with_unstorable_values_are_422(
    client: httpx.Client, old: str, new: str, field: str
) -> None:
    text = orjson.dumps(WORKFLOW).decode().replace(old, new, 1)
    assert new in text
    issue = rejected(post_raw(client, "/workflows/", text), field)
    if field.startswith("nodes.0"):
        assert issue["node_id"] == "start"
    rejected(post_raw(client, "/workflows/validate", text), field)
    assert client.get("/workflows/").json() == []
    wid = workflow_id(client)
    put = client.put(
        f"/workflows/{wid}", content=text.encode(), headers={"content-type": "application/json"}
    )
    rejected(put, field)
    assert client.get(f"/workflows/{wid}").json()["version"] == 1


def test_syntax_errors_say_where(client: httpx.Client) -> None:
    issue = rejected(post_raw(client, "/workflows/", '{"name": "x",, }'))
    assert issue["message"].startswith("invalid JSON") and "column" in issue["message"]


# /health -----------------------------------------------------------------------------


def test_health_does_not_echo_the_store_error(
    api: tuple[LiveServer, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    live, client = api
    secret = "password=hunter2 host=db.internal.example"

    async def failing(*_: Any, **__: Any) -> Any:
        raise ConnectionError(f"could not connect: {secret}")

    # /health probes the store with a read of a workflow id no workflow has.
    live.app.store.get_workflow = failing  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="ductwork.api"):
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "store": "unavailable"}
    assert "hunter2" not in response.text
    assert any(
        secret in record.getMessage() or secret in str(record.exc_info) for record in caplog.records
    )


# Responses ---------------------------------------------------------------------------


def test_responses_encode_values_orjson_refuses() -> None:
    stored = {
        "deep": nested(400),
        "surrogate": "a\ud800b",
        "huge": 2**70,
        "fine": [1, 2.5, None, "ok"],
    }
    body = orjson.loads(JSON(stored).body)
    assert body["fine"] == [1, 2.5, None, "ok"]
    assert body["surrogate"] == "a\ufffdb" and body["huge"] == str(2**70)
    level = body["deep"]
    for _ in range(MAX_ENCODED_DEPTH - 1):
        level = level["a"]
    assert isinstance(level, str) and "nested deeper" in level


def test_parse_json_body_unit() -> None:
    assert parse_json_body(b'{"a": [1, "b", null, true, 2.5]}', 64) == {
        "a": [1, "b", None, True, 2.5]
    }
    # Hints that send a body to the full walk, without a problem: a large float literal,
    # an escaped backslash before "u0000" (the text \u0000, not a NUL).
    assert parse_json_body(b'{"a": 1e20, "b": "\\\\u0000", "c": -1e300}', 64) == {
        "a": 1e20,
        "b": "\\u0000",
        "c": -1e300,
    }
    assert parse_json_body(str(2**63 - 1).encode(), 64) == 2**63 - 1
    assert find_problem(nested(10**5, key=None), 64) is not None  # iterative: no RecursionError
    assert find_problem(nested(64), 64) is None  # 64 levels of containers
    assert find_problem(nested(65), 64) is not None


# Fuzz --------------------------------------------------------------------------------

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63 - 1,
    2**64,
    -(2**64),
    1.5e308,
    "",
    "x" * 5000,
    "{{ nope",
    [],
    {},
    [[[]]],
    {"": {}},
    nested(70),
    nested(70, key=None),
    nested(300),
    [None] * 50,
    # Below: what Python's json writes but orjson, the stores or the encoder refuse.
    float("nan"),
    float("-inf"),
    "\ud800",
    {"\udc00": 1},
    "a\x00b",
]

ODD_TEXTS: list[str] = [
    "",
    "null",
    "[]",
    "{}",
    "0",
    '"x"',
    "{",
    '{"a": NaN}',
    '{"inputs": {"v": Infinity}}',
    '["\\ud800"]',
    '{"\\udc00": 1}',
    '{"name": "\\u0000"}',
    "[" * 2000 + "]" * 2000,
    '{"a":' * 300 + "1" + "}" * 300,
    str(2**200),
    '{"prompt": 5}',
    '{"prompt": "make a workflow", "save": "yes"}',
    '{"inputs": [], "async_execution": "soon"}',
    '{"inputs": {}, "wait_seconds": -1}',
    '{"use_current_definition": {"a": 1}}',
]


def _mutations(rng: random.Random, count: int) -> Iterator[Any]:
    """Copies of the workflow with one value somewhere replaced by an odd one."""
    for _ in range(count):
        body: Any = copy.deepcopy(WORKFLOW)
        holder, key = body, None
        path: list[Any] = []
        for _depth in range(rng.randint(1, 5)):
            if isinstance(holder, dict) and holder:
                key = rng.choice(sorted(holder))
            elif isinstance(holder, list) and holder:
                key = rng.randrange(len(holder))
            else:
                break
            path.append((holder, key))
            if not isinstance(holder[key], dict | list):
                break
            holder = holder[key]
        if path:
            parent, key = path[-1]
            parent[key] = rng.choice(ODD_VALUES)
        else:
            body = rng.choice(ODD_VALUES)
        yield body


def test_fuzz_json_routes_never_answer_5xx(client: httpx.Client) -> None:
    rng = random.Random(8)
    wid = workflow_id(client)
    run = client.post(f"/workflows/{wid}/execute", json={"async_execution": False})
    eid = run.json()["execution_id"]
    routes = [
        ("post", "/workflows/"),
        ("post", "/workflows/validate"),
        ("put", f"/workflows/{wid}"),
        ("post", f"/workflows/{wid}/execute"),
        ("post", f"/workflows/executions/{eid}/retry"),
        ("post", "/ai/workflows/generate"),
    ]
    # The stdlib encoder: it writes integers past 64 bits, which orjson refuses to.
    bodies = [json.dumps(value) for value in ODD_VALUES] + ODD_TEXTS
    bodies += [json.dumps(body) for body in _mutations(rng, 40)]
    inputs = [json.dumps({"inputs": value, "async_execution": True}) for value in ODD_VALUES]
    inputs += [json.dumps({"inputs": {"v": value}}) for value in ODD_VALUES]
    attempts = [(text, route) for text in bodies for route in routes]
    attempts += [(text, ("post", f"/workflows/{wid}/execute")) for text in inputs]
    failures = []
    for text, (method, path) in attempts:
        response = client.request(
            method, path, content=text.encode(), headers={"content-type": "application/json"}
        )
        # No LLM is configured here: a well-formed generate request is the documented 503.
        no_llm = path.startswith("/ai/") and response.status_code == 503
        if response.status_code >= 500 and not no_llm:
            failures.append((method, path, text[:120], response.status_code))
    for query in ("limit=1e9", "offset=9" * 30, "limit=", "offset=abc", "limit=1&offset=-0"):
        response = client.get(f"/workflows/?{query}")
        if response.status_code >= 500:
            failures.append(("get", "/workflows/", query, response.status_code))
    assert failures == []
    # Whatever was created along the way can be read back.
    for workflow in client.get("/workflows/?limit=1000").json():
        assert client.get(f"/workflows/{workflow['id']}").status_code == 200
        for listed in runs_of(client, workflow["id"]):
            read = client.get(f"/workflows/executions/{listed['execution_id']}")
            assert read.status_code == 200, read.text[:300]


# Every store ---------------------------------------------------------------------------


def test_every_store_serves_the_largest_offset_and_refuses_the_unstorable(
    store_kind: str, store_url_factory: Any, tmp_path: Path
) -> None:
    # The bounds hold where the values would have gone: PostgreSQL refuses NUL, MongoDB
    # integers past int64, and each store has its own largest OFFSET/skip.
    settings = Settings(data_dir=tmp_path, store_url=store_url_factory(store_kind))
    with LiveServer(settings) as live, live.client(timeout=60) as client:
        wid = workflow_id(client)
        largest = client.get(f"/workflows/?offset={2**31 - 1}&limit=1000")
        assert largest.status_code == 200 and largest.json() == []
        assert client.get(f"/workflows/{wid}/executions?offset={2**31 - 1}").json() == []
        for inputs in ('{"x": "a\\u0000b"}', f'{{"x": {2**63}}}', '{"x": "\\ud800"}'):
            rejected(post_raw(client, f"/workflows/{wid}/execute", f'{{"inputs": {inputs}}}'))
        rejected(client.post(f"/workflows/{wid}/execute", json={"inputs": nested(300)}))
        rejected(client.get("/workflows/executions/a%00b"))
        rejected(client.get("/workflows/a%00b"))
        nul_name = orjson.dumps(WORKFLOW).decode().replace("Test Workflow", "Test\\u0000")
        rejected(post_raw(client, "/workflows/", nul_name), "name")
        assert [workflow["id"] for workflow in client.get("/workflows/").json()] == [wid]
        assert runs_of(client, wid) == []
        run = client.post(f"/workflows/{wid}/execute", json={"inputs": {"x": 2**63 - 1}})
        assert run.json()["status"] == "success"
        read = client.get(f"/workflows/executions/{run.json()['execution_id']}").json()
        assert read["node_states"]["end"]["output"] == {"x": 2**63 - 1}


def test_every_route_with_a_body_parses_it_through_the_checks(client: httpx.Client) -> None:
    # A router added without CheckedJSONRoute would take bodies through the stdlib parser,
    # which accepts NaN: every body the OpenAPI document declares must refuse it.
    wid = workflow_id(client)
    eid = client.post(f"/workflows/{wid}/execute", json={}).json()["execution_id"]
    checked = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            url = path.replace("{workflow_id}", wid).replace("{execution_id}", eid)
            issue = rejected(client.request(method, url, content=b'{"x": NaN}', headers=JSON_TYPE))
            assert "NaN" in issue["message"], (method, path, issue)
            checked.append((method, path))
    assert len(checked) >= 6, checked
