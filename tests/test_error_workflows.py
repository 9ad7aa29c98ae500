"""Error workflows: a failed run starts its workflow's `error_workflow_id` exactly once.

Every way a run fails starts it (a node, a run limit, a dead letter, a plan that
cannot run); success, `on_error: continue` and cancel do not. It starts once however
many processes race to start it, also when the process that failed the run died
before it could (the sweep finds the outbox flag), and never from a run an error
workflow started (no loops). Real stores: SQLite, PostgreSQL, MongoDB (SecantusDB).
The scale-out case, with a worker SIGKILLed right after the failing commit, runs
`ductwork worker` processes against PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from ductwork.models import Event, NodeStatus, Run, RunStatus, WorkflowDefinition, utcnow
from ductwork.nodes.registry import REGISTRY
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.store.base import RunQuery
from ductwork.store.factory import create_store
from tests.support.engine import ProbeNode, embedded
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.live_server import LiveServer
from tests.support.polling import eventually, wait_until
from tests.support.processes import Process, RedisServer, worker

STORES = ["sqlite", "postgresql", "mongodb"]
FAST = {"sweep_interval_seconds": 0.05}
RUN_WAIT = 30.0


def chain(name: str, *nodes: dict[str, Any], **fields: Any) -> WorkflowDefinition:
    """start -> nodes... -> end, with top-level `fields` (error_workflow_id, status)."""
    every = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in pairwise(every)]
    return WorkflowDefinition.model_validate(
        {"name": name, "nodes": every, "edges": edges, **fields}
    )


BOOM = {"id": "boom", "type": "probe", "config": {"fatal": True}}
"""A node that fails for good: its run fails with `node boom failed: fatal failure`."""

REPORT = {"id": "report", "type": "probe"}
"""The handler's node: passes its input (the error inputs) on."""


async def runs_of(app: Ductwork, workflow_id: str) -> list[Run]:
    return await app.store.find_runs(RunQuery(workflow_id=workflow_id), with_events=True)


async def one_error_run(app: Ductwork, workflow_id: str) -> Run:
    """The one run of `workflow_id`, once it has finished (fails if there are more)."""

    async def finished() -> bool:
        runs = await runs_of(app, workflow_id)
        assert len(runs) <= 1, [r.execution_id for r in runs]
        return len(runs) == 1 and runs[0].status.finished

    await eventually(finished, within=RUN_WAIT, what=f"a finished run of {workflow_id}")
    return (await runs_of(app, workflow_id))[0]


def error_logs(run: Run) -> list[Event]:
    return [e for e in run.events if e.type == "log" and "error workflow" in e.data["message"]]


@asynccontextmanager
async def unstarted(tmp_path: Path, url: str) -> AsyncIterator[Ductwork]:
    """An app on `url` whose store is open but which consumes nothing and never sweeps
    by itself: a process that fails runs through `app.executor` and then dies."""
    app = build(
        Settings(data_dir=tmp_path, store_url=url), registry={**REGISTRY, "probe": ProbeNode()}
    )
    await app.store.start()
    try:
        yield app
    finally:
        await app.close()


async def fail_without_fast_path(app: Ductwork, workflow_id: str) -> Run:
    """Start a run and fail it as a worker would, then stop before the error workflow
    starts: what a worker SIGKILLed right after the failing commit leaves behind."""

    async def no_sweep(only: str | None = None) -> list[str]:
        return []

    # The background sweep (every 50 ms here) would start the error workflow between the
    # failing commit and the read below on a fast machine: paused until the read.
    setattr(app, "sweep_once", no_sweep)  # noqa: B010 - shadows the method on this object
    try:
        run, _ = await app.execute(workflow_id, {"x": 1}, trigger={"type": "manual"})
        assert await app.executor.advance(run.execution_id) is RunStatus.ERROR
        failed = await app.get_run(run.execution_id)
    finally:
        delattr(app, "sweep_once")
    assert failed.error_workflow_pending
    return failed


