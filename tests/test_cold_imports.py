"""A fresh process pays only for what its workflows use (issue 12, cold start).

`ductwork run` of a plain workflow must not import the LLM SDK, the MongoDB or Redis
drivers, Prometheus, the ORM, the HTTP client... each one costs tens to hundreds of
milliseconds of every cold start. No timing here: the guard is which modules a real
run leaves in `sys.modules`, so a new eager import of a heavy package fails it.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ductwork import startup
from ductwork.cli import cli
from ductwork.clients import llm
from ductwork.nodes.ai_processor import AiProcessorNode
from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType
from ductwork.nodes.registry import REGISTRY
from ductwork.security.crypto import KeyRing, SecretKeyError
from tests.support.bench_workflows import THREE_NODE
from tests.support.engine import definition, embedded

HEAVY = (
    "openai",
    "pymongo",
    "motor",
    "redis",
    "asyncpg",  # a SQLite store has no use for PostgreSQL's driver
    "taskiq",
    "prometheus_client",
    "jsonschema",
    "sqlglot",
    "email_validator",
    "aiosmtplib",
    "httpx",
    "httpcore",
    "limits",
    "argon2",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "fastapi",
    "starlette",
    "uvicorn",
    "cryptography",
    "ductwork.clients.mail_message",  # building mail: the email package's policies
    "html.parser",
    "rich.live",  # the live view is for a terminal; the test's run prints JSON
    "rich.spinner",
    # Node types the workflow does not use (the registry imports each on first use).
    "ductwork.nodes.ai_processor",
    "ductwork.nodes.email",
    "ductwork.nodes.data_source",
    "ductwork.nodes.webhook",
    "ductwork.nodes.code",
    "ductwork.nodes.wait",
)
"""Packages and modules a `ductwork run` of start -> transformer -> end has no use for."""

DEFERRED = (
    "ductwork.triggers.spec.ScheduleTrigger",
    "ductwork.triggers.spec.WebhookTrigger",
    "ductwork.triggers.spec.HmacAuth",
    "ductwork.security.models.User",
    "ductwork.security.models.ApiKey",
    "ductwork.security.models.StoredCredential",
    "ductwork.security.credentials.CredentialInfo",
    "ductwork.security.credential_types.CredentialData",
    "ductwork.models.Workflow",
    "ductwork.models.RunSummary",
    "ductwork.models.ValidationIssue",
    "ductwork.clients.llm.ChatMessage",
    "ductwork.clients.llm.ChatRequest",
    "ductwork.clients.llm.ChatResponse",
    "ductwork.clients.llm.Usage",
)
"""Models whose validators such a run must not build (pydantic's defer_build)."""


SCRIPT = """
import json, sys
from ductwork.cli import cli
file, names = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["ductwork", "run", file, "--input", "n=1", "--json"]
try:
    cli()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(name for name in names if name in sys.modules)
import gc
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
built = sorted(
    f"{model.__module__}.{model.__qualname__}"
    for model in set(subclasses(sys.modules["pydantic"].BaseModel))
    if model.__dict__.get("__pydantic_complete__")
)
report = {"exit": code, "heavy": heavy, "collecting": gc.isenabled(), "built": built}
sys.stderr.write(json.dumps(report) + "\\n")
"""


def _clean_env(tmp_path: Path) -> dict[str, str]:
    # Nothing configured: no Redis, no MongoDB, no store URL, no LLM key.
    env = {key: value for key, value in os.environ.items() if not key.startswith("DUCTWORK_")}
    env.pop("OPENROUTER_API_KEY", None)
    env["DUCTWORK_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_a_plain_run_imports_no_heavy_package(tmp_path: Path) -> None:
    workflow = tmp_path / "three.json"
    workflow.write_text(json.dumps(THREE_NODE))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(workflow), json.dumps(HEAVY)],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["exit"] == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "success"
    assert report["heavy"] == []
    # The CLI holds garbage collection while it starts (ductwork.startup), never after.
    assert report["collecting"] is True
    # Models such a run never validates keep their validators unbuilt (defer_build).
    assert "ductwork.models.Run" in report["built"]  # (the probe sees built models)
    assert not set(report["built"]) & set(DEFERRED), report["built"]


class _PrepareConfig(NodeConfig):
    pass


class _PreparingNode(NodeType[_PrepareConfig]):
    """Counts `prepare` calls: the engine's cue that a plan using it will run."""

    type_name = "preparing"
    config_model = _PrepareConfig

    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1

    async def run(self, config: _PrepareConfig, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=ctx.input)


async def test_a_plan_prepares_its_node_types_before_running(tmp_path: Path) -> None:
    node = _PreparingNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        assert node.prepared == 0  # starting the process prepares nothing
        run = await app.execute_definition(
            definition(
                [{"id": "start", "type": "start"}, {"id": "p", "type": "preparing"}],
                [("start", "p")],
            ),
            {},
            wait=True,
        )
        assert run.status.value == "success"
    assert node.prepared == 1


def test_the_ai_node_preloads_the_llm_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr("ductwork.nodes.ai_processor.preload_sdk", lambda: started.append(True))
    assert isinstance(REGISTRY["ai-processor"], AiProcessorNode)
    REGISTRY["ai-processor"].prepare()
    assert started == [True]


async def test_sdk_ready_imports_off_the_loop_once() -> None:
    first = llm.preload_sdk()
    await llm.sdk_ready()
    assert first.done() and first.exception() is None
    assert "openai" in sys.modules
    assert llm.preload_sdk() is first  # one import per process


def test_importing_the_cli_or_the_app_leaves_garbage_collection_on() -> None:
    # `ductwork.cli` holds collection while it imports; a program importing it (or the
    # API app, which releases a hold of `serve` in its lifespan) must collect as usual.
    script = (
        "import gc, json, ductwork.api.app; app = gc.isenabled(); import ductwork.cli; "
        "print(json.dumps([app, gc.isenabled()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == [True, True]


def test_a_hold_collects_again_only_where_it_began() -> None:
    assert gc.isenabled()
    try:
        with startup.held():
            assert not gc.isenabled()
            with startup.held():  # inside another hold: leaves it to the outer one
                pass
            assert not gc.isenabled() and startup.is_held()
        assert gc.isenabled() and not startup.is_held()
        gc.disable()  # a program that turned collection off keeps it off
        with startup.held():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


# Fixed keys (base64 of 32 bytes, as Fernet makes them): parameters must be the same
# in every pytest-xdist worker, so none is generated at collection.
_A_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "key",
    [
        _A_KEY,
        _A_KEY[:-1],
        _A_KEY + "A",
        "abc",
        " " * 44,
        base64.urlsafe_b64encode(b"x" * 31).decode(),
        base64.urlsafe_b64encode(b"x" * 33).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # '+' and '/': Fernet discards them too
        "!" + _A_KEY,
    ],
)
def test_keys_are_checked_without_cryptography_as_fernet_checks_them(key: str) -> None:
    # KeyRing checks keys at start without importing `cryptography`: it must refuse
    # exactly what Fernet would refuse when the first credential is encrypted.
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode("ascii"))
    except ValueError:
        fernet_accepts = False
    else:
        fernet_accepts = True
    try:
        KeyRing([key])
    except SecretKeyError:
        ring_accepts = False
    else:
        ring_accepts = True
    assert ring_accepts == fernet_accepts
    if ring_accepts:
        assert KeyRing([key]).decrypt(KeyRing([key]).encrypt(b"secret")) == b"secret"


