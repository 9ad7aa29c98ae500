"""The `wait` node in the engine: parking, resuming, timeouts, races, and signed links.

Runs against a real embedded ductwork (SQLite store, in-process queue and events);
the HTTP side (links without a key, the page, the API route) is tests/test_wait_http.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ductwork.cli import RunProgress
from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import NodeStatus, Run, RunStatus
from ductwork.security.crypto import generate_key
from ductwork.service import Ductwork
from ductwork.triggers.resume import ForgedLink, ResumeLinks
from ductwork.views import run_view
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0
"""Seconds a test waits for a run to end: a deadline for a stuck run, not a speed check."""


def wait(node_id: str = "w", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "wait", "config": config}


def end(node_id: str = "end") -> dict[str, Any]:
    return {"id": node_id, "type": "end", "config": {}}


def compose(node_id: str, **mapping: str) -> dict[str, Any]:
    """A transformer building {key: expression} over the run's names."""
    config = {"transform_type": "compose", "mapping": mapping}
    return {"id": node_id, "type": "transformer", "config": config}


async def parked(app: Ductwork, execution_id: str, node_id: str = "w") -> Run:
    """The run once `node_id` waits to be resumed and the run is parked."""

    async def check() -> bool:
        run = await app.get_run(execution_id)
        return (
            run.status is RunStatus.WAITING
            and run.node_states.get(node_id) is not None
            and run.node_states[node_id].status is NodeStatus.WAITING
        )

    await eventually(check, what=f"{node_id} parked")
    return await app.get_run(execution_id)


