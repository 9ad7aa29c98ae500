"""No run is lost and none loops: poison runs, unstorable outputs, stores that go away.

Every test here ends with the run in a recorded state (success or error, with
the cause) and counts what the nodes saw, so "nothing sent twice" and "nothing
lost" are checked, not assumed.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from ductwork.engine import executor as executor_module
from ductwork.engine.executor import CheckpointUnavailable, GroupCommitter, _Checkpointer
from ductwork.events.memory import InProcessEventBus
from ductwork.models import Checkpoint, Event, NodeStatus, Run, RunStatus, utcnow
from ductwork.nodes.base import NodeResult
from ductwork.service import Ductwork
from ductwork.store.base import RunQuery, StoreError
from ductwork.store.factory import create_store
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy


class SendNode(ProbeNode):
    """A probe that declares side effects, like email and webhook."""

    type_name = "send"
    side_effects: ClassVar[bool] = True


class NulNode(ProbeNode):
    """Outputs text with a NUL character, as a remote API or a file might."""

    type_name = "nul"

    async def run(self, config: Any, ctx: Any) -> NodeResult:
        return NodeResult(output={"text": "a\u0000b"})


def _chain(*node_types: tuple[str, str]) -> Any:
    nodes = [{"id": "start", "type": "start"}]
    nodes += [{"id": node_id, "type": kind, "config": {}} for node_id, kind in node_types]
    nodes.append({"id": "end", "type": "end"})
    ids = [node["id"] for node in nodes]
    return definition(nodes, list(itertools.pairwise(ids)))


async def _finished(app: Ductwork, execution_id: str, within: float = 30.0) -> Run:
    run: Run | None = None

    async def done() -> bool:
        nonlocal run
        run = await app.get_run(execution_id)
        return run.status.finished

    await eventually(done, within=within, what=f"run {execution_id} finished")
    assert run is not None
    return run


def _break_node(
    monkeypatch: pytest.MonkeyPatch, node_id: str, times: int | None
) -> Callable[[], int]:
    """Make the engine itself raise when it prepares `node_id` (an engine bug, not a node error).

    `times`: how many times it raises (None: always). Returns a call counter.
    """
    original = executor_module._RunDriver._input_for
    raised = 0

    def broken(self: Any, node: Any, scope: Any = None) -> Any:
        nonlocal raised
        if node.id == node_id and (times is None or raised < times):
            raised += 1
            raise RuntimeError("engine bug")
        return original(self, node, scope)

    monkeypatch.setattr(executor_module._RunDriver, "_input_for", broken)
    return lambda: raised


FAST = {"sweep_interval_seconds": 0.05, "lease_seconds": 2.0, "heartbeat_seconds": 0.5}


async def test_engine_error_after_a_side_effect_records_it_and_never_resends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = SendNode()
    raised = _break_node(monkeypatch, "after", times=1)
    async with embedded(tmp_path, extra_nodes=[send, ProbeNode()], **FAST) as app:
        wf = await app.create_workflow(_chain(("send", "send"), ("after", "probe")))
        run, _ = await app.execute(wf.id, {"x": 1})
        run = await _finished(app, run.execution_id)
    assert raised() == 1
    assert run.status is RunStatus.SUCCESS, run.error
    assert send.calls == {(run.execution_id, "send"): 1}  # the side effect happened once
    assert any("re-drive 1 of" in (e.data.get("message") or "") for e in run.events)
    assert run.redrives == 0, "the node that completed after the re-drive reset the count"


async def test_a_poison_run_fails_for_good_after_its_redrive_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = SendNode()
    raised = _break_node(monkeypatch, "after", times=None)
    async with embedded(
        tmp_path, extra_nodes=[send, ProbeNode()], max_run_redrives=2, **FAST
    ) as app:
        wf = await app.create_workflow(_chain(("send", "send"), ("after", "probe")))
        run, _ = await app.execute(wf.id, {})
        run = await _finished(app, run.execution_id)
        dead = await app.store.find_runs(RunQuery(dead_letter=True))
    assert run.status is RunStatus.ERROR
    assert run.dead_letter
    assert "DUCTWORK_MAX_RUN_REDRIVES" in (run.error or "")
    assert raised() == 3  # the first drive and two re-drives, then no more
    assert send.calls == {(run.execution_id, "send"): 1}
    assert run.node_states["send"].status is NodeStatus.COMPLETED
    assert run.node_states["after"].status is NodeStatus.FAILED
    assert [e.type for e in run.events][-2:] == ["run_failed", "run_finished"]
    assert [r.execution_id for r in dead] == [run.execution_id]


async def test_a_run_past_its_redrive_budget_at_lease_time_is_dead_lettered(
    tmp_path: Path,
) -> None:
    """A worker that keeps dying on a run (OOM, SIGKILL) raises redrives in the store."""
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], max_run_redrives=1) as app:
        wf = await app.create_workflow(_chain(("p", "probe")))
        run = Run(
            execution_id="poisoned",
            workflow_id=wf.id,
            workflow_version=wf.version,
            status=RunStatus.RUNNING,
            definition=wf.definition,
            created_at=utcnow(),
            redrives=5,
        )
        await app.store.create_run(run)
        await app.queue.enqueue("poisoned")
        got = await _finished(app, "poisoned")
    assert got.status is RunStatus.ERROR and got.dead_letter
    assert "re-driven 5 times without a node completing" in (got.error or "")


async def test_a_run_created_leased_by_a_process_that_died_is_resumed_once_the_lease_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process inserts a run leased to itself (`Executor.lease_new_run`) and dies
    before driving it: another process takes it over after the lease, not before."""
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node], **FAST) as first:
        wf = await first.create_workflow(_chain(("p", "probe")))

        async def died(execution_id: str) -> None:
            """The process dies before its queue delivers the run."""

        monkeypatch.setattr(first.queue, "enqueue", died)
        run, _ = await first.execute(wf.id, {"x": 1})
        created = await first.store.get_run(run.execution_id, with_events=False)
        dead_owner = first.executor.owner
    assert created is not None and created.status is RunStatus.QUEUED
    assert created.lease_owner == dead_owner and created.lease_expires_at is not None
    async with embedded(tmp_path, extra_nodes=[node], **FAST) as second:
        assert second.executor.owner != dead_owner
        final = await _finished(second, run.execution_id)
    assert final.status is RunStatus.SUCCESS, final.error
    assert node.calls == {(run.execution_id, "p"): 1}
    assert final.start_time is not None and final.start_time >= created.lease_expires_at
    assert [e.type for e in final.events].count("run_started") == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mongodb"])