# The inputs, once ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", STORES)
async def test_a_failed_run_starts_its_error_workflow_once_with_what_failed(
    tmp_path: Path, kind: str, store_url_factory: Callable[[str], str]
) -> None:
    url = store_url_factory(kind)
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], store_url=url, **FAST) as app:
        handler = await app.create_workflow(chain("on failure", REPORT))
        wf = await app.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        failed, _ = await app.execute(wf.id, {"x": 1}, wait=True, trigger={"type": "manual"})
        assert failed.status is RunStatus.ERROR

        error_run = await one_error_run(app, handler.id)
        for _ in range(3):  # later sweeps find nothing left to do
            await app.sweep_once()
        assert len(await runs_of(app, handler.id)) == 1
        failed = await app.get_run(failed.execution_id)

    assert error_run.status is RunStatus.SUCCESS, error_run.error
    inputs = {
        "execution_id": failed.execution_id,
        "workflow_id": wf.id,
        "workflow_name": "nightly",
        "failed_node": "boom",
        "error": "node boom failed: fatal failure",
        "trigger": {"type": "manual"},
    }
    assert error_run.variables == inputs
    assert error_run.result == inputs  # the probe passed them on: templates can read them
    trigger = {"type": "error", "execution_id": failed.execution_id, "workflow_id": wf.id}
    assert error_run.trigger == trigger
    assert error_run.events[0].type == "run_started"
    assert error_run.events[0].data["trigger"] == trigger
    assert (error_run.idempotency_key or "").startswith(f"error:{failed.execution_id}:")
    # The failed run: flag cleared, and one log line naming the error run.
    assert not failed.error_workflow_pending
    [logged] = error_logs(failed)
    assert error_run.execution_id in logged.data["message"]
    assert logged.data["error_workflow"] == {
        "workflow_id": handler.id,
        "execution_id": error_run.execution_id,
    }


async def test_success_continue_and_cancel_start_no_error_workflow(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], **FAST) as app:
        handler = await app.create_workflow(chain("on failure", REPORT))
        named = {"error_workflow_id": handler.id}
        fine = await app.create_workflow(chain("fine", REPORT, **named))
        tolerant = await app.create_workflow(
            chain("tolerant", {**BOOM, "on_error": "continue"}, **named)
        )
        held = await app.create_workflow(
            chain("held", {"id": "hold", "type": "probe", "config": {"hold": True}}, **named)
        )
        ok, _ = await app.execute(fine.id, wait=True)
        continued, _ = await app.execute(tolerant.id, wait=True)
        parked, _ = await app.execute(held.id)
        await eventually(lambda: parked.execution_id in app.executor.active_runs)
        await app.cancel(parked.execution_id)
        cancelled = await app.wait_for(parked.execution_id, RUN_WAIT)
        await app.sweep_once()
        flagged = await app.store.find_runs(RunQuery(error_workflow_pending=True))
        started = await runs_of(app, handler.id)

    assert (ok.status, continued.status) == (RunStatus.SUCCESS, RunStatus.SUCCESS)
    assert continued.node_states["boom"].status is NodeStatus.FAILED
    assert cancelled.status is RunStatus.CANCELLED
    assert flagged == [] and started == []


# No loops ------------------------------------------------------------------------------


async def test_an_error_workflow_that_fails_starts_nothing_more(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], **FAST) as app:
        # A names B, B names A (a chain back) and B fails too.
        a = await app.create_workflow(chain("a", BOOM))
        b = await app.create_workflow(chain("b", BOOM, error_workflow_id=a.id))
        a = await app.update_workflow(a.id, chain("a", BOOM, error_workflow_id=b.id))
        # A workflow that is its own error workflow.
        itself = await app.create_workflow(chain("itself", BOOM))
        itself = await app.update_workflow(
            itself.id, chain("itself", BOOM, error_workflow_id=itself.id)
        )

        first, _ = await app.execute(a.id, wait=True)
        own, _ = await app.execute(itself.id, wait=True)
        b_run = await one_error_run(app, b.id)

        async def two_runs_of_itself_finished() -> bool:
            runs = await runs_of(app, itself.id)
            return len(runs) == 2 and all(r.status.finished for r in runs)

        await eventually(two_runs_of_itself_finished, within=RUN_WAIT)
        for _ in range(3):
            await app.sweep_once()
        a_runs = await runs_of(app, a.id)
        itself_runs = await runs_of(app, itself.id)

    assert first.status is RunStatus.ERROR and b_run.status is RunStatus.ERROR
    assert b_run.trigger == {
        "type": "error",
        "execution_id": first.execution_id,
        "workflow_id": a.id,
    }
    assert [r.execution_id for r in a_runs] == [first.execution_id]  # B's failure started no A
    assert not b_run.error_workflow_pending and error_logs(b_run) == []
    # Its own error run failed as well, and started nothing.
    error_run = next(r for r in itself_runs if r.execution_id != own.execution_id)
    assert error_run.status is RunStatus.ERROR
    assert error_run.trigger == {
        "type": "error",
        "execution_id": own.execution_id,
        "workflow_id": itself.id,
    }
    assert not error_run.error_workflow_pending


