"""`POST /ai/workflows/generate` against a live server and the OpenAI-compatible stub.

The stub answers with scripted texts (`queue_replies`) or a reply function;
its recorded requests show what ductwork sent: the system prompt, the
response format and the repair conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ductwork.examples import read_workflow_file
from ductwork.generation import (
    STRUCTURED_OUTPUT_KEYWORDS,
    check_answer,
    extract_json,
    forget_provider_formats,
    workflow_schema,
)
from ductwork.models import EdgeSpec, NodeSpec, Position, RetryPolicy, WorkflowDefinition
from ductwork.nodes.registry import REGISTRY
from ductwork.settings import Settings
from tests.conftest import EXAMPLES
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub, RecordedRequest

PROMPT = "Summarise the text I pass in with an LLM."

VALID: dict[str, Any] = {
    "name": "Summarise text",
    "nodes": [
        {"id": "start", "type": "start", "config": {}},
        {"id": "summarise", "type": "ai-processor", "config": {"prompt": "Summarise: {{text}}"}},
        {"id": "end", "type": "end", "config": {}},
    ],
    "edges": [{"from": "start", "to": "summarise"}, {"from": "summarise", "to": "end"}],
    "variables": ["text"],
}

# Two independent problems: an unknown node type and a cycle a -> b -> a.
CYCLE_AND_UNKNOWN: dict[str, Any] = {
    "name": "Broken",
    "nodes": [
        {"id": "start", "type": "start", "config": {}},
        {"id": "a", "type": "transformer", "config": {"transform_type": "map"}},
        {"id": "b", "type": "magic-node", "config": {}},
        {"id": "end", "type": "end", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "a"},
        {"from": "a", "to": "b"},
        {"from": "b", "to": "a"},
        {"from": "a", "to": "end"},
    ],
}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@pytest.fixture(autouse=True)
def _fresh_format_memory() -> Iterator[None]:
    # Which formats a provider refused is remembered per process; tests start clean.
    forget_provider_formats()
    yield
    forget_provider_formats()


def serve(settings: Settings) -> tuple[LiveServer, httpx.Client]:
    live = LiveServer(settings).start()
    return live, live.client(timeout=30)


def generate(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/ai/workflows/generate", json={"prompt": PROMPT, **body})


def test_invalid_answer_is_repaired_with_the_issues_sent_back(
    client: httpx.Client, llm: OpenAIStub
) -> None:
    llm.queue_replies(dumps(CYCLE_AND_UNKNOWN), dumps(VALID))
    response = generate(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rounds"] == 2 and body["saved"] is False and "workflow_id" not in body
    assert body["workflow"]["name"] == "Summarise text"
    assert [node["id"] for node in body["workflow"]["nodes"]] == ["start", "summarise", "end"]
    assert body["workflow"]["edges"] == VALID["edges"]
    assert llm.calls == 2

    first, second = llm.requests
    assert PROMPT in first.user_message
    roles = [message["role"] for message in second.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert orjson.loads(second.messages[2]["content"]) == CYCLE_AND_UNKNOWN
    repair = second.user_message
    assert "magic-node" in repair and "unknown node type" in repair
    assert "cycle: a -> b -> a" in repair
    assert "node 'b'" in repair


def test_never_valid_answers_422_after_max_rounds(full_settings: Settings, llm: OpenAIStub) -> None:
    answers = 0

    def always_broken(_: RecordedRequest) -> str:
        nonlocal answers
        answers += 1
        broken = dict(VALID, nodes=[*VALID["nodes"][:2], {"id": "end", "type": f"bogus-{answers}"}])
        return dumps(broken)

    llm.reply = always_broken
    live, client = serve(full_settings.model_copy(update={"generate_max_rounds": 2}))
    try:
        response = generate(client)
    finally:
        client.close()
        live.stop()
    assert response.status_code == 422, response.text
    body = response.json()
    assert llm.calls == 2 and body["rounds"] == 2
    assert "no valid workflow after 2 rounds" in body["message"]
    messages = [issue["message"] for issue in body["detail"]]
    assert any("bogus-2" in message for message in messages), messages
    assert not any("bogus-1" in message for message in messages), "issues must be the last ones"
    assert body["detail"][0]["node_id"] == "end" and body["detail"][0]["field"] == "type"
    # The last answer comes back as a draft an editor can open with the problems pinned.
    assert [node["type"] for node in body["workflow"]["nodes"]][-1] == "bogus-2"
    # The repair round saw the first answer's problem.
    assert "bogus-1" in llm.requests[1].user_message


def test_saved_workflow_is_stored_and_runs(client: httpx.Client, llm: OpenAIStub) -> None:
    llm.queue_replies(dumps(VALID))
    response = generate(client, save=True)
    assert response.status_code == 201, response.text
    body = response.json()
    workflow_id = body["workflow_id"]
    assert body["saved"] is True and body["rounds"] == 1
    assert response.headers["location"] == f"/workflows/{workflow_id}"

    stored = client.get(f"/workflows/{workflow_id}")
    assert stored.status_code == 200
    workflow = stored.json()
    assert workflow["name"] == "Summarise text" and workflow["version"] == 1
    # Nodes the model left unplaced are laid out left to right.
    assert [node["position"]["x"] for node in workflow["nodes"]] == [0, 250, 500]
    assert workflow["metadata"]["generation"]["prompt"] == PROMPT

    run = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"text": "pipes"}})
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "success"
    status = client.get(f"/workflows/executions/{run.json()['execution_id']}").json()
    assert status["node_states"]["summarise"]["output"] == "Echo: Summarise: pipes"


def test_fenced_answer_with_prose_is_parsed(client: httpx.Client, llm: OpenAIStub) -> None:
    llm.queue_replies(
        "Sure! Here is the workflow you asked for, using {{text}}:\n\n"
        f"```json\n{orjson.dumps(VALID, option=orjson.OPT_INDENT_2).decode()}\n```\n"
        "Let me know if you want changes {like this}."
    )
    response = generate(client)
    assert response.status_code == 200, response.text
    assert response.json()["rounds"] == 1
    assert response.json()["workflow"]["nodes"][1]["config"] == {"prompt": "Summarise: {{text}}"}


def test_extract_json_finds_the_workflow_in_several_wrappings() -> None:
    text = dumps(VALID)
    assert extract_json(text) == VALID
    assert extract_json(f"```\n{text}\n```") == VALID
    assert extract_json(f"Here you go: {text} -- hope it helps. {{not json}}") == VALID
    assert extract_json(f"Vars like {{{{x}}}} and {{oops}} first, then {text}") == VALID
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("I cannot do that.")
    with pytest.raises(ValueError, match="empty"):
        extract_json("   ")


def test_system_prompt_lists_every_node_type_and_asks_for_json_schema(
    client: httpx.Client, llm: OpenAIStub
) -> None:
    llm.queue_replies(dumps(VALID))
    assert generate(client).status_code == 200
    (request,) = llm.requests
    system = request.system_prompt or ""
    for name, node_type in REGISTRY.items():
        assert f"## {name}: {node_type.description}" in system
    assert "branches: false, true" in system  # condition's labels
    assert "outputs.<id>" in system and "{{user_name}}" in system
    assert '"name":"Branch on account status"' in system  # a shipped example as few-shot
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema == workflow_schema(REGISTRY)
    variants = [
        resolve(schema, ref["$ref"]) for ref in schema["properties"]["nodes"]["items"]["anyOf"]
    ]
    assert [variant["properties"]["type"]["enum"] for variant in variants] == [
        [name] for name in REGISTRY
    ]
    assert request.temperature is not None and request.temperature <= 0.3


def test_identical_request_is_answered_from_the_cache(
    client: httpx.Client, llm: OpenAIStub
) -> None:
    llm.queue_replies(dumps(VALID), dumps(dict(VALID, name="Other")))
    first = generate(client).json()
    again = generate(client).json()
    assert first["cached"] is False and again["cached"] is True
    assert again["workflow"]["name"] == "Summarise text" and llm.calls == 1
    other = generate(client, prompt="Something else entirely").json()
    assert other["cached"] is False and other["workflow"]["name"] == "Other"
    assert llm.calls == 2


def test_invalid_first_answers_are_not_cached(client: httpx.Client, llm: OpenAIStub) -> None:
    llm.queue_replies(
        dumps(CYCLE_AND_UNKNOWN), dumps(VALID), dumps(CYCLE_AND_UNKNOWN), dumps(VALID)
    )
    assert generate(client).json()["rounds"] == 2
    second = generate(client).json()
    assert second["rounds"] == 2 and second["cached"] is False
    assert llm.calls == 4


class SchemaRejectingStub(OpenAIStub):
    """A provider without structured outputs: 400 for any `json_schema` response format."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected: list[dict[str, Any]] = []

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        if (body.get("response_format") or {}).get("type") == "json_schema":
            self.rejected.append(body)
            return JSONResponse(
                {
                    "error": {
                        "message": "response_format json_schema is not supported by this model",
                        "type": "invalid_request_error",
                    }
                },
                status_code=400,
            )
        return await super()._chat(request)