async def test_a_nul_character_in_an_output_fails_the_node_on_every_store(
    tmp_path: Path, kind: str, store_url_factory: Callable[[str], str]
) -> None:
    send = SendNode()
    nodes = [
        {"id": "start", "type": "start"},
        {"id": "nul", "type": "nul"},
        {"id": "send", "type": "send"},
    ]
    wf_def = definition(nodes, [("start", "nul"), ("nul", "send")])
    async with embedded(
        tmp_path, extra_nodes=[send, NulNode()], store_url=store_url_factory(kind), **FAST
    ) as app:
        wf = await app.create_workflow(wf_def)
        run, _ = await app.execute(wf.id, {})
        run = await _finished(app, run.execution_id)
    assert run.status is RunStatus.ERROR
    assert "NUL character" in (run.node_states["nul"].error or "")
    assert send.calls == {}


async def test_a_runs_outputs_together_are_bounded(tmp_path: Path) -> None:
    nodes = [
        {"id": "start", "type": "start"},
        {"id": "a", "type": "probe", "config": {"output": "x" * 60}},
        {"id": "b", "type": "probe", "config": {"output": "y" * 60}},
    ]
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], max_run_output_bytes=100) as app:
        wf = await app.create_workflow(definition(nodes, [("start", "a"), ("a", "b")]))
        run, _ = await app.execute(wf.id, {}, wait=True)
    assert run.status is RunStatus.ERROR
    assert "DUCTWORK_MAX_RUN_OUTPUT_BYTES" in (run.node_states["b"].error or "")