# Every way a run fails -------------------------------------------------------------------


async def test_run_level_failures_start_it_with_no_failed_node(tmp_path: Path) -> None:
    """A dead letter, a run limit and a plan that cannot run all start it; no node is named."""
    async with embedded(
        tmp_path, extra_nodes=[ProbeNode()], max_run_redrives=1, max_run_seconds=0.5, **FAST
    ) as app:
        handler = await app.create_workflow(chain("on failure", REPORT))
        named = {"error_workflow_id": handler.id}
        wf = await app.create_workflow(chain("poisoned", REPORT, **named))
        # A run its workers kept dying on (redrives counted in the store): dead-lettered.
        poisoned = Run(
            execution_id="poisoned",
            workflow_id=wf.id,
            workflow_version=wf.version,
            status=RunStatus.RUNNING,
            definition=wf.definition,
            created_at=utcnow(),
            redrives=5,
            trigger={"type": "manual"},
        )
        await app.store.create_run(poisoned)
        # A run whose stored definition no longer plans (its node type is gone).
        broken = poisoned.model_copy(
            update={
                "execution_id": "broken",
                "status": RunStatus.QUEUED,
                "redrives": 0,
                "definition": chain("broken", {"id": "gone", "type": "no-such-type"}, **named),
            }
        )
        await app.store.create_run(broken)
        # A run past DUCTWORK_MAX_RUN_SECONDS.
        slow = await app.create_workflow(
            chain("slow", {"id": "hold", "type": "probe", "config": {"hold": True}}, **named)
        )
        overtime, _ = await app.execute(slow.id)
        for execution_id in ("poisoned", "broken"):
            await app.queue.enqueue(execution_id)

        async def three_error_runs() -> bool:
            runs = await runs_of(app, handler.id)
            return len(runs) == 3 and all(r.status.finished for r in runs)

        await eventually(three_error_runs, within=RUN_WAIT)
        error_runs = {r.variables["execution_id"]: r for r in await runs_of(app, handler.id)}
        failed = {i: await app.get_run(i) for i in ("poisoned", "broken", overtime.execution_id)}

    assert failed["poisoned"].dead_letter
    assert "DUCTWORK_MAX_RUN_SECONDS" in (failed[overtime.execution_id].error or "")
    assert set(error_runs) == set(failed)
    for execution_id, run in failed.items():
        assert run.status is RunStatus.ERROR and not run.error_workflow_pending
        inputs = error_runs[execution_id].variables
        assert inputs["failed_node"] is None, execution_id
        assert inputs["error"] == run.error and run.error


# Exactly once, whoever starts it ----------------------------------------------------------


@pytest.mark.parametrize("kind", STORES)
async def test_the_sweep_starts_what_a_dead_process_left_once(
    tmp_path: Path, kind: str, store_url_factory: Callable[[str], str]
) -> None:
    url = store_url_factory(kind)
    async with unstarted(tmp_path, url) as dying:
        handler = await dying.create_workflow(chain("on failure", REPORT))
        wf = await dying.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        failed = [await fail_without_fast_path(dying, wf.id) for _ in range(3)]
        assert await runs_of(dying, handler.id) == []
    # A fresh process: its sweep finds the flags.
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], store_url=url, **FAST) as app:

        async def three_finished() -> bool:
            runs = await runs_of(app, handler.id)
            return len(runs) == 3 and all(r.status.finished for r in runs)

        await eventually(three_finished, within=RUN_WAIT)
        for _ in range(3):
            await app.sweep_once()
        error_runs = await runs_of(app, handler.id)
        failed = [await app.get_run(run.execution_id) for run in failed]
    assert sorted(r.variables["execution_id"] for r in error_runs) == sorted(
        run.execution_id for run in failed
    )
    assert all(r.status is RunStatus.SUCCESS for r in error_runs)
    assert all(r.variables["failed_node"] == "boom" for r in error_runs)
    for run in failed:
        assert not run.error_workflow_pending and len(error_logs(run)) == 1


