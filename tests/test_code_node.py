"""The `code` node and its sandboxed worker pool (docs/code-node.md).

Real worker processes throughout. One pool serves the module's pool-level tests (they
share its event loop); each failure test checks that the pool serves the next call.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ductwork.cache.memory import MemoryCache
from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.llm import LLMClient
from ductwork.clients.mail import Mailer
from ductwork.clients.sql import SqlConnections
from ductwork.code.errors import CodeError
from ductwork.code.pool import CodePool
from ductwork.code.worker import MAX_STDOUT_CHARS
from ductwork.engine.graph import WorkflowInvalid, build_plan
from ductwork.engine.limits import WorkflowLimits
from ductwork.engine.references import credential_names
from ductwork.models import NodeStatus, RunStatus, WorkflowDefinition
from ductwork.nodes.base import CodeOutcome, NodeError, NodeServices
from ductwork.nodes.code import MAX_LOG_LINES, CodeConfig, CodeNode
from ductwork.nodes.registry import REGISTRY
from ductwork.security.models import Permission, Role, can
from ductwork.settings import Settings
from tests.support.engine import definition, embedded
from tests.support.live_server import LiveServer, auth_headers
from tests.support.node_context import FakeNodeContext
from tests.support.polling import eventually

SERVER_SECRET = "DUCTWORK_TEST_CODE_SECRET"
"""Set in this process's environment before the pool starts: code must never see it."""

ECHO = "def main(input):\n    return input\n"

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def secret_in_environment() -> Iterator[str]:
    os.environ[SERVER_SECRET] = "hunter2-server-secret"
    try:
        yield SERVER_SECRET
    finally:
        del os.environ[SERVER_SECRET]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(secret_in_environment: str) -> AsyncIterator[CodePool]:
    code_pool = CodePool(size=2, memory_mb=256, max_answer_bytes=1_000_000)
    await code_pool.start()
    try:
        yield code_pool
    finally:
        await code_pool.close()


async def call(pool: CodePool, source: str, seconds: float = 10.0, **arguments: Any) -> Any:
    return (await pool.call(source, arguments, timeout_seconds=seconds)).value


async def still_serves(pool: CodePool) -> None:
    """Both workers answer (a failed one was replaced)."""
    for n in range(pool.size + 1):
        assert await call(pool, ECHO, input=n) == n


# The pool ----------------------------------------------------------------------------------------
@module_loop
async def test_arguments_result_and_stdout(pool: CodePool) -> None:
    source = (
        "def main(input, inputs, outputs):\n"
        "    print('seen', input)\n"
        "    print('second line')\n"
        "    return {'sum': sum(input), 'who': inputs['who'], 'up': outputs['a']}\n"
    )
    outcome = await pool.call(
        source,
        {"input": [1, 2], "inputs": {"who": "ann"}, "outputs": {"a": 1}},
        timeout_seconds=10,
    )
    assert outcome.value == {"sum": 3, "who": "ann", "up": 1}
    assert outcome.stdout == "seen [1, 2]\nsecond line\n"


@module_loop
async def test_calls_beyond_the_workers_queue_and_all_are_served(pool: CodePool) -> None:
    results = await asyncio.gather(*(call(pool, ECHO, input=n) for n in range(3 * pool.size)))
    assert results == list(range(3 * pool.size))


@module_loop
async def test_printed_output_is_bounded(pool: CodePool) -> None:
    source = "def main():\n    print('x' * 100_000)\n    return 1\n"
    outcome = await pool.call(source, {}, timeout_seconds=10)
    assert outcome.stdout.startswith("x" * MAX_STDOUT_CHARS + "\n... (")
    assert outcome.stdout.endswith(f"({100_001 - MAX_STDOUT_CHARS} more characters not kept)")


@module_loop
async def test_an_infinite_loop_times_out_and_the_pool_recovers(pool: CodePool) -> None:
    with pytest.raises(NodeError, match=r"timed out after 0\.5 s"):
        await call(pool, "def main():\n    while True:\n        pass\n", seconds=0.5)
    await still_serves(pool)


@module_loop
async def test_a_cancelled_call_kills_its_worker(pool: CodePool) -> None:
    """A run cancelled (or a node timed out by the engine) must not leave code spinning."""
    spin = asyncio.create_task(call(pool, "def main():\n    while True:\n        pass\n"))
    await eventually(lambda: len(pool._busy) == 1, what="the call reached a worker")
    [worker] = pool._busy
    spin.cancel()
    with pytest.raises(asyncio.CancelledError):
        await spin
    await eventually(lambda: worker.process.returncode is not None, what="the worker killed")
    await still_serves(pool)