def test_provider_without_json_schema_falls_back_to_json_object(full_settings: Settings) -> None:
    with SchemaRejectingStub() as stub:
        stub.queue_replies(dumps(VALID), dumps(VALID))
        settings = full_settings.model_copy(update={"llm_base_url": stub.base_url})
        live, client = serve(settings)
        try:
            first = generate(client)
            assert first.status_code == 200, first.text
            assert first.json()["rounds"] == 1
            assert len(stub.rejected) == 1
            assert [r.body["response_format"] for r in stub.requests] == [{"type": "json_object"}]
            # Remembered for this provider and model: no second refusal.
            second = generate(client, prompt="Another summariser")
            assert second.status_code == 200, second.text
            assert len(stub.rejected) == 1
            assert stub.requests[-1].body["response_format"] == {"type": "json_object"}
        finally:
            client.close()
            live.stop()


def test_truncated_answer_is_reported_as_cut_off(client: httpx.Client, llm: OpenAIStub) -> None:
    llm.queue_replies('{"name": "long", "nodes": [' + "x " * 5000, dumps(VALID))
    response = generate(client)
    assert response.status_code == 200, response.text
    assert "cut off" in llm.requests[1].user_message


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 10_001])
def test_bad_prompt_is_422(client: httpx.Client, llm: OpenAIStub, prompt: str) -> None:
    response = client.post("/ai/workflows/generate", json={"prompt": prompt})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "prompt"
    assert llm.calls == 0