@pytest.mark.parametrize("kind", STORES)
async def test_processes_sweeping_at_once_start_one_error_run(
    tmp_path: Path, kind: str, store_url_factory: Callable[[str], str]
) -> None:
    url = store_url_factory(kind)
    async with unstarted(tmp_path / "one", url) as one, unstarted(tmp_path / "two", url) as two:
        handler = await one.create_workflow(chain("on failure", REPORT))
        wf = await one.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        failed = await fail_without_fast_path(one, wf.id)
        # Four sweeps in each of two processes (no sweep lock between them), all at once.
        await asyncio.gather(*(app.sweep_once() for app in (one, two) * 4))
        started = await runs_of(one, handler.id)
        failed = await one.get_run(failed.execution_id)
    assert len(started) == 1
    assert started[0].trigger == {
        "type": "error",
        "execution_id": failed.execution_id,
        "workflow_id": wf.id,
    }
    assert not failed.error_workflow_pending
    [logged] = error_logs(failed)
    assert started[0].execution_id in logged.data["message"]


async def test_a_retry_reports_the_failure_first_and_a_new_failure_again(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], **FAST) as app:
        handler = await app.create_workflow(chain("on failure", REPORT))
        wf = await app.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        # Failed by a process that died before starting the error workflow, then retried
        # at once: the retry starts it before the run's error is cleared.
        failed = await fail_without_fast_path(app, wf.id)
        await app.retry(failed.execution_id)
        first = await runs_of(app, handler.id)
        assert len(first) == 1 and first[0].variables["error"] == failed.error
        # The retried run fails again: a new failure, a second error run.
        again = await app.wait_for(failed.execution_id, RUN_WAIT)
        assert again.status is RunStatus.ERROR

        async def two_error_runs() -> bool:
            return len(await runs_of(app, handler.id)) == 2

        await eventually(two_error_runs, within=RUN_WAIT)
        await app.sweep_once()
        runs = await runs_of(app, handler.id)
        again = await app.get_run(failed.execution_id)
    assert len(runs) == 2
    assert len({r.idempotency_key for r in runs}) == 2
    assert all(r.variables["failed_node"] == "boom" for r in runs)
    assert not again.error_workflow_pending and len(error_logs(again)) == 2


# The error workflow itself -------------------------------------------------------------


async def test_a_deleted_error_workflow_is_reported_once_and_not_retried(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], **FAST) as app:
        handler = await app.create_workflow(chain("on failure", REPORT))
        wf = await app.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        await app.delete_workflow(handler.id)
        failed, _ = await app.execute(wf.id, wait=True)

        async def settled() -> bool:
            run = await app.get_run(failed.execution_id)
            return not run.error_workflow_pending

        await eventually(settled)
        for _ in range(3):
            await app.sweep_once()
        failed = await app.get_run(failed.execution_id)
        started = await runs_of(app, handler.id)
    assert failed.status is RunStatus.ERROR and started == []
    [logged] = error_logs(failed)
    assert logged.data["level"] == "warning"
    assert f"error workflow {handler.id} not started" in logged.data["message"]


async def test_a_paused_error_workflow_still_runs(tmp_path: Path) -> None:
    """Pausing stops a workflow's own schedules and webhooks; another's failure still runs it."""
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], **FAST) as app:
        handler = await app.create_workflow(chain("on failure", REPORT, status="paused"))
        wf = await app.create_workflow(chain("nightly", BOOM, error_workflow_id=handler.id))
        await app.execute(wf.id, wait=True)
        error_run = await one_error_run(app, handler.id)
    assert error_run.status is RunStatus.SUCCESS


# Scale-out: PostgreSQL, Redis, `ductwork worker` processes ---------------------------------


@contextmanager
def table_locked(url: str, table: str) -> Iterator[None]:
    """Hold PostgreSQL's ACCESS EXCLUSIVE lock on `table` (even reads of it wait) inside."""
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            async with connection.transaction():
                await connection.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
                locked.set()
                await asyncio.to_thread(release.wait)
        finally:
            await connection.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:
            failure.append(exc)
            locked.set()

    holder = threading.Thread(target=run, daemon=True)
    holder.start()
    locked.wait(RUN_WAIT)
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        holder.join(RUN_WAIT)