async def test_a_wait_parks_holding_no_worker_and_a_resume_ends_it_with_the_body(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition([wait(title="Ship it?"), end()], [("w", "end")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        waiting = await parked(app, run.execution_id)
        assert not app.executor.active_runs  # no worker is held while parked
        state = waiting.node_states["w"]
        assert state.meta["resumable"] is True
        assert state.meta["timeout_at"] is None
        url = state.meta["resume_url"]
        assert url == app.resume_links.url(run.execution_id, "w")  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:8000/resume/")
        announced = [e for e in waiting.events if e.type == "node_waiting"]
        assert [e.data for e in announced] == [
            {"resumable": True, "resume_url": url, "timeout_at": None}
        ]
        # No timeout: parked until the run's own deadline.
        assert waiting.start_time is not None and waiting.wake_at == waiting.start_time + (
            timedelta(seconds=app.settings.max_run_seconds)
        )

        outcome = await app.resumes.resume(run.execution_id, "w", {"ok": 1}, via="api")
        assert outcome == "resumed"
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        again = await app.resumes.resume(run.execution_id, "w", {"ok": 2}, via="api")
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["w"].output == {"ok": 1}
    assert final.node_states["w"].branch == "resumed"
    assert "resume_payload" not in final.node_states["w"].meta  # it is the output now
    assert final.result == {"ok": 1}
    assert again == "used"


@pytest.mark.parametrize(
    ("on_timeout", "status", "took"),
    [
        ("fail", RunStatus.ERROR, None),
        ("continue", RunStatus.SUCCESS, "yes"),
        ("branch", RunStatus.SUCCESS, "late"),
    ],
)
async def test_a_timeout_fails_continues_or_branches(
    tmp_path: Path, on_timeout: str, status: RunStatus, took: str | None
) -> None:
    nodes = [
        wait(timeout_seconds=0.3, on_timeout=on_timeout),
        compose("yes", answered="input"),
        compose("late", late="input"),
        compose("always", after="input"),
    ]
    edges = [
        {"from": "w", "to": "yes", "branch": "resumed"},
        {"from": "w", "to": "late", "branch": "timeout"},
        ("w", "always"),
    ]
    async with embedded(tmp_path, sweep_interval_seconds=0.05) as app:
        wf = await app.create_workflow(definition(nodes, edges))
        run, _ = await app.execute(wf.id, {}, wait=False)
        waiting = await parked(app, run.execution_id)
        assert waiting.node_states["w"].meta["timeout_at"] is not None
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        refused = await app.resumes.resume(run.execution_id, "w", {}, via="api")
    assert final.status is status, final.error
    state = final.node_states["w"]
    assert refused == "ended"
    if on_timeout == "fail":
        assert state.status is NodeStatus.FAILED
        assert state.error == "timed out: no one resumed it within 0.3 s (on_timeout: fail)"
        assert final.error is not None and "no one resumed it" in final.error
        return
    assert state.output == {"timed_out": True}
    skipped = {"yes": "late", "late": "yes"}[took]  # type: ignore[index]
    assert final.node_states[took].status is NodeStatus.COMPLETED  # type: ignore[index]
    assert final.node_states[skipped].status is NodeStatus.SKIPPED
    assert final.node_states["always"].status is NodeStatus.COMPLETED


async def test_a_resume_while_another_branch_runs_is_not_lost(tmp_path: Path) -> None:
    """The wait parks while a sibling still runs; the resume lands then (its delivery finds
    the run claimed, and the park afterwards overwrites the wake time it set): the
    run must go on at once, not at the wait's timeout."""
    probe = ProbeNode()
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        wait(timeout_seconds=3600),
        {"id": "slow", "type": "probe", "config": {"hold": True, "output": "slow"}},
        end(),
    ]
    edges = [("start", "w"), ("start", "slow"), ("w", "end"), ("slow", "end")]
    async with embedded(tmp_path, extra_nodes=[probe]) as app:
        wf = await app.create_workflow(definition(nodes, edges))
        run, _ = await app.execute(wf.id, {}, wait=False)

        async def wait_node_parked() -> bool:
            stored = await app.store.get_run(run.execution_id, with_events=False)
            return (
                stored is not None
                and stored.node_states.get("w") is not None
                and (stored.node_states["w"].status is NodeStatus.WAITING)
            )

        await eventually(wait_node_parked)
        assert app.executor.active_runs == [run.execution_id]  # the sibling still runs
        outcome = await app.resumes.resume(run.execution_id, "w", {"go": True}, via="link")
        assert outcome == "resumed"
        probe.release()
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["w"].output == {"go": True}
    assert final.result == {"w": {"go": True}, "slow": "slow"}


async def test_templates_get_the_resume_links_before_the_wait_runs(tmp_path: Path) -> None:
    nodes = [
        compose("mail", first="run.resume_url", second="run.resume_urls.w2"),
        wait("w1"),
        wait("w2"),
    ]
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition(nodes, [("mail", "w1"), ("w1", "w2")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        first = await parked(app, run.execution_id, "w1")
        await app.resumes.resume(run.execution_id, "w1", {}, via="api")
        second = await parked(app, run.execution_id, "w2")
        assert await app.resumes.resume(run.execution_id, "w1", {}, via="api") == "used"
        await app.cancel(run.execution_id)
        await app.wait_for(run.execution_id, RUN_WAIT)
    sent = first.node_states["mail"].output
    assert sent == {
        "first": first.node_states["w1"].meta["resume_url"],
        "second": second.node_states["w2"].meta["resume_url"],
    }
    assert sent["first"] != sent["second"]


async def test_a_resume_before_the_node_waits_is_not_yet_and_after_the_run_ends_is_ended(
    tmp_path: Path,
) -> None:
    probe = ProbeNode()
    nodes = [{"id": "before", "type": "probe", "config": {"hold": True}}, wait()]
    async with embedded(tmp_path, extra_nodes=[probe]) as app:
        wf = await app.create_workflow(definition(nodes, [("before", "w")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        await eventually(lambda: app.executor.active_runs == [run.execution_id])
        assert await app.resumes.resume(run.execution_id, "w", {}, via="api") == "not_yet"
        assert await app.resumes.resume(run.execution_id, "before", {}, via="api") == (
            "not_resumable"
        )
        assert await app.resumes.resume(run.execution_id, "nope", {}, via="api") == "not_found"
        assert await app.resumes.resume("no-such-run", "w", {}, via="api") == "not_found"
        probe.release()
        await parked(app, run.execution_id)
        await app.cancel(run.execution_id)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        assert final.status is RunStatus.CANCELLED
        assert final.node_states["w"].status is NodeStatus.CANCELLED
        assert await app.resumes.resume(run.execution_id, "w", {}, via="api") == "ended"


async def test_a_run_failing_elsewhere_closes_its_waiting_nodes(tmp_path: Path) -> None:
    probe = ProbeNode()
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        wait(),
        {"id": "bad", "type": "probe", "config": {"hold": True, "fatal": True}},
    ]
    async with embedded(tmp_path, extra_nodes=[probe]) as app:
        wf = await app.create_workflow(definition(nodes, [("start", "w"), ("start", "bad")]))
        run, _ = await app.execute(wf.id, {}, wait=False)

        async def wait_node_parked() -> bool:
            stored = await app.store.get_run(run.execution_id, with_events=False)
            return stored is not None and "w" in stored.node_states

        await eventually(wait_node_parked)
        probe.release()
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        outcome = await app.resumes.resume(run.execution_id, "w", {}, via="api")
    assert final.status is RunStatus.ERROR
    assert final.node_states["w"].status is NodeStatus.CANCELLED
    assert outcome == "ended"


async def test_wait_configs_are_checked_on_save(tmp_path: Path) -> None:
    async with embedded(tmp_path, max_delay_seconds=60) as app:
        with pytest.raises(WorkflowInvalid) as too_long:
            await app.create_workflow(definition([wait(timeout_seconds=61)], []))
        with pytest.raises(WorkflowInvalid) as bad_branch:
            await app.create_workflow(
                definition(
                    [wait(), compose("x", a="1")], [{"from": "w", "to": "x", "branch": "maybe"}]
                )
            )
        ok = await app.create_workflow(
            definition(
                [
                    wait(timeout_seconds=60, on_timeout="branch"),
                    compose("x", a="1"),
                    compose("y", a="1"),
                ],
                [
                    {"from": "w", "to": "x", "branch": "resumed"},
                    {"from": "w", "to": "y", "branch": "timeout"},
                ],
            )
        )
    [issue] = too_long.value.issues
    assert (issue.node_id, issue.field) == ("w", "config.timeout_seconds")
    assert "DUCTWORK_MAX_DELAY_SECONDS" in issue.message
    [issue] = bad_branch.value.issues
    assert issue.node_id == "w" and "maybe" in issue.message
    assert ok.version == 1


async def test_a_resume_payload_holding_a_secret_is_masked(tmp_path: Path) -> None:
    async with embedded(tmp_path, secrets={"TOKEN": "s3cret-value-123"}) as app:
        wf = await app.create_workflow(
            definition([wait(message="{{ secrets.TOKEN | length }}"), end()], [("w", "end")])
        )
        run, _ = await app.execute(wf.id, {}, wait=False)
        await parked(app, run.execution_id)
        await app.resumes.resume(run.execution_id, "w", {"echo": "s3cret-value-123"}, via="api")
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS
    assert "s3cret-value-123" not in str(final.node_states["w"].output)


# -- signed links ------------------------------------------------------------------------


def test_links_round_trip_and_anything_altered_is_forged() -> None:
    key = generate_key()
    links = ResumeLinks(lambda: [key], "https://dw.example.com/")
    eid = "6f1c3a52-1f9e-4a57-9d0c-0d3f5b0f2a11"
    for node_id in ("w", "approve step", "ünï/cödé", "line\nbreak"):
        token = links.token(eid, node_id)
        assert links.verify(token) == (eid, node_id)
        assert links.url(eid, node_id) == f"https://dw.example.com/resume/{token}"
    token = links.token(eid, "w")
    payload, mac = token.split(".")
    other = links.token(eid, "x").split(".")[0]
    forged = [
        f"{other}.{mac}",  # another node, the first node's signature
        f"{payload}.{mac[:-2]}AA",
        f"{payload}.",
        payload,
        "",
        "a.b.c",
        "!!!.???",
        token + "x" * 2000,
        ResumeLinks(lambda: [generate_key()], "http://x").token(eid, "w"),  # another server
    ]
    for candidate in forged:
        with pytest.raises(ForgedLink):
            links.verify(candidate)


def test_links_survive_a_key_rotation_while_the_old_key_is_kept() -> None:
    old, new = generate_key(), generate_key()
    keys = [old]
    links = ResumeLinks(lambda: keys, "http://x")
    made_before = links.token("e", "w")
    keys[:] = [new, old]
    assert links.verify(made_before) == ("e", "w")
    assert links.token("e", "w") != made_before  # signed with the new key now
    keys[:] = [new]
    with pytest.raises(ForgedLink):
        links.verify(made_before)


async def test_concurrent_resumes_hand_the_payload_over_once(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition([wait(), end()], [("w", "end")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        await parked(app, run.execution_id)
        outcomes = await asyncio.gather(
            *(app.resumes.resume(run.execution_id, "w", {"i": i}, via="link") for i in range(5))
        )
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert sorted(outcomes) == ["resumed", "used", "used", "used", "used"]
    assert final.status is RunStatus.SUCCESS
    winner = outcomes.index("resumed")
    assert final.result == {"i": winner}


async def test_the_cli_shows_where_to_resume_a_waiting_node(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition([wait(), end()], [("w", "end")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        waiting = await parked(app, run.execution_id)
    url = waiting.node_states["w"].meta["resume_url"]
    from_snapshot = RunProgress(run_view(waiting, include_definition=True))
    assert from_snapshot.rows["w"].detail == f"resume: {url}"
    from_events = RunProgress(
        {"execution_id": run.execution_id, "status": "queued", "definition": wf.public()}
    )
    for event in waiting.events:
        from_events.apply(event)
    assert (from_events.rows["w"].status, from_events.rows["w"].detail) == (
        "waiting",
        f"resume: {url}",
    )