def test_missing_llm_key_is_503_naming_the_setting(
    full_settings: Settings, llm: OpenAIStub
) -> None:
    live, client = serve(full_settings.model_copy(update={"llm_api_key": None}))
    try:
        response = generate(client)
    finally:
        client.close()
        live.stop()
    assert response.status_code == 503
    assert "DUCTWORK_LLM_API_KEY" in response.json()["message"]
    assert llm.calls == 0


def test_upstream_failure_is_502(client: httpx.Client, llm: OpenAIStub) -> None:
    llm.api_key = "another-key"  # every request is refused with 401
    response = generate(client)
    assert response.status_code == 502
    assert "HTTP 401" in response.json()["message"]
    assert llm.calls == 1, "a 401 is neither retried nor taken for an unsupported format"


def test_outputs_must_name_an_upstream_node() -> None:
    ghost = dict(
        VALID,
        nodes=[
            VALID["nodes"][0],
            {
                "id": "summarise",
                "type": "ai-processor",
                "config": {"prompt": "{{ outputs.ghost }}"},
            },
            {"id": "side", "type": "condition", "config": {"condition": "outputs.summarise != ''"}},
            {"id": "end", "type": "end", "config": {}},
        ],
        edges=[
            {"from": "start", "to": "summarise"},
            {"from": "start", "to": "side"},
            {"from": "summarise", "to": "end"},
            {"from": "side", "to": "end", "branch": "true"},
        ],
    )
    definition, plan, issues = check_answer(dumps(ghost), REGISTRY)
    assert plan is None and definition is not None  # a draft, shown with its issues
    found = {(issue.node_id, issue.field): issue.message for issue in issues}
    assert "no node 'ghost'" in found[("summarise", "config.prompt")]
    assert "not upstream of 'side'" in found[("side", "config.condition")]
    definition, plan, issues = check_answer(dumps(VALID), REGISTRY)
    assert issues == [] and definition is not None


def test_max_rounds_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().generate_max_rounds == 3
    monkeypatch.setenv("DUCTWORK_GENERATE_MAX_ROUNDS", "5")
    assert Settings().generate_max_rounds == 5


# The structured-output schema -------------------------------------------------------


def resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    """The definition a local `#/$defs/NAME` reference points to."""
    assert ref.startswith("#/$defs/"), ref
    found: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return found