@pytest.mark.parametrize(
    "source",
    [
        "def main():\n    return 'x' * 10**10\n",
        "def main():\n    grow = []\n    while True:\n        grow.append('x' * 10**6)\n",
    ],
    ids=["one-huge-string", "growing-list"],
)
@module_loop
async def test_a_memory_blow_up_fails_and_the_pool_recovers(pool: CodePool, source: str) -> None:
    with pytest.raises(NodeError, match="out of memory"):
        await call(pool, source)
    await still_serves(pool)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import os\ndef main():\n    os._exit(3)\n", "exit code 3"),
        (
            "import os\ndef main():\n    os.kill(os.getpid(), 11)  # SIGSEGV\n",
            "killed by SIGSEGV",
        ),
    ],
    ids=["exit", "segfault"],
)
@module_loop
async def test_a_crash_fails_the_call_and_the_pool_recovers(
    pool: CodePool, source: str, reason: str
) -> None:
    with pytest.raises(NodeError, match=f"worker process died \\({reason}\\)"):
        await call(pool, source)
    await still_serves(pool)


@module_loop
async def test_code_cannot_read_the_servers_environment(
    pool: CodePool, secret_in_environment: str
) -> None:
    assert os.environ[secret_in_environment]
    environment = await call(pool, "import os\ndef main():\n    return dict(os.environ)\n")
    assert secret_in_environment not in environment
    assert not any(name.startswith("DUCTWORK") for name in environment)
    assert "hunter2-server-secret" not in str(environment)
    if os.geteuid() != 0:
        pytest.skip("workers drop privileges only when the server runs as root")
    # Run as root, workers are `nobody`: the server's /proc files are out of reach too.
    peek = "import os\ndef main():\n    return open(f'/proc/{os.getppid()}/environ').read()\n"
    with pytest.raises(CodeError, match="PermissionError"):
        await call(pool, peek)
    assert await call(pool, "import os\ndef main():\n    return os.getuid()\n") != 0


@module_loop
async def test_a_result_that_is_not_json_is_a_clear_error(pool: CodePool) -> None:
    with pytest.raises(CodeError, match=r"main returned a value that is not JSON: .*set"):
        await call(pool, "def main():\n    print('before')\n    return {1, 2}\n")
    with pytest.raises(CodeError, match="not JSON: Out of range float"):
        await call(pool, "def main():\n    return float('nan')\n")
    with pytest.raises(NodeError, match="arguments are not JSON"):
        await call(pool, ECHO, input=2**70)
    await still_serves(pool)


@module_loop
async def test_an_exception_carries_the_users_traceback(pool: CodePool) -> None:
    source = "def main(input):\n    total = 0\n    raise ValueError(f'bad input {input}')\n"
    with pytest.raises(CodeError) as failed:
        await call(pool, source, input=7)
    message = str(failed.value)
    assert 'File "<code>", line 3, in main' in message
    assert "raise ValueError(f'bad input {input}')" in message
    assert message.endswith("ValueError: bad input 7")
    assert "worker" not in message  # the worker's own frames are left out


@module_loop
async def test_no_subprocesses_and_no_file_writes(pool: CodePool) -> None:
    with pytest.raises(CodeError, match=r"BlockingIOError|PermissionError"):
        await call(pool, "import os\ndef main():\n    return os.fork()\n")
    with pytest.raises(CodeError, match="File too large"):
        await call(pool, "def main():\n    with open('out.txt', 'w') as f:\n        f.write('x')\n")


FORGE = (
    "import json, os, sys\n"
    "def main(input):\n"
    "    frame = {'ok': True, 'value': 'forged', 'stdout': ''}\n"
    "    if input == 'with-nonce':  # read from the worker's own frame: it can be\n"
    "        frame['nonce'] = sys._getframe(1).f_locals['request']['nonce']\n"
    "    body = json.dumps(frame).encode()\n"
    "    os.write(4, len(body).to_bytes(4, 'big') + body)  # the worker's answer pipe\n"
    "    return 'mine'\n"
)


@module_loop
async def test_an_answer_the_code_wrote_itself_fails_the_call(pool: CodePool) -> None:
    with pytest.raises(NodeError, match="wrote to its worker's protocol pipe"):
        await call(pool, FORGE, input="no-nonce")
    await still_serves(pool)


