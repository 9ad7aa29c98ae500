"""The CLI as a user runs it (a subprocess): `run` keeps to its own run, `serve --workers`.

`ductwork run FILE` must never touch a server's runs: by default its run lives
in a temporary store, and whatever the store it advances only its own run.
`serve --workers N` is refused where N processes could not share the work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ductwork.cli import cli, workers_problem
from ductwork.models import Checkpoint, Run, RunStatus, WorkflowDefinition, utcnow
from ductwork.settings import Settings
from ductwork.store.factory import create_store
from tests.support.processes import BIN
from tests.support.smtp_server import free_port

CLI_WAIT = 120.0
"""Seconds a CLI command gets before the test calls it hung (boot is slow on a loaded box)."""

SERVER_RUN = WorkflowDefinition.model_validate(
    {
        "name": "a server's run",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "end", "type": "end", "config": {"output": "the server ran me"}},
        ],
        "edges": [{"from": "start", "to": "end"}],
    }
)

# A delay long enough to park: the run finishes only if the command sweeps its own run.
PARKING_FILE = {
    "workflow": {
        "name": "park, then finish",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 0.3}},
            {"id": "end", "type": "end", "config": {"output": "done for {{ who }}"}},
        ],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
    },
    "inputs": {"who": "Ann"},
}


def cli_env(data_dir: Path, tmp_root: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with a server's data dir and nothing else configured."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DUCTWORK_STORE_URL", "DUCTWORK_REDIS_URL")
    }
    tmp_root.mkdir(exist_ok=True)
    env.update(
        DUCTWORK_DATA_DIR=str(data_dir),
        DUCTWORK_DURABLE_DELAY_THRESHOLD_SECONDS="0.1",
        DUCTWORK_SWEEP_INTERVAL_SECONDS="0.1",
        TMPDIR=str(tmp_root),
        **extra,
    )
    return env


def ductwork(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the `ductwork` command; a command still going after CLI_WAIT fails the test."""
    process = subprocess.Popen(
        [str(BIN / "ductwork"), *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=CLI_WAIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"ductwork {' '.join(args)} did not end:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


async def _put_server_runs(url: str) -> list[str]:
    """A server's backlog, as the sweep would find it due: queued long ago, and parked."""
    store = create_store(url)
    await store.start()
    try:
        ids = []
        for name in ("queued", "parked"):
            run = await store.create_run(
                Run(
                    execution_id=f"server-{name}",
                    workflow_id="server-workflow",
                    workflow_version=1,
                    definition=SERVER_RUN,
                    created_at=utcnow() - timedelta(minutes=5),
                )
            )
            ids.append(run.execution_id)
        await store.checkpoint(
            "server-parked",
            Checkpoint(
                run_fields={"status": RunStatus.WAITING, "wake_at": utcnow() - timedelta(minutes=1)}
            ),
        )
        return ids
    finally:
        await store.close()


async def _read_runs(url: str, ids: list[str]) -> dict[str, Run | None]:
    store = create_store(url)
    await store.start()
    try:
        return {execution_id: await store.get_run(execution_id) for execution_id in ids}
    finally:
        await store.close()


def put_server_runs(url: str) -> list[str]:
    return asyncio.run(_put_server_runs(url))


def read_runs(url: str, ids: list[str]) -> dict[str, Run | None]:
    return asyncio.run(_read_runs(url, ids))


def assert_untouched(runs: dict[str, Run | None]) -> None:
    queued, parked = runs["server-queued"], runs["server-parked"]
    assert queued is not None and parked is not None
    assert (queued.status, parked.status) == (RunStatus.QUEUED, RunStatus.WAITING)
    for run in (queued, parked):
        assert run.events == [] and run.node_states == {}, run.execution_id
        assert run.lease_owner is None and run.start_time is None


def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "park.json"
    path.write_bytes(orjson.dumps(PARKING_FILE))
    return path


def test_run_leaves_the_servers_runs_in_the_data_dir_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server_store = Settings(data_dir=data_dir).resolved_store_url
    data_dir.mkdir()
    server_runs = put_server_runs(server_store)
    scratch = tmp_path / "tmp"

    result = ductwork(["run", str(workflow_file(tmp_path)), "--json"], cli_env(data_dir, scratch))

    assert result.returncode == 0, result.stdout + result.stderr
    own: dict[str, Any] = orjson.loads(result.stdout)
    # Its own run parked on the delay and was resumed by the command's own sweep.
    assert own["status"] == "success" and own["result"] == "done for Ann"
    runs = read_runs(server_store, [*server_runs, own["execution_id"]])
    assert_untouched(runs)
    # Its run was never in the server's store, and its temporary store is gone.
    assert runs[own["execution_id"]] is None
    assert list(scratch.iterdir()) == []


def test_run_keeps_its_run_in_an_unsynced_scratch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The temporary store is deleted when the command ends: syncing it to disk (a new
    # file's switch to WAL, the schema) only made a cold run slower (cli.run).
    import ductwork.runtime

    built: list[str] = []
    real_build = ductwork.runtime.build

    def build(settings: Settings, **kwargs: Any) -> Any:
        built.append(settings.resolved_store_url)
        return real_build(settings, **kwargs)

    monkeypatch.setattr(ductwork.runtime, "build", build)
    for key in ("DUCTWORK_STORE_URL", "DUCTWORK_REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DUCTWORK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    path = tmp_path / "three.json"
    path.write_bytes(orjson.dumps(SERVER_RUN.dump()))

    result = CliRunner().invoke(cli, ["run", str(path), "--json"])

    assert result.exit_code == 0, result.output
    assert len(built) == 1 and built[0].startswith(f"sqlite:///{tmp_path}/ductwork-run-")
    assert built[0].endswith("/run.db?synchronous=off")
    assert not any(tmp_path.glob("ductwork-run-*"))  # and it is gone


def test_run_with_a_store_url_keeps_its_run_there_and_adopts_nothing(tmp_path: Path) -> None:
    chosen = f"sqlite:///{tmp_path / 'chosen.db'}"
    server_runs = put_server_runs(chosen)

    result = ductwork(
        ["run", str(workflow_file(tmp_path)), "--json", "--store-url", chosen],
        cli_env(tmp_path / "data", tmp_path / "tmp"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    own_id = orjson.loads(result.stdout)["execution_id"]
    runs = read_runs(chosen, [*server_runs, own_id])
    assert_untouched(runs)
    own = runs[own_id]
    assert own is not None and own.status is RunStatus.SUCCESS


def test_run_uses_ductwork_store_url_when_it_is_set(tmp_path: Path) -> None:
    chosen = f"sqlite:///{tmp_path / 'from-env.db'}"
    result = ductwork(
        ["run", str(workflow_file(tmp_path)), "--json"],
        cli_env(tmp_path / "data", tmp_path / "tmp", DUCTWORK_STORE_URL=chosen),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    own_id = orjson.loads(result.stdout)["execution_id"]
    own = read_runs(chosen, [own_id])[own_id]
    assert own is not None and own.status is RunStatus.SUCCESS


def test_run_exits_non_zero_when_its_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "fails.json"
    path.write_bytes(
        orjson.dumps(
            {
                "name": "fails",
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "end", "type": "end", "config": {"output": "{{ 1 // 0 }}"}},
                ],
                "edges": [{"from": "start", "to": "end"}],
            }
        )
    )
    result = ductwork(["run", str(path)], cli_env(tmp_path / "data", tmp_path / "tmp"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Status: error" in result.stdout


@pytest.mark.parametrize(
    "extra",
    [{}, {"DUCTWORK_REDIS_URL": "redis://127.0.0.1:1/0"}],
    ids=["no-redis", "redis-but-sqlite"],
)
def test_serve_with_several_workers_on_sqlite_is_refused(
    tmp_path: Path, extra: dict[str, str]
) -> None:
    env = cli_env(tmp_path / "data", tmp_path / "tmp", **extra)
    result = ductwork(["serve", "--workers", "3", "--port", str(free_port())], env)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "--workers 3 needs a shared queue and a shared store" in message
    assert "PostgreSQL or MongoDB" in message and "--workers 1" in message
    assert ("own queue and sweep" in message) == ("DUCTWORK_REDIS_URL" not in extra)
    assert "a SQLite store is one file" in message


def test_which_settings_may_serve_with_several_workers(tmp_path: Path) -> None:
    sqlite = Settings(data_dir=tmp_path)
    shared = Settings(
        data_dir=tmp_path,
        store_url="postgresql://db.example/ductwork",
        redis_url="redis://cache.example/0",
    )
    assert workers_problem(sqlite, 1) is None
    assert workers_problem(shared, 4) is None
    assert (
        workers_problem(
            Settings(
                data_dir=tmp_path, store_url="mongodb://db.example/ductwork", redis_url="r://x"
            ),
            2,
        )
        is None
    )
    assert workers_problem(sqlite, 2) is not None
    assert workers_problem(Settings(data_dir=tmp_path, redis_url="redis://x/0"), 2) is not None
    no_queue = Settings(data_dir=tmp_path, store_url="postgresql://db.example/ductwork")
    assert workers_problem(no_queue, 2) is not None


SHORT_KEY_PROBLEM = (
    "DUCTWORK_ADMIN_API_KEY: must be at least 32 characters (got 5); generate one with "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)


@pytest.mark.parametrize(
    "command",
    [["run", "park.json"], ["serve", "--port", "0"], ["worker"], ["prune", "--dry-run"]],
    ids=["run", "serve", "worker", "prune"],
)
def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path: Path, command: list[str]) -> None:
    workflow_file(tmp_path)
    env = cli_env(
        tmp_path / "data",
        tmp_path / "tmp",
        DUCTWORK_ADMIN_API_KEY="short",
        DUCTWORK_REDIS_URL="redis://127.0.0.1:6379/0",  # `worker` asks for it first
    )
    args = [str(tmp_path / part) if part.endswith(".json") else part for part in command]
    result = ductwork(args, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [SHORT_KEY_PROBLEM]


def test_each_bad_setting_gets_its_own_line(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path / "data",
        tmp_path / "tmp",
        DUCTWORK_PORT="eighty",
        DUCTWORK_LLM_PRICES='{"some/model": {"input": -1, "output": 2}}',
    )
    result = ductwork(["serve"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "DUCTWORK_PORT: Input should be a valid integer, unable to parse string as an integer",
        "DUCTWORK_LLM_PRICES: some/model.input: Input should be greater than or equal to 0",
    ]


def test_a_setting_that_is_not_json_names_its_variable(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", tmp_path / "tmp", DUCTWORK_CORS_ORIGINS="[1")
    result = ductwork(["serve"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "DUCTWORK_CORS_ORIGINS: not valid JSON: Expecting ',' delimiter: line 1 column 3 (char 2)"
    ]


@pytest.mark.parametrize("status", ["queued", "running", "success", "some-new-status"])
def test_the_live_table_renders_any_run_status(status: str) -> None:
    # A status without a style ("queued", the first frame of a run just started) used to
    # raise MarkupError in Rich's refresh thread, which then showed no more frames.
    from io import StringIO

    from rich.console import Console

    from ductwork.cli import RunProgress

    progress = RunProgress(
        {
            "execution_id": "e1",
            "status": status,
            "definition": {"name": "w", "nodes": [{"id": "a", "type": "start"}]},
        }
    )
    out = StringIO()
    Console(file=out, width=100).print(progress)
    assert status in out.getvalue().splitlines()[-1]
