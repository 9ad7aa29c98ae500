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

from ductwork.examples import read_workflow_file
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.views import run_view
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.smtp_server import SmtpTestServer

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
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
    }


@pytest.mark.parametrize("path", EXECUTED, ids=[p.stem for p in EXECUTED])
async def test_example(
    path: Path, full_settings: Settings, http_server: RecordingHttpServer, smtp: SmtpTestServer
) -> None:
    definition, inputs, expected = read_workflow_file(path)
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
    app = build(full_settings)
    await app.start()
    try:
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