@module_loop
async def test_a_worker_never_serves_two_workflows(secret_in_environment: str) -> None:
    single = CodePool(size=1, memory_mb=256, max_answer_bytes=1_000_000)

    async def run(workflow_id: str, source: str, value: Any) -> Any:
        outcome = await single.call(
            source, {"input": value}, timeout_seconds=10, workflow_id=workflow_id
        )
        return outcome.value

    try:
        # The code of `a` leaves an answer in the pipe for the next call...
        assert await run("a", FORGE, "with-nonce") == "forged"  # its own output: its business
        # ...which another workflow never reads: it gets a fresh worker.
        assert await run("b", ECHO, 1) == 1
        # Nor does it see what `a` changed in its interpreter.
        await run("a", "import json\ndef main():\n    json.planted = 1\n", None)
        seen = "import json\ndef main():\n    return hasattr(json, 'planted')\n"
        assert await run("b", seen, None) is False
        # The same workflow keeps its warm worker; a stale answer left behind fails it.
        assert await run("b", FORGE, "with-nonce") == "forged"
        with pytest.raises(NodeError, match="wrote to its worker's protocol pipe"):
            await run("b", ECHO, 2)
        assert await run("b", ECHO, 3) == 3
    finally:
        await single.close()


# The node in a workflow --------------------------------------------------------------------------
CODE_THEN_CONDITION = definition(
    [
        {"id": "start", "type": "start"},
        {
            "id": "score",
            "type": "code",
            "config": {
                "code": (
                    "def main(input, inputs, outputs):\n"
                    "    # f-strings use {{ }}: the source is not a template\n"
                    "    print(f'{{scoring}} {inputs[\"name\"]}')\n"
                    "    return {'score': len(inputs['name']) * 10}\n"
                )
            },
        },
        {"id": "check", "type": "condition", "config": {"condition": "input.score > 20"}},
        {"id": "high", "type": "transformer", "config": {"transform_type": "map"}},
        {"id": "low", "type": "transformer", "config": {"transform_type": "map"}},
    ],
    [
        ("start", "score"),
        ("score", "check"),
        {"from": "check", "to": "high", "branch": "true"},
        {"from": "check", "to": "low", "branch": "false"},
    ],
)


async def test_code_feeds_a_condition_in_a_run(tmp_path: Path) -> None:
    async with embedded(tmp_path, code_node="enabled", code_pool_size=1) as app:
        run = await app.execute_definition(CODE_THEN_CONDITION, {"name": "alice"})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["score"].output == {"score": 50}
    assert run.node_states["high"].status is NodeStatus.COMPLETED
    assert run.node_states["low"].status is NodeStatus.SKIPPED
    logs = [e.data["message"] for e in run.events if e.type == "log" and e.node_id == "score"]
    assert logs == ["{scoring} alice"]


CODE_IN_A_LOOP = definition(
    [
        {"id": "start", "type": "start"},
        {"id": "loop", "type": "loop", "config": {"items": "{{ input.rows }}"}},
        {
            "id": "first",
            "type": "transformer",
            "parent": "loop",
            "config": {"transform_type": "map"},
        },
        {
            "id": "py",
            "type": "code",
            "parent": "loop",
            "config": {
                "code": (
                    "def main(input, outputs):\n"
                    "    return {'double': input * 2, 'seen': sorted(outputs),"
                    " 'tag': outputs['start']['tag']}\n"
                )
            },
        },
    ],
    [("start", "loop"), ("first", "py")],
)


async def test_a_code_node_runs_in_a_loop_body_and_sees_its_items_outputs(
    tmp_path: Path,
) -> None:
    # A loop body's `outputs` reaches the code as a plain JSON object: the body's own
    # outputs over the outer graph's.
    async with embedded(tmp_path, code_node="enabled", code_pool_size=1) as app:
        run = await app.execute_definition(CODE_IN_A_LOOP, {"rows": [1, 2], "tag": "t"})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["loop"].output == [
        {"double": n * 2, "seen": ["first", "start"], "tag": "t"} for n in (1, 2)
    ]