async def wait_for_failure_with_flag(url: str, execution_id: str) -> None:
    """Until the run is stored failed with its error-workflow flag still set."""
    store = create_store(url)
    await store.start()
    try:

        async def failed_and_flagged() -> bool:
            run = await store.get_run(execution_id, with_events=False)
            return run is not None and run.status is RunStatus.ERROR and run.error_workflow_pending

        await eventually(failed_and_flagged, within=RUN_WAIT, what="the failing commit")
    finally:
        await store.close()


def test_a_worker_killed_right_after_failing_a_run_loses_no_error_workflow(
    tmp_path: Path,
    redis_server: RedisServer,
    http_server: RecordingHttpServer,
    store_url_factory: Callable[[str], str],
) -> None:
    """The worker that fails the run is SIGKILLed after the failing commit, before it
    starts the error workflow; a worker started afterwards starts it, once.

    The window is held open by a lock on the `workflows` table: the failing commit
    does not touch that table, and starting the error workflow first reads it.
    """
    url = store_url_factory("postgresql")
    env = {
        **os.environ,
        "DUCTWORK_STORE_URL": url,
        "DUCTWORK_REDIS_URL": redis_server.url,
        "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
        "DUCTWORK_LEASE_SECONDS": "1.5",
        "DUCTWORK_HEARTBEAT_SECONDS": "0.3",
        "DUCTWORK_SWEEP_INTERVAL_SECONDS": "0.2",
        "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
        "DUCTWORK_LLM_API_KEY": "unused",
    }
    # This process serves the API (it only enqueues); the workers run and sweep.
    settings = Settings(store_url=url, redis_url=redis_server.url, data_dir=tmp_path / "data")
    # The run fails when the upstream answers 500; it waits for the test to let it.
    http_server.hold("/upstream")
    http_server.script("/upstream", Reply(status=500, body={"error": "down"}))
    call = {"url": http_server.url("/upstream"), "method": "POST"}
    failing = {
        "name": "nightly",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "webhook", "config": call},
        ],
        "edges": [{"from": "start", "to": "call"}],
    }
    handler = {
        "name": "on failure",
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}],
    }
    workers: list[Process] = []
    with LiveServer(settings, role="api") as api, api.client() as http:
        try:
            handler_id = http.post("/workflows/", json=handler).json()["id"]
            failing["error_workflow_id"] = handler_id
            wf_id = http.post("/workflows/", json=failing).json()["id"]
            first = worker("first", env, tmp_path).start()
            workers.append(first)
            first.wait_for_line("consuming runs")
            started = http.post(f"/workflows/{wf_id}/execute", json={"async_execution": True})
            execution_id = started.json()["execution_id"]
            http_server.wait_for_calls("/upstream", 1, timeout=RUN_WAIT)
            with table_locked(url, "workflows"):
                http_server.release("/upstream")
                asyncio.run(wait_for_failure_with_flag(url, execution_id))
                first.kill()
            workers.append(worker("second", env, tmp_path).start())

            def settled() -> bool:
                logs = http.get(f"/workflows/executions/{execution_id}").json()["logs"]
                return any("error workflow" in line["message"] for line in logs)

            wait_until(settled, within=RUN_WAIT, what="the failed run to name its error run")
            error_runs = http.get(
                "/workflows/executions", params={"workflow_id": handler_id}
            ).json()
            wait_until(
                lambda: (
                    http.get(f"/workflows/executions/{error_runs[0]['execution_id']}").json()[
                        "status"
                    ]
                    == "success"
                ),
                within=RUN_WAIT,
                what="the error run to finish",
            )
            # Settled: the flag is cleared, so no later sweep starts another.
            again = http.get("/workflows/executions", params={"workflow_id": handler_id}).json()
        finally:
            for process in workers:
                process.kill()
    assert len(error_runs) == 1 and len(again) == 1
    assert again[0]["trigger"] == {
        "type": "error",
        "execution_id": execution_id,
        "workflow_id": wf_id,
    }
    assert again[0]["variables"]["failed_node"] == "call"
