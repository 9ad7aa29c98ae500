"""The web app in Chromium: editor time to interactive, live-status latency, tab memory.

Drives Debian's Chromium through Playwright (as tests/test_web_e2e.py does) against a
live ductwork serving the built app (`npm --prefix web run build` first) and prints a
table:

- **editor TTI, 300 nodes**: from navigation start of /ui/workflows/{id} to every node
  card drawn and the main thread answering (two animation frames in a row), median of
  5 cold loads of the page; and the frame times while panning that canvas (median, p99).
- **event-to-pixel, 100-node parallel run**: for each node, the time from the engine's
  `node_completed` event timestamp to the first animation frame after the node card's
  `data-status` turned `completed` in the run view (median, p99). Same machine, same
  clock: the span covers the commit, the live channel, the WebSocket, the fold and the
  render.
- **tab memory after 1,000 runs viewed**: the JS heap (after a forced GC) of one tab
  that opened 1,000 run pages one after another through the app's router.

    python bench/web_ui.py [--runs 1000] [--nodes 300] [--parallel 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import CHROMIUM_ARGS
from tests.support.live_server import LiveServer

from ductwork.settings import Settings

UI_DIST = Path(__file__).resolve().parents[1] / "src" / "ductwork" / "ui_dist"

# Installed in the page before the app: records when each node card's data-status
# changes, stamped at the first animation frame after the change (when it is painted).
STATUS_RECORDER = """
window.__statusChanges = [];
new MutationObserver((records) => {
  const seen = [];
  for (const record of records) {
    const el = record.target;
    if (!(el instanceof Element) || !el.hasAttribute('data-node-id')) continue;
    seen.push([el.getAttribute('data-node-id'), el.getAttribute('data-status')]);
  }
  if (seen.length === 0) return;
  requestAnimationFrame(() => {
    const painted = performance.timeOrigin + performance.now();
    for (const [id, status] of seen) window.__statusChanges.push([id, status, painted]);
  });
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-status'],
                       childList: true });
"""

IDLE_FRAMES = """
() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(
  () => resolve(performance.now()))))
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def chain_workflow(count: int) -> dict[str, Any]:
    """start -> (count - 2) transformers in a snake of rows -> end, with positions."""
    nodes: list[dict[str, Any]] = []
    per_row = 20
    for index in range(count):
        node_type = "start" if index == 0 else "end" if index == count - 1 else "transformer"
        row, column = divmod(index, per_row)
        x = (column if row % 2 == 0 else per_row - 1 - column) * 240
        nodes.append({"id": f"n{index}", "type": node_type, "position": {"x": x, "y": row * 140}})
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(count - 1)]
    return {"name": f"{count}-node chain", "nodes": nodes, "edges": edges}


def parallel_workflow(width: int) -> dict[str, Any]:
    """start -> delay 2 s (time to open the page) -> `width` staggered delays -> end."""
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
        {"id": "gate", "type": "delay", "config": {"delay_seconds": 2}},
        {"id": "end", "type": "end"},
    ]
    edges = [{"from": "start", "to": "gate"}]
    for index in range(width):
        node_id = f"p{index}"
        # Spread over ~2 s so the stream is steady rather than one burst.
        nodes.append({"id": node_id, "type": "delay", "config": {"delay_seconds": index * 0.02}})
        edges += [{"from": "gate", "to": node_id}, {"from": node_id, "to": "end"}]
    return {"name": f"{width} in parallel", "nodes": nodes, "edges": edges}


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url + "/ui/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Workflows", exact=True).wait_for()


def editor_tti(page: Any, url: str, workflow_id: str, nodes: int) -> tuple[float, list[float]]:
    """Median ms to an interactive editor over 5 loads, and pan frame times (ms)."""
    samples = []
    for _ in range(5):
        page.goto("about:blank")
        page.goto(f"{url}/ui/workflows/{workflow_id}", wait_until="commit")
        page.wait_for_function(
            f"document.querySelectorAll('.react-flow__node').length >= {nodes}",
            timeout=60_000,
            polling="raf",
        )
        samples.append(page.evaluate(IDLE_FRAMES))
    # Pan: drag the empty pane for ~1 s and record the frame intervals meanwhile.
    page.evaluate(
        """() => { window.__frames = []; let last = performance.now();
        const tick = (t) => { window.__frames.push(t - last); last = t;
          if (window.__frames.length < 400) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }"""
    )
    box = page.locator(".react-flow__pane").bounding_box()
    x, y = box["x"] + 5, box["y"] + box["height"] - 5
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(60):
        page.mouse.move(x + step * 8, y - step * 4)
    page.mouse.up()
    frames = page.evaluate("window.__frames.slice(1)")
    return statistics.median(samples), frames