class _FlakyCommitter:
    """Stands in for the group committer: refuses commits while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.failures = 0
        self.committed: list[Checkpoint] = []

    async def commit(self, execution_id: str, checkpoint: Checkpoint) -> None:
        if self.down:
            self.failures += 1
            raise ConnectionError("store unreachable")
        self.committed.append(checkpoint.model_copy(deep=True))


def _event(seq: int) -> Event:
    return Event(seq=seq, type="log", timestamp=utcnow(), data={"message": str(seq)})


async def test_a_failed_background_flush_keeps_its_changes_due() -> None:
    store = _FlakyCommitter()
    checkpointer = _Checkpointer(
        store,  # type: ignore[arg-type]
        InProcessEventBus(),
        "run-1",
        give_up_after=0.2,
    )
    store.down = True
    checkpointer.event(_event(1))
    checkpointer.flush_later(0)
    await eventually(lambda: store.failures >= 2, what="the background flush tried")
    with pytest.raises(CheckpointUnavailable):
        await checkpointer.flush()  # still down: gives up, keeps everything due
    store.down = False
    checkpointer.event(_event(2))
    await checkpointer.flush()
    seqs = [event.seq for commit in store.committed for event in commit.events]
    assert seqs == [1, 2]


async def test_a_flush_retries_a_store_that_comes_back() -> None:
    store = _FlakyCommitter()
    checkpointer = _Checkpointer(
        store,  # type: ignore[arg-type]
        InProcessEventBus(),
        "run-1",
        give_up_after=30,
    )
    store.down = True
    checkpointer.event(_event(1))
    flush = asyncio.get_running_loop().create_task(checkpointer.flush())
    await eventually(lambda: store.failures >= 3, what="retries")
    store.down = False
    await flush
    assert [e.seq for e in store.committed[0].events] == [1]


class _SlowStore:
    """Stands in for a store behind the real group committer: each checkpoint waits until
    the test opens the gate (the write goes on in the committer's task, as a real one
    does, whoever stops waiting for it)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = 0
        self.committed: list[Checkpoint] = []

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        self.entered += 1
        await self.gate.wait()
        seqs = {e.seq for c in self.committed for e in c.events}
        if any(e.seq in seqs for e in checkpoint.events):
            raise StoreError("UNIQUE constraint failed: run_events.execution_id, run_events.seq")
        self.committed.append(checkpoint.model_copy(deep=True))


async def test_a_flush_cancelled_mid_commit_never_writes_its_batch_twice() -> None:
    # A node is cancelled (a sibling failed the run) while its pre-side-effect flush is
    # in flight. The commit still lands; putting the batch back as "not committed" made
    # the next flush write the same events again, which the store refused (duplicate
    # seq) until the run stopped.
    store = _SlowStore()
    checkpointer = _Checkpointer(
        GroupCommitter(store),  # type: ignore[arg-type]
        InProcessEventBus(),
        "run-1",
        give_up_after=2,
    )
    checkpointer.event(_event(1))
    flush = asyncio.get_running_loop().create_task(checkpointer.flush())
    await eventually(lambda: store.entered == 1, what="the commit started")
    flush.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the flush while the commit waits
    store.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await flush
    checkpointer.event(_event(2))
    await checkpointer.flush()
    seqs = [event.seq for commit in store.committed for event in commit.events]
    assert seqs == [1, 2]