def field_names(model: type[BaseModel]) -> set[str]:
    """The JSON names of a model's fields (aliases where set: EdgeSpec's `from`/`to`)."""
    return {field.alias or name for name, field in model.model_fields.items()}


def test_generation_schema_has_every_field_of_the_models() -> None:
    # A field added to a model and missing from what the LLM is asked for fails here.
    schema = workflow_schema(REGISTRY)
    assert set(schema["properties"]) == field_names(WorkflowDefinition)
    edge = resolve(schema, schema["properties"]["edges"]["items"]["$ref"])
    assert set(edge["properties"]) == field_names(EdgeSpec) == {"from", "to", "branch", "id"}
    variants = schema["properties"]["nodes"]["items"]["anyOf"]
    assert len(variants) == len(REGISTRY)
    for ref, (name, node_type) in zip(variants, REGISTRY.items(), strict=True):
        node = resolve(schema, ref["$ref"])
        assert set(node["properties"]) == field_names(NodeSpec), name
        assert node["properties"]["type"] == {"enum": [name]}
        config = node["properties"]["config"]
        assert set(config.get("properties", {})) == field_names(node_type.config_model), name
        assert set(config.get("required", [])) == {
            field.alias or key
            for key, field in node_type.config_model.model_fields.items()
            if field.is_required()
        }, name
        retry = resolve(schema, node["properties"]["retry"]["$ref"])
        assert set(retry["properties"]) == field_names(RetryPolicy)
        position = resolve(schema, node["properties"]["position"]["$ref"])
        assert set(position["properties"]) == field_names(Position)
    assert "max_backoff_seconds" in retry["properties"]  # the field the hand-written one lacked


def _schema_nodes(schema: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every sub-schema with its location (keywords whose values are schemas, walked)."""
    if not isinstance(schema, dict):
        return []
    found = [(where, schema)]
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            found += _schema_nodes(sub, f"{where}/{key}/{name}")
    for index, sub in enumerate(schema.get("anyOf", [])):
        found += _schema_nodes(sub, f"{where}/anyOf/{index}")
    for key in ("items", "additionalProperties"):
        found += _schema_nodes(schema.get(key), f"{where}/{key}")
    return found


def test_generation_schema_keeps_to_what_structured_output_accepts() -> None:
    schema = workflow_schema(REGISTRY)
    assert schema["type"] == "object" and "anyOf" not in schema  # the root is an object
    for where, sub in _schema_nodes(schema):
        unsupported = set(sub) - STRUCTURED_OUTPUT_KEYWORDS
        assert not unsupported, f"{where}: {unsupported}"
        if "properties" in sub:
            assert sub["additionalProperties"] is False, where
            assert set(sub.get("required", [])) <= set(sub["properties"]), where
        if "$ref" in sub:
            resolve(schema, sub["$ref"])  # every reference resolves


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda path: path.name)
def test_shipped_examples_conform_to_the_generation_schema(path: Path) -> None:
    # The schema constrains what the LLM may write: it must not refuse a valid workflow.
    definition, _, _ = read_workflow_file(path)
    jsonschema.validate(definition.dump(), workflow_schema(REGISTRY))


def test_answers_holding_unstorable_values_are_sent_back_for_repair() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = {"a": deep}
    cases = [
        (dumps(dict(VALID, metadata=deep)), "metadata.a.a.a", "nested deeper than 64"),
        (dumps(VALID).replace("Summarise text", "Sum\\u0000"), "name", "NUL"),
        # orjson refuses NaN; the stdlib fallback for prose-wrapped answers accepts it.
        ("Here: " + dumps(VALID).replace('"edges"', '"n": NaN, "edges"'), "n", "NaN"),
    ]
    for answer, field, words in cases:
        definition, _, issues = check_answer(answer, REGISTRY)
        assert definition is None
        assert issues[0].field == field and words in issues[0].message, issues
    definition, _, issues = check_answer(dumps(VALID), REGISTRY, max_depth=3)
    assert definition is None and "deeper than 3" in issues[0].message


def test_an_answer_nested_past_the_recursion_limit_is_an_issue_not_a_crash() -> None:
    answer = "Sure: " + '{"a":' * 3000 + "1" + "}" * 3000
    definition, _, issues = check_answer(answer, REGISTRY)
    assert definition is None and "nested" in issues[0].message, issues