def event_to_pixel(
    page: Any, client: Any, url: str, workflow_id: str
) -> tuple[list[float], list[float]]:
    """Per-node ms from the node_completed event to the painted status, and the frame
    intervals (ms) while the run streamed."""
    page.add_init_script(STATUS_RECORDER)
    run = client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
    execution_id = run.json()["execution_id"]
    page.goto(f"{url}/ui/runs/{execution_id}")
    page.evaluate(
        """() => { window.__frames = []; let last = performance.now();
        const tick = (t) => { window.__frames.push(t - last); last = t;
          if (!window.__stopFrames) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }"""
    )
    page.get_by_text("Run status: success").wait_for(timeout=120_000)
    page.evaluate(IDLE_FRAMES)
    frames = page.evaluate("window.__stopFrames = true; window.__frames.slice(1)")
    changes = page.evaluate("window.__statusChanges")
    painted: dict[str, float] = {}
    for node_id, status, at in changes:
        if status == "completed" and node_id not in painted:
            painted[node_id] = at
    # The run record's log lines carry each event's timestamp; "Completed in" is
    # node_completed's (src/ductwork/views.py).
    logs = client.get(f"/workflows/executions/{execution_id}").json()["logs"]
    latencies = []
    for line in logs:
        node_id = line.get("node_id") or ""
        if not line["message"].startswith("Completed in") or not node_id.startswith("p"):
            continue
        stamp = datetime.fromisoformat(line["timestamp"]).timestamp() * 1000
        if node_id in painted:
            latencies.append(painted[node_id] - stamp)
    return latencies, frames


def tab_memory(page: Any, client: Any, url: str, runs: int) -> list[tuple[int, float]]:
    """JS heap MB after a forced GC, as the tab views `runs` runs in turn."""
    workflow = client.post(
        "/workflows/",
        json={
            "name": "tiny",
            "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
            "edges": [{"from": "start", "to": "end"}],
        },
    ).json()
    ids = [
        client.post(f"/workflows/{workflow['id']}/execute", json={}).json()["execution_id"]
        for _ in range(runs)
    ]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(f"{url}/ui/runs/{ids[0]}")
    page.get_by_text("Run status: success").wait_for()
    points = []
    for index, execution_id in enumerate(ids, start=1):
        # Through the router, as a click on a link would: one page, one JS heap.
        page.evaluate(
            "(id) => { history.pushState({}, '', '/ui/runs/' + id);"
            " dispatchEvent(new PopStateEvent('popstate')); }",
            execution_id,
        )
        page.locator(f"[data-execution-id='{execution_id}']").get_by_text(
            "Run status: success"
        ).wait_for()
        if index in (1, 10, 100, runs // 2, runs):
            cdp.send("HeapProfiler.collectGarbage")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            points.append((index, metrics["JSHeapUsedSize"] / 1e6))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    if not (UI_DIST / "index.html").is_file():
        sys.exit("build the app first: npm --prefix web run build")
    chromium = shutil.which("chromium") or sys.exit("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        # The bench starts more runs a minute than the default execute rate limit allows.
        LiveServer(Settings(data_dir=Path(tmp), execute_rate_limit="100000/minute")) as live,
        live.client(timeout=120) as client,
        sync_playwright() as playwright,
    ):
        key = client.post("/auth/keys", json={"name": "bench", "role": "admin"}).json()["key"]
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        # Playwright polls predicates through eval, which the app's CSP forbids.
        context = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
        page = context.new_page()
        sign_in(page, live.url, key)

        chain = client.post("/workflows/", json=chain_workflow(args.nodes)).json()
        tti, frames = editor_tti(page, live.url, chain["id"], args.nodes)
        rows.append((f"editor TTI, {args.nodes} nodes (median of 5)", f"{tti:.0f} ms"))
        rows.append(
            (
                "pan frame time, median / p99",
                f"{statistics.median(frames):.1f} / {percentile(frames, 0.99):.1f} ms",
            )
        )

        for width in (args.parallel, 300):
            parallel = client.post("/workflows/", json=parallel_workflow(width)).json()
            stream_page = context.new_page()
            latencies, frames = event_to_pixel(stream_page, client, live.url, parallel["id"])
            rows.append(
                (
                    f"event-to-pixel, {width}-node parallel run (n={len(latencies)})",
                    f"median {statistics.median(latencies):.1f} ms, "
                    f"p99 {percentile(latencies, 0.99):.1f} ms",
                )
            )
            rows.append(
                (
                    f"frame time while {width} nodes stream, median / p99",
                    f"{statistics.median(frames):.1f} / {percentile(frames, 0.99):.1f} ms",
                )
            )
            stream_page.close()

        memory = tab_memory(page, client, live.url, args.runs)
        for viewed, megabytes in memory:
            rows.append((f"tab JS heap after {viewed} runs viewed", f"{megabytes:.1f} MB"))
        browser.close()

    load = os.getloadavg()
    print(f"\nweb app in Chromium ({os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f})")
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
