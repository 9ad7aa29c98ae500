"""Every example in examples/ runs and produces its expected outputs (golden fixtures).

Each example file holds a workflow, its inputs and the expected outcome; every
node type talks to a real local server (OpenAI-compatible stub, aiosmtpd,
recording HTTP server, the SQLite file shipped in examples/).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from ductwork.examples import read_workflow_file, resolve_example_references
from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.views import run_view
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.openai_stub import OpenAIStub, RecordedRequest, echo_reply
from tests.support.smtp_server import SmtpTestServer

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))
EXECUTED = [
    p for p in EXAMPLES if "trigger" not in (orjson.loads(p.read_bytes()).get("expected") or {})
]
"""Examples a plain execute runs; the others (`expected.trigger`: a schedule, a webhook, an
approval) are driven through their trigger by tests/test_trigger_examples.py."""


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Every key/value in `expected` is in `actual` (dicts may have more keys)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing in {sorted(actual)}"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(want, got, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


def substitute(value: Any, base: str) -> Any:
    return orjson.loads(orjson.dumps(value).replace(b"${HTTP_BASE}", base.encode()))


def stand_in_model(request: RecordedRequest) -> str:
    """The stub's answers for the examples: the echo, except for the structured
    `triage` schema of 15-structured-triage.json, which gets a JSON classification
    decided by keywords (so either branch of that example can be driven)."""
    response_format = request.response_format or {}
    schema_name = (response_format.get("json_schema") or {}).get("name")
    if schema_name != "triage":
        return echo_reply(request)
    text = request.user_message.lower()
    negative = any(word in text for word in ("broken", "refund", "never arrived"))
    answer = {
        "sentiment": "negative" if negative else "positive",
        "urgency": "high" if "today" in text else "low",
        "topic": "refund" if "refund" in text else "feedback",
    }
    return orjson.dumps(answer).decode()


def settings_for(definition: WorkflowDefinition, settings: Settings) -> Settings:
    """`settings`, with the code node turned on for an example that has one (it is
    off by default: DUCTWORK_CODE_NODE)."""
    if any(node.type == "code" for node in definition.nodes):
        return settings.model_copy(update={"code_node": "enabled"})
    return settings


def test_there_are_enough_examples_covering_every_node_type() -> None:
    types = set()
    for path in EXAMPLES:
        definition, _, _ = read_workflow_file(path)
        types |= {node.type for node in definition.nodes}
    assert len(EXAMPLES) >= 7
    assert types >= {
        "start",
        "end",
        "ai-processor",
        "email",
        "data-source",
        "webhook",
        "filter",
        "transformer",
        "condition",
        "delay",
        "wait",
        "loop",
        "merge",
        "sub-workflow",
        "code",
    }


@pytest.mark.parametrize("path", EXECUTED, ids=[p.stem for p in EXECUTED])
async def test_example(
    path: Path,
    full_settings: Settings,
    http_server: RecordingHttpServer,
    smtp: SmtpTestServer,
    llm: OpenAIStub,
) -> None:
    definition, inputs, expected = read_workflow_file(path)
    llm.reply = stand_in_model
    http_server.script("/flaky", Reply(status=503), Reply(status=503), Reply(body={"ok": True}))
    http_server.script("/broken", Reply(status=500, body="boom"))
    http_server.script(
        "/products",
        Reply(
            body={
                "products": [
                    {"name": "Mug", "price": 8},
                    {"name": "Kettle", "price": 15},
                    {"name": "Toaster", "price": 35},
                ]
            }
        ),
    )
    inputs = substitute(inputs, http_server.base_url)
    app = build(settings_for(definition, full_settings))
    await app.start()
    try:
        # A sub-workflow naming `example:<name>` calls that example, saved here first.
        definition = await resolve_example_references(app, definition, EXAMPLES_DIR)
        started = time.perf_counter()
        run = await app.execute_definition(definition, inputs, wait=True, wait_seconds=20)
        took = time.perf_counter() - started
    finally:
        await app.close()
    view = run_view(run)
    checks = {k: v for k, v in expected.items() if k in ("status", "result", "node_states")}
    assert_subset(checks, view)
    if "min_seconds" in expected:
        assert took >= expected["min_seconds"]
    for want in expected.get("emails", []):
        sent = [m for m in smtp.messages if m.message["Subject"] == want["subject"]]
        assert sent, f"no email with subject {want['subject']!r}"
        assert sent[0].rcpt_tos == want["to"]
        assert want["body_contains"] in sent[0].message.get_body().get_content()


async def test_examples_load_into_a_server(full_settings: Settings) -> None:
    from ductwork.examples import load_examples

    # The signed webhook example needs its signing secret to be saved.
    secrets = {"GITHUB_WEBHOOK_SECRET": SecretStr("example-secret")}
    app = build(full_settings.model_copy(update={"secrets": secrets}))
    await app.start()
    try:
        first = await load_examples(app)
        again = await load_examples(app)
        names = {w.definition.name for w in await app.list_workflows()}
    finally:
        await app.close()
    assert len(first) == len(EXAMPLES) and again == []
    assert "Hello AI" in names


async def test_an_example_that_cannot_be_saved_yet_is_skipped(
    full_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from ductwork.examples import load_examples

    app = build(full_settings)  # no GITHUB_WEBHOOK_SECRET anywhere
    await app.start()
    try:
        with caplog.at_level("WARNING", logger="ductwork.examples"):
            loaded = await load_examples(app)
    finally:
        await app.close()
    assert "GitHub push summary" not in loaded
    assert len(loaded) == len(EXAMPLES) - 1
    assert "12-signed-github-webhook.json not loaded" in caplog.text
    assert "GITHUB_WEBHOOK_SECRET" in caplog.text


def example_ids(workflows: list[Any]) -> dict[str, str]:
    return {w.definition.name: w.id for w in workflows}


def called_id(workflow: Any) -> Any:
    """The workflow id the (first) sub-workflow node of a saved workflow calls."""
    nodes = [n for n in workflow.definition.nodes if n.type == "sub-workflow"]
    return nodes[0].config["workflow_id"]


async def test_an_example_is_saved_after_the_example_it_calls(
    full_settings: Settings, tmp_path: Path
) -> None:
    from ductwork.examples import load_examples

    folder = tmp_path / "examples"
    folder.mkdir()
    # The caller sorts first: the example it calls must still be saved before it.
    (folder / "a-caller.json").write_bytes((EXAMPLES_DIR / "17-ticket-summary.json").read_bytes())
    (folder / "b-called.json").write_bytes((EXAMPLES_DIR / "16-shared-summary.json").read_bytes())
    app = build(full_settings)
    await app.start()
    try:
        loaded = await load_examples(app, folder)
        workflows = await app.list_workflows()
        caller = next(w for w in workflows if w.definition.name == "Summarise a support ticket")
        run, _ = await app.execute(
            caller.id, {"ticket": {"id": "T-1", "subject": "Hi", "body": "Hello"}}, wait=True
        )
    finally:
        await app.close()
    assert loaded == ["Summarise text", "Summarise a support ticket"]
    assert called_id(caller) == example_ids(workflows)["Summarise text"]
    assert run_view(run)["result"] == {
        "ticket": "T-1",
        "summary": "Echo: Summarise in one sentence: Hi. Hello",
    }


async def test_an_example_calling_a_missing_example_is_skipped_with_a_warning(
    full_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ductwork.examples import load_examples

    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "17-ticket-summary.json").write_bytes(
        (EXAMPLES_DIR / "17-ticket-summary.json").read_bytes()
    )
    (folder / "01-hello-ai.json").write_bytes((EXAMPLES_DIR / "01-hello-ai.json").read_bytes())
    app = build(full_settings)
    await app.start()
    try:
        with caplog.at_level("WARNING", logger="ductwork.examples"):
            loaded = await load_examples(app, folder)
    finally:
        await app.close()
    assert loaded == ["Hello AI"]
    assert "17-ticket-summary.json not loaded: it calls example:Summarise text" in caplog.text


async def test_loaded_examples_call_the_saved_shared_workflow_and_keep_the_code_node(
    full_settings: Settings,
) -> None:
    from ductwork.examples import load_examples

    assert full_settings.code_node == "disabled"  # saving a code node is allowed anyway
    app = build(full_settings)
    await app.start()
    try:
        await load_examples(app)
        workflows = await app.list_workflows(limit=1000)
    finally:
        await app.close()
    ids = example_ids(workflows)
    by_name = {w.definition.name: w for w in workflows}
    for caller in ("Summarise a support ticket", "Release digest"):
        assert called_id(by_name[caller]) == ids["Summarise text"]
    assert "Order statistics" in ids


async def test_the_triage_example_thanks_a_happy_customer(
    full_settings: Settings, llm: OpenAIStub, smtp: SmtpTestServer
) -> None:
    definition, inputs, _ = read_workflow_file(EXAMPLES_DIR / "15-structured-triage.json")
    llm.reply = stand_in_model
    app = build(full_settings)
    await app.start()
    try:
        run = await app.execute_definition(
            definition, {**inputs, "message": "Lovely kettle, thank you"}, wait=True
        )
    finally:
        await app.close()
    view = run_view(run)
    assert_subset(
        {
            "status": "success",
            "result": {"action": "thanked", "urgency": "low", "topic": "feedback"},
            "node_states": {
                "is_negative": {"branch": "false"},
                "escalate": {"status": "skipped"},
                "thank": {"status": "completed"},
            },
        },
        view,
    )
    assert smtp.messages == []


def test_ductwork_run_runs_an_example_that_calls_another(tmp_path: Path, llm: OpenAIStub) -> None:
    from tests.test_cli import cli_env, ductwork

    path = EXAMPLES_DIR / "17-ticket-summary.json"
    _, _, expected = read_workflow_file(path)
    env = cli_env(
        tmp_path / "data",
        tmp_path / "tmp",
        DUCTWORK_LLM_BASE_URL=llm.base_url,
        DUCTWORK_LLM_API_KEY="test-key",
    )
    result = ductwork(["run", str(path), "--json"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert orjson.loads(result.stdout)["result"] == expected["result"]