class _CommitsThenFails:
    """A store whose first checkpoint lands but answers with a lost connection (as a
    COMMIT cut off before its reply does): the caller cannot tell it landed."""

    def __init__(self, store: Any) -> None:
        self._real = store
        self.ambiguous = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def checkpoint(self, execution_id: str, checkpoint: Checkpoint, **kw: Any) -> None:
        await self._real.checkpoint(execution_id, checkpoint, **kw)
        if self.ambiguous:
            self.ambiguous -= 1
            raise ConnectionError("connection lost during COMMIT")


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "mid-run"])
async def test_a_commit_that_landed_unseen_is_taken_as_committed(
    tmp_path: Path, terminal: bool
) -> None:
    # A checkpoint whose COMMIT landed but whose answer was lost is retried: the retry
    # met its own events (duplicate seq, until the store gave up) or, for the terminal
    # commit that gives the lease up, a lost lease: the run's end was never published.
    store = create_store(f"sqlite:///{tmp_path / 'ambiguous.db'}")
    await store.start()
    try:
        run = Run(
            execution_id="amb-1",
            workflow_id="wf",
            workflow_version=1,
            definition=definition([{"id": "start", "type": "start"}], []),
            created_at=utcnow(),
        )
        await store.create_run(run)
        now = utcnow()
        assert await store.acquire_lease("amb-1", "me", now + timedelta(seconds=30), now)
        bus = InProcessEventBus()
        checkpointer = _Checkpointer(
            GroupCommitter(_CommitsThenFails(store), "me"),  # type: ignore[arg-type]
            bus,
            "amb-1",
            give_up_after=5,
        )
        async with bus.subscribe("amb-1") as stream:
            kind = "run_finished" if terminal else "log"
            checkpointer.event(Event(seq=1, type=kind, timestamp=utcnow(), data={}))
            if terminal:
                checkpointer.run_fields(
                    status=RunStatus.SUCCESS,
                    end_time=utcnow(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            await checkpointer.flush()  # LeaseLost / CheckpointUnavailable before the fix
            await checkpointer.drain()
            seen = await asyncio.wait_for(anext(aiter(stream)), 5)
        assert seen.type == kind
        stored = await store.get_run("amb-1")
        assert stored is not None and [e.seq for e in stored.events] == [1]
        assert stored.lease_owner == (None if terminal else "me")
    finally:
        await store.close()


def _via_proxy(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def _outage_run(
    app: Ductwork,
    probe: ProbeNode,
    cut: Callable[[], None],
    restore: Callable[[], None],
    outage_seconds: float,
) -> Run:
    nodes = [{"id": "start", "type": "start"}]
    nodes += [{"id": f"n{i}", "type": "probe", "config": {"sleep": 0.3}} for i in range(6)]
    ids = [node["id"] for node in nodes]
    wf = await app.create_workflow(definition(nodes, list(itertools.pairwise(ids))))
    run, _ = await app.execute(wf.id, {})
    execution_id = run.execution_id

    async def n0_committed_n1_running() -> bool:
        stored = await app.get_run(execution_id, with_events=False)
        return (
            stored.node_states.get("n0") is not None
            and stored.node_states["n0"].status is NodeStatus.COMPLETED
            and probe.calls.get((execution_id, "n1"), 0) >= 1
        )

    await eventually(n0_committed_n1_running, within=20, what="n0 committed, n1 running")
    cut()
    await asyncio.sleep(outage_seconds)  # the scenario: the store stays down this long
    restore()
    return await _finished(app, execution_id, within=60)


def _assert_nothing_lost(run: Run, probe: ProbeNode) -> None:
    assert run.status is RunStatus.SUCCESS, run.error
    assert all(s.status is NodeStatus.COMPLETED for s in run.node_states.values())
    seqs = [event.seq for event in run.events]
    assert seqs == list(range(1, len(seqs) + 1))  # no event lost, none duplicated
    completed_before_cut = [k for k, v in probe.calls.items() if k[1] == "n0"]
    assert all(probe.calls[k] == 1 for k in completed_before_cut)
    assert all(count <= 2 for count in probe.calls.values())
    finished = [e.node_id for e in run.events if e.type == "node_completed"]
    assert sorted(finished) == sorted(run.node_states)  # each node completed exactly once


@pytest.mark.parametrize("outage_seconds", [1.0, 4.0], ids=["shorter-than-lease", "longer"])
@pytest.mark.parametrize("kind", ["postgresql", "mongodb"])
async def test_a_store_going_down_mid_run_loses_nothing(
    tmp_path: Path, store_url_factory: Callable[[str], str], kind: str, outage_seconds: float
) -> None:
    url = store_url_factory(kind)
    if kind == "mongodb":
        # Fail fast while the server is unreachable rather than after PyMongo's 30 s.
        url += "?serverSelectionTimeoutMS=500&connectTimeoutMS=500&directConnection=true"
    port = urlsplit(url).port
    assert port is not None
    probe = ProbeNode()
    with TcpProxy("127.0.0.1", port) as proxy:
        async with embedded(
            tmp_path, extra_nodes=[probe], store_url=_via_proxy(url, proxy), **FAST
        ) as app:
            run = await _outage_run(app, probe, proxy.cut, proxy.restore, outage_seconds)
    assert proxy.refused > 0
    _assert_nothing_lost(run, probe)


async def test_a_locked_sqlite_file_mid_run_loses_nothing(tmp_path: Path) -> None:
    probe = ProbeNode()
    locker = sqlite3.connect(tmp_path / "ductwork.db", check_same_thread=False, timeout=30)
    locker.isolation_level = None

    def lock() -> None:
        locker.execute("BEGIN EXCLUSIVE")
        # Released from another thread: the store's writer blocks the loop meanwhile.
        threading.Timer(6.0, lambda: locker.execute("COMMIT")).start()

    async with embedded(tmp_path, extra_nodes=[probe], lease_seconds=30) as app:
        run = await _outage_run(app, probe, lock, lambda: None, 0)
    locker.close()
    _assert_nothing_lost(run, probe)


class DeepNode(ProbeNode):
    """Outputs a value nested deeper than any store should be asked to hold."""

    type_name = "deep"

    async def run(self, config: Any, ctx: Any) -> NodeResult:
        value: Any = "leaf"
        for _ in range(95):
            value = {"v": value}
        return NodeResult(output=value)


async def test_an_output_nested_too_deep_fails_its_node(tmp_path: Path) -> None:
    nodes = [{"id": "start", "type": "start"}, {"id": "deep", "type": "deep"}]
    async with embedded(tmp_path, extra_nodes=[DeepNode()]) as app:
        wf = await app.create_workflow(definition(nodes, [("start", "deep")]))
        run, _ = await app.execute(wf.id, {}, wait=True)
        again = await app.get_run(run.execution_id)  # and the run reads back
    assert run.status is RunStatus.ERROR
    assert "nested more than 90 levels" in (again.node_states["deep"].error or "")


class DeepInStringsNode(DeepNode):
    """Nested too deep, with a closing bracket in a string before each level's nested
    object: read as structure, each would close its level and hide the depth."""

    type_name = "deep_in_strings"

    async def run(self, config: Any, ctx: Any) -> NodeResult:
        value: Any = "leaf"
        for _ in range(95):
            value = {"a": "}", "b": '\\"]', "v": value}
        return NodeResult(output=value)


async def test_an_output_nested_too_deep_behind_brackets_in_strings_fails(tmp_path: Path) -> None:
    nodes = [{"id": "start", "type": "start"}, {"id": "deep", "type": "deep_in_strings"}]
    async with embedded(tmp_path, extra_nodes=[DeepInStringsNode()]) as app:
        wf = await app.create_workflow(definition(nodes, [("start", "deep")]))
        run, _ = await app.execute(wf.id, {}, wait=True)
    assert run.status is RunStatus.ERROR
    assert "nested more than 90 levels" in (run.node_states["deep"].error or "")


def test_nesting_at_least_matches_the_depth_of_the_value() -> None:
    """`jsonvalues.nesting_at_least` (the output check's filter) against the real depth of
    random values whose strings hold brackets, quotes and backslashes."""
    import random

    import orjson

    from ductwork.jsonvalues import nesting_at_least

    def depth(value: Any) -> int:
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    pieces = ["[", "]", "{", "}", '"', "\\", "a", "\\\\", '\\"', "é", "\x00"]
    rng = random.Random(12)

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))

    def value(levels: int) -> Any:
        if levels == 0 or rng.random() < 0.2:
            return rng.choice([1, None, text()])
        if rng.random() < 0.5:
            return [value(levels - 1) for _ in range(rng.randint(0, 3))]
        return {text() + str(i): value(levels - 1) for i in range(rng.randint(0, 3))}

    for _ in range(3000):
        item = value(rng.randint(0, 12))
        encoded, real = orjson.dumps(item), depth(item)
        for limit in range(1, 14):
            assert nesting_at_least(encoded, limit) is (real >= limit), (item, limit)


def test_dead_letters_are_listed_over_http_and_a_retry_starts_over(tmp_path: Path) -> None:
    from ductwork.settings import Settings
    from ductwork.store.factory import create_store
    from tests.support.live_server import LiveServer
    from tests.support.polling import wait_until

    settings = Settings(data_dir=tmp_path, max_run_redrives=1, sweep_interval_seconds=0.05)
    wf_def = definition(
        [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}], [("start", "end")]
    )

    async def seed() -> None:
        from ductwork.models import Workflow

        store = create_store(settings.resolved_store_url)
        await store.start()
        now = utcnow()
        await store.create_workflow(
            Workflow(id="wf1", definition=wf_def, created_at=now, updated_at=now)
        )
        await store.create_run(
            Run(
                execution_id="crashy",
                workflow_id="wf1",
                workflow_version=1,
                status=RunStatus.RUNNING,
                definition=wf_def,
                created_at=now,
                redrives=4,
            )
        )
        await store.close()

    asyncio.run(seed())
    with LiveServer(settings) as server, server.client(timeout=30) as client:
        wait_until(
            lambda: client.get("/workflows/executions", params={"status": "dead"}).json(),
            within=15,
            what="the poisoned run dead-lettered",
        )
        dead = client.get("/workflows/executions", params={"status": "dead"}).json()
        assert [run["execution_id"] for run in dead] == ["crashy"]
        assert dead[0]["dead_letter"] is True and dead[0]["status"] == "error"
        logs = client.get("/workflows/executions/crashy").json()["logs"]
        assert any("dead letter" in line["message"] for line in logs)
        assert client.get("/workflows/executions", params={"status": "nope"}).status_code == 422
        client.post("/workflows/executions/crashy/retry", json={})
        wait_until(
            lambda: client.get("/workflows/executions/crashy").json()["status"] == "success",
            within=15,
            what="the retried run finishing",
        )
        assert client.get("/workflows/executions", params={"status": "dead"}).json() == []


async def test_large_workflows_are_planned_off_the_event_loop() -> None:
    """A 10,000-node plan takes seconds: other runs' heartbeats must not wait for it."""
    from ductwork.engine.executor import LARGE_WORKFLOW_NODES, off_loop_if_large

    def nodes(count: int) -> Any:
        return definition([{"id": f"n{i}", "type": "start"} for i in range(count)], [])

    def where() -> int:
        return threading.get_ident()

    loop_thread = threading.get_ident()
    assert await off_loop_if_large(nodes(3), where) == loop_thread
    assert await off_loop_if_large(nodes(LARGE_WORKFLOW_NODES + 1), where) != loop_thread
