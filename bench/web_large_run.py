"""A 10,000-node run with 20,002 events in the web run view (Chromium). Prints a table.

    python bench/web_large_run.py [--nodes 10000]

Drives Debian's Chromium through Playwright (as bench/web_ui.py does) against a live
ductwork serving the built app (`npm --prefix web run build` first). The run is
written straight to the store (every node completed, a started and a completed event
each), so the bench measures the view, not the engine. Rows:

- the run record over HTTP, whole (`GET /workflows/executions/{id}`) against its
  summary (`?events=false&node_states=false`) and the first page of its events;
- in the browser, from navigation to /ui/runs/{id}: the canvas drawn (a node card on
  screen and two idle animation frames), how many node cards are in the DOM (the run
  canvas renders only the visible ones past 150 nodes), the first page of the logs
  folded in ("Logs read for 500 of ..."), and the tab's JS heap then.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from bench.web_ui import CHROMIUM_ARGS, IDLE_FRAMES, UI_DIST, chain_workflow, sign_in
from tests.support.live_server import LiveServer

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    WorkflowDefinition,
    utcnow,
)
from ductwork.settings import Settings


def stored_run(live: LiveServer, workflow_id: str, definition: WorkflowDefinition) -> str:
    """A finished run of `definition` written to the store: every node completed."""
    start = utcnow()
    run = Run(
        execution_id=f"large-{int(time.time())}",
        workflow_id=workflow_id,
        workflow_version=1,
        definition=definition,
        created_at=start,
        status=RunStatus.SUCCESS,  # finished from the start: no worker picks it up
        start_time=start,
    )
    live.call(live.app.store.create_run(run))
    states: dict[str, NodeState] = {}
    events = [Event(seq=1, type="run_started", timestamp=start, data={})]
    for index, node in enumerate(definition.nodes):
        began = start + timedelta(milliseconds=index)
        ended = began + timedelta(microseconds=500)
        states[node.id] = NodeState(
            status=NodeStatus.COMPLETED,
            output={"i": index},
            latency_ms=0.5,
            attempts=1,
            started_at=began,
            finished_at=ended,
        )
        seq = len(events) + 1
        events.append(
            Event(
                seq=seq,
                type="node_started",
                node_id=node.id,
                timestamp=began,
                data={"type": node.type, "attempt": 1},
            )
        )
        events.append(
            Event(
                seq=seq + 1,
                type="node_completed",
                node_id=node.id,
                timestamp=ended,
                data={"output": {"i": index}, "cached": False, "latency_ms": 0.5},
            )
        )
    end = start + timedelta(milliseconds=len(definition.nodes) + 1)
    events.append(
        Event(seq=len(events) + 1, type="run_finished", timestamp=end, data={"status": "success"})
    )
    fields: dict[str, Any] = {"status": RunStatus.SUCCESS, "start_time": start, "end_time": end}
    checkpoint = Checkpoint(node_states=states, events=events, run_fields=fields)
    live.call(live.app.store.checkpoint(run.execution_id, checkpoint), timeout=300)
    return run.execution_id


def timed_get(client: Any, path: str, **params: Any) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    args = parser.parse_args()
    if not (UI_DIST / "index.html").is_file():
        sys.exit("build the app first: npm --prefix web run build")
    chromium = shutil.which("chromium") or sys.exit("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LiveServer(Settings(data_dir=Path(tmp))) as live,
        live.client(timeout=300) as client,
        sync_playwright() as playwright,
    ):
        key = client.post("/auth/keys", json={"name": "bench", "role": "admin"}).json()["key"]
        body = chain_workflow(args.nodes)
        created = client.post("/workflows/", json=body)
        created.raise_for_status()
        definition = WorkflowDefinition.model_validate(body)
        execution_id = stored_run(live, created.json()["id"], definition)
        events = 2 * args.nodes + 2
        path = f"/workflows/executions/{execution_id}"

        whole_ms, whole_bytes = timed_get(client, path)
        summary_ms, summary_bytes = timed_get(client, path, events="false", node_states="false")
        page_ms, page_bytes = timed_get(client, path + "/events/page", limit=500)
        label = f"{args.nodes:,}-node run, {events:,} events"
        rows.append(
            (f"{label}: whole record over HTTP", f"{whole_ms:.0f} ms, {whole_bytes >> 10} KiB", "")
        )
        rows.append(
            (
                f"{label}: summary (?events=false&node_states=false)",
                f"{summary_ms:.0f} ms, {summary_bytes >> 10} KiB",
                "",
            )
        )
        rows.append((f"{label}: first 500 events", f"{page_ms:.0f} ms, {page_bytes >> 10} KiB", ""))

        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, live.url, key)
        page.goto("about:blank")
        page.goto(f"{live.url}/ui/runs/{execution_id}", wait_until="commit")
        page.wait_for_function(
            "document.querySelectorAll('.react-flow__node').length > 0",
            timeout=300_000,
            polling="raf",
        )
        canvas_ms = page.evaluate(IDLE_FRAMES)
        cards = page.evaluate("document.querySelectorAll('.react-flow__node').length")
        history = "document.querySelector('.run-history')?.textContent ?? ''"
        page.wait_for_function(
            f"({history}).includes('Logs read for 500')",
            timeout=300_000,
            polling="raf",
        )
        logs_ms = page.evaluate("performance.now()")
        heap = page.evaluate(
            "performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN"
        )
        rows.append((f"{label}: run view, canvas drawn", f"{canvas_ms:.0f} ms", "from navigation"))
        rows.append((f"{label}: node cards in the DOM", f"{cards:,}", "visible ones only"))
        rows.append((f"{label}: run view, first log page in", f"{logs_ms:.0f} ms", ""))
        rows.append((f"{label}: tab JS heap", f"{heap:.0f} MiB", ""))
        browser.close()
    print_measures(rows)


if __name__ == "__main__":
    main()