async def test_a_disabled_server_fails_the_node_saying_how_to_enable_it(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        assert app.components.services.code is None
        run = await app.execute_definition(CODE_THEN_CONDITION, {"name": "alice"})
    assert run.status is RunStatus.ERROR
    error = run.node_states["score"].error or ""
    assert "DUCTWORK_CODE_NODE=enabled" in error


def code_workflow(code: str, **config: Any) -> WorkflowDefinition:
    return definition(
        [
            {"id": "start", "type": "start"},
            {"id": "py", "type": "code", "config": {"code": code, **config}},
        ],
        [("start", "py")],
    )


@pytest.mark.parametrize(
    ("code", "config", "field", "message"),
    [
        ("def main(:\n    pass\n", {}, "config.code", "line 1: "),
        ("x = 1\n\ndef helper():\n    return (\n", {}, "config.code", "line 4: "),
        ("def run(input):\n    return input\n", {}, "config.code", "defines no top-level `main`"),
        (ECHO, {"timeout_seconds": 60}, "config.timeout_seconds", "DUCTWORK_CODE_TIMEOUT_SECONDS"),
        (ECHO, {"timeout": 5}, "config.timeout", "Extra inputs are not permitted"),
    ],
    ids=["syntax", "syntax-line-4", "no-main", "timeout-over-setting", "unknown-field"],
)
def test_bad_code_config_is_refused_at_save_time(
    code: str, config: dict[str, Any], field: str, message: str
) -> None:
    limits = WorkflowLimits.from_settings(Settings(code_timeout_seconds=10))
    with pytest.raises(WorkflowInvalid) as invalid:
        build_plan(code_workflow(code, **config), REGISTRY, limits)
    [issue] = invalid.value.issues
    assert (issue.node_id, issue.field) == ("py", field)
    assert message in issue.message


def test_code_is_never_a_template() -> None:
    source = "def main():\n    return '{{ secrets.KEY }} {% raw %}'\n"
    workflow = code_workflow(source)
    plan = build_plan(workflow, REGISTRY)
    assert plan.nodes["py"].templates == ()
    # Nor does `secrets.KEY` in it make runs load (or saving require) a credential.
    assert credential_names(workflow, REGISTRY) == set()


def test_async_main_is_refused_with_a_reason() -> None:
    with pytest.raises(WorkflowInvalid, match="plain function"):
        build_plan(code_workflow("async def main(input):\n    return input\n"), REGISTRY)


# Who may save code -------------------------------------------------------------------------------
@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(data_dir=tmp_path, code_node="enabled", code_pool_size=1)) as server:
        yield server


def test_only_editors_and_admins_hold_the_permission_to_save_code() -> None:
    """Whoever may save a workflow may run Python on the workers (docs/code-node.md):
    giving `edit` to another role must be a decision, not an accident."""
    assert {role for role in Role if can(role, Permission.EDIT)} == {Role.EDITOR, Role.ADMIN}


def test_only_editors_and_admins_may_save_code(live: LiveServer) -> None:
    workflow = code_workflow(ECHO).dump()
    with live.client() as admin:
        keys = {
            role: admin.post("/auth/keys", json={"name": role, "role": role}).json()["key"]
            for role in ("viewer", "operator", "editor")
        }
        saved = admin.post("/workflows/", json=workflow)
        assert saved.status_code == 201, saved.text
        workflow_id = saved.json()["id"]
    for role in ("viewer", "operator"):
        with httpx.Client(base_url=live.url, timeout=30, headers=auth_headers(keys[role])) as who:
            created = who.post("/workflows/", json=workflow)
            assert created.status_code == 403, created.text
            assert f"{role} may not" in created.json()["detail"]
            assert who.put(f"/workflows/{workflow_id}", json=workflow).status_code == 403
    with httpx.Client(
        base_url=live.url, timeout=30, headers=auth_headers(keys["editor"])
    ) as editor:
        assert editor.post("/workflows/", json=workflow).status_code == 201
        assert editor.put(f"/workflows/{workflow_id}", json=workflow).status_code == 200


# The node on its own (a stand-in runner) ---------------------------------------------------------
class RecordingRunner:
    """A `CodeRunner` that records its calls and prints `lines` lines."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.calls: list[tuple[Mapping[str, Any], float, str]] = []

    async def call(
        self,
        source: str,
        arguments: Mapping[str, Any],
        *,
        timeout_seconds: float,
        workflow_id: str = "",
    ) -> CodeOutcome:
        self.calls.append((arguments, timeout_seconds, workflow_id))
        return CodeOutcome(value="ok", stdout="".join(f"line {n}\n" for n in range(self.lines)))


async def test_the_node_hands_over_inputs_but_never_secrets_and_bounds_its_logs(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, code_node="enabled", code_timeout_seconds=3)
    runner = RecordingRunner(lines=MAX_LOG_LINES + 50)
    services = NodeServices(
        settings=settings,
        cache=MemoryCache(),
        llm=LLMClient(settings),
        mail=Mailer(settings),
        http=GuardedHttpClient(settings),
        sql=SqlConnections(settings),
        code=runner,
    )
    names = {
        "who": "ann",
        "outputs": {"a": 1},
        "run": {"id": "r"},
        "secrets": {"KEY": "s3cret"},
        "input": 5,
    }
    ctx = FakeNodeContext(services=services, input=5, names=names)
    try:
        result = await CodeNode().run(CodeConfig(code=ECHO, timeout_seconds=60), ctx)
    finally:
        await services.http.close()
    assert result.output == "ok"
    [(arguments, timeout, workflow_id)] = runner.calls
    assert arguments == {"input": 5, "inputs": {"who": "ann"}, "outputs": {"a": 1}}
    assert timeout == 3  # the setting caps what the node asks for
    assert workflow_id == ctx.workflow_id  # the pool keeps workers to one workflow
    assert len(ctx.logs) == MAX_LOG_LINES + 1
    assert ctx.logs[-1] == ("info", "... 50 more lines of output not logged")