def test_the_registry_names_each_node_type_by_its_own_type_name() -> None:
    listed = list(REGISTRY)
    assert [name for name, _ in REGISTRY.items()] == listed  # one order, that of the table
    for name in listed:
        assert REGISTRY[name].type_name == name
        assert REGISTRY[name] is REGISTRY[name]  # one instance a type
    assert "no-such-type" not in REGISTRY and REGISTRY.get("no-such-type") is None


SERVE_SCRIPT = """
import json, sys
from ductwork.api.app import create_app
from fastapi.testclient import TestClient
headers = {"Authorization": "Bearer " + "k" * 40}
with TestClient(create_app(), base_url="http://127.0.0.1", headers=headers) as client:
    assert client.get("/health").status_code == 200
    before = sorted(name for name in ("prometheus_client",) if name in sys.modules)
    metrics = client.get("/metrics")
print(json.dumps({"before": before, "metrics": metrics.status_code, "text": metrics.text}))
"""


def test_a_server_loads_prometheus_client_on_the_first_scrape(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    env["DUCTWORK_ADMIN_API_KEY"] = "k" * 40
    done = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["before"] == []
    assert report["metrics"] == 200
    assert "ductwork_" in report["text"]  # the collector was registered before the scrape


def test_a_refused_serve_leaves_garbage_collection_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `serve` holds collection until its app has started; when it never starts (refused
    # settings), the hold must not outlive the command (here: this test process).
    # `serve --host` exports DUCTWORK_HOST for uvicorn's app factory: restored afterwards
    # (left at 0.0.0.0, it made later tests in this process refuse DUCTWORK_AUTH=disabled).
    monkeypatch.setenv("DUCTWORK_HOST", "127.0.0.1")
    result = CliRunner().invoke(
        cli,
        ["serve", "--host", "0.0.0.0"],
        env={"DUCTWORK_DATA_DIR": str(tmp_path), "DUCTWORK_AUTH": "disabled"},
    )
    assert result.exit_code == 2, result.output
    try:
        assert gc.isenabled() and not startup.is_held()
    finally:
        startup.release()
        gc.enable()


@pytest.mark.parametrize(("workers", "collecting"), [(1, False), (2, True)])
def test_serve_supervising_workers_collects_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, collecting: bool
) -> None:
    # With --workers N, uvicorn starts the app in N child processes: the hold taken for
    # the start-up was never released in this one, which supervises them for good.
    import uvicorn

    seen: list[bool] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: seen.append(gc.isenabled()))
    monkeypatch.setenv("DUCTWORK_HOST", "127.0.0.1")
    try:
        result = CliRunner().invoke(
            cli,
            ["serve", "--port", "1", "--workers", str(workers)],
            env={
                "DUCTWORK_DATA_DIR": str(tmp_path),
                "DUCTWORK_ADMIN_API_KEY": "dw_" + "a" * 40,
                "DUCTWORK_REDIS_URL": "redis://127.0.0.1:6379/0",
                "DUCTWORK_STORE_URL": "postgresql://postgres@127.0.0.1:5432/test",
            },
        )
        assert result.exit_code == 0, result.output
        # One process: its app's lifespan releases the hold once started (not here).
        assert seen == [collecting]
        assert gc.isenabled() and not startup.is_held()  # and nothing outlives the command
    finally:
        startup.release()
        gc.enable()


def test_the_cli_commands_annotations_are_objects_not_strings() -> None:
    # typer builds every command from its annotations at each start; string annotations
    # (`from __future__ import annotations`) made it eval() each twice (~15 ms a start).
    typers = [cli, *(group.typer_instance for group in cli.registered_groups)]
    callbacks = [
        command.callback
        for app in typers
        if app is not None
        for command in app.registered_commands
        if command.callback is not None
    ]
    assert len(callbacks) > 10
    stringly = [
        f"{callback.__name__}.{name}"
        for callback in callbacks
        for name, annotation in callback.__annotations__.items()
        if isinstance(annotation, str)
    ]
    assert stringly == []
