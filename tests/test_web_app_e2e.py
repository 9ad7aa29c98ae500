"""The web app used the way a person would, in real Chromium against a live ductwork.

A live server with the OpenAI-compatible stub as its LLM; Debian's Chromium driven by
Playwright (tests/support/browser.py). Each test starts from the sign-in page with an
API key and does one user story end to end: build the seed workflow on the canvas from
the palette (a validation problem pinned and fixed, saved, run, watched live, the AI
node's output opened, run again and cached); cancel a running delay; retry a failed
run; generate a draft from a prompt; the workflow and run lists; triggers set up in the
editor (a webhook called, its run's origin shown and filtered, a schedule's next times,
pause); a step that waits for a person approved. Screenshots go to `test-artifacts/`;
`web-editor.png` is the README's.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.browser import open_browser, shot, unnamed_controls
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def live(tmp_path: Path, llm: OpenAIStub) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path,
        llm_base_url=llm.base_url,
        llm_api_key="test-key",
        llm_max_retries=0,
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


@pytest.fixture
def page(live: LiveServer, admin: httpx.Client) -> Iterator[Any]:
    """A page signed in through the sign-in form's "API key" field."""
    key = admin.post("/auth/keys", json={"name": "browser", "role": "admin"}).json()["key"]
    for page in open_browser():
        page.goto(live.url + "/ui/sign-in")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Workflows", exact=True).wait_for()
        yield page
        assert page.console_errors == []


def chain(name: str, *middle: dict[str, Any]) -> dict[str, Any]:
    """A workflow start -> middle nodes in order -> end."""
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"name": name, "nodes": nodes, "edges": edges}


def node(page: Any, node_id: str) -> Any:
    return page.locator(f".react-flow__node[data-id='{node_id}']")


def card(page: Any, node_id: str) -> Any:
    return page.locator(f"[data-node-id='{node_id}']")


def drag_from_palette(page: Any, node_type: str, x: float, y: float) -> None:
    """Drag the palette's button onto the canvas at (x, y) of the pane."""
    source = page.get_by_role("button", name=f"Add {node_type} node")
    pane = page.locator(".react-flow__pane")
    source.drag_to(pane, target_position={"x": x, "y": y})


CONNECT_ATTEMPTS = 3


def connect(page: Any, source_id: str, target_id: str, handle: str | None = None) -> None:
    """Drag from a node's output handle to another node's input handle, until the edge
    is there: on a loaded machine the canvas may still be moving (a panel opening after
    the last drop) when the handles' boxes are read, and the drag then misses."""
    from playwright.sync_api import expect

    handle_selector = ".react-flow__handle.source" + (
        f"[data-handleid='{handle}']" if handle else ""
    )
    edges = page.locator(".react-flow__edge")
    before = edges.count()
    for attempt in range(CONNECT_ATTEMPTS):
        start = node(page, source_id).locator(handle_selector).bounding_box()
        end = node(page, target_id).locator(".react-flow__handle.target").bounding_box()
        page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
        page.mouse.down()
        page.mouse.move(end["x"] + 2, end["y"] + 2, steps=8)
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=4)
        page.mouse.up()
        try:
            expect(edges).to_have_count(before + 1, timeout=5_000)
            return
        except AssertionError:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise


def flow_position(page: Any, node_id: str) -> tuple[float, float]:
    """A node's position on the canvas (flow coordinates, not screen pixels): React Flow
    places each node with `transform: translate(xpx, ypx)` inside the viewport."""
    transform = node(page, node_id).evaluate("(el) => el.style.transform")
    match = re.fullmatch(r"translate\(([-\d.]+)px, ([-\d.]+)px\)", transform)
    assert match, transform
    return float(match[1]), float(match[2])


def node_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator(".react-flow__node").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('data-id'))"
    )
    return ids


def test_build_the_seed_workflow_on_the_canvas_run_it_live_and_see_the_cache(
    page: Any, live: LiveServer, admin: httpx.Client, llm: OpenAIStub
) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="New workflow").first.click()
    expect(page.get_by_role("region", name="Node palette")).to_be_visible()
    drag_from_palette(page, "start", 80, 200)
    drag_from_palette(page, "ai-processor", 380, 200)
    drag_from_palette(page, "end", 680, 200)
    expect(page.locator(".react-flow__node")).to_have_count(3)
    start_id, ai_id, end_id = node_ids(page)
    connect(page, start_id, ai_id)
    connect(page, ai_id, end_id)
    expect(page.locator(".react-flow__edge")).to_have_count(2)

    # The AI node has no prompt yet: the server's validation pins the problem on it.
    problems = page.get_by_role("region", name="Problems")
    expect(problems).to_contain_text("prompt")
    expect(card(page, ai_id).locator(".step-issues")).to_be_visible()

    node(page, ai_id).click()
    settings = page.get_by_role("region", name="Node settings")
    prompt = settings.get_by_role("textbox", name="Prompt", exact=True)
    prompt.click()
    page.keyboard.type("Say hello")
    expect(card(page, ai_id).locator(".step-issues")).to_have_count(0)
    expect(problems).not_to_contain_text("prompt")

    page.get_by_label("Workflow name").fill("Seed on the canvas")
    shot(page, "web-editor")
    assert unnamed_controls(page) == []
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/ui/workflows/(?!new$)[^/]+$"))
    workflow_id = page.url.rsplit("/", 1)[-1]
    saved = admin.get(f"/workflows/{workflow_id}").json()
    assert saved["name"] == "Seed on the canvas"
    assert [n["type"] for n in saved["nodes"]] == ["start", "ai-processor", "end"]
    assert saved["nodes"][1]["config"]["prompt"] == "Say hello"
    assert all(n.get("position") for n in saved["nodes"])
    assert {(e["from"], e["to"]) for e in saved["edges"]} == {(start_id, ai_id), (ai_id, end_id)}

    # Positions round-trip: a reload draws the nodes where they were saved. The new
    # workflow's editor reopens under its id (from the server, whole pixels) once the
    # URL has changed, so the saved position is awaited, not read at once.
    at = (saved["nodes"][1]["position"]["x"], saved["nodes"][1]["position"]["y"])
    page.wait_for_function(
        "([id, x, y]) => document.querySelector(`.react-flow__node[data-id='${id}']`)"
        "?.style.transform === `translate(${x}px, ${y}px)`",
        arg=[ai_id, *at],
    )
    before = flow_position(page, ai_id)
    assert before == at
    page.reload()
    node(page, ai_id).wait_for()
    assert flow_position(page, ai_id) == before

    # A slow model, so the page sees the AI node running and then turning completed live.
    llm.latency = 3.0
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/ui/runs/*")
    expect(card(page, ai_id)).to_have_attribute("data-status", "running")
    expect(card(page, end_id)).to_have_attribute("data-status", "queued")
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: success"
    )
    llm.latency = 0.0
    for node_id in (start_id, ai_id, end_id):
        expect(card(page, node_id)).to_have_attribute("data-status", "completed")
    node(page, ai_id).click()
    details = page.get_by_role("region", name="Node details")
    expect(details).to_contain_text("Echo: Say hello")
    shot(page, "web-run")
    assert unnamed_controls(page) == []
    assert llm.calls == 1

    # The same prompt again: the AI node answers from the cache, and says so.
    page.get_by_role("link", name="Open in editor").click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/ui/runs/*")
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: success"
    )
    expect(card(page, ai_id).get_by_text("cached")).to_be_visible()
    assert llm.calls == 1


def test_cancel_a_running_delay(page: Any, live: LiveServer, admin: httpx.Client) -> None:
    from playwright.sync_api import expect

    workflow = admin.post(
        "/workflows/",
        json=chain(
            "Slow",
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 120}},
        ),
    ).json()
    run = admin.post(f"/workflows/{workflow['id']}/execute", json={"async_execution": True})
    execution_id = run.json()["execution_id"]
    page.goto(f"{live.url}/ui/runs/{execution_id}")
    expect(card(page, "wait")).to_have_attribute("data-status", re.compile("running|waiting"))
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: cancelled"
    )
    expect(card(page, "end")).not_to_have_attribute("data-status", "completed")
    assert admin.get(f"/workflows/executions/{execution_id}").json()["status"] == "cancelled"


def test_retry_a_failed_run(
    page: Any, live: LiveServer, admin: httpx.Client, llm: OpenAIStub
) -> None:
    from playwright.sync_api import expect

    workflow = admin.post(
        "/workflows/",
        json=chain(
            "Flaky model",
            {"id": "ai", "type": "ai-processor", "config": {"prompt": "Hi"}},
        ),
    ).json()
    llm.fail_next(1, status=500, message="the provider is down")
    failed = admin.post(f"/workflows/{workflow['id']}/execute", json={}).json()
    assert failed["status"] == "error"

    # Yesterday's failed run, opened from the runs list.
    page.get_by_role("link", name="Runs").first.click()
    page.get_by_label("Status").select_option("error")
    page.get_by_role("link", name=f"Open run {failed['execution_id'][:8]}").click()
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: error"
    )
    expect(card(page, "ai")).to_have_attribute("data-status", "failed")
    page.get_by_role("button", name="Retry run").click()
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: success"
    )
    expect(card(page, "ai")).to_have_attribute("data-status", "completed")


def test_generate_a_draft_from_a_prompt(page: Any, llm: OpenAIStub) -> None:
    from playwright.sync_api import expect

    draft = {
        "name": "Summarise text",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "summarise", "type": "ai-processor", "config": {"prompt": "Sum up {{text}}"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "summarise"}, {"from": "summarise", "to": "end"}],
    }
    llm.queue_replies(json.dumps(draft))
    page.get_by_role("link", name="New workflow").first.click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_label("Describe the workflow").fill("Summarise a text with an LLM")
    page.get_by_role("button", name="Generate draft").click()
    expect(page.locator(".react-flow__node")).to_have_count(3)
    expect(card(page, "summarise")).to_be_visible()
    expect(page.get_by_label("Workflow name")).to_have_value("Summarise text")
    # A draft is not saved until the user says so.
    assert "/workflows/new" in page.url

    # A model that never gets it right: the last draft opens with its problem pinned.
    broken = dict(draft, nodes=[*draft["nodes"][:2], {"id": "end", "type": "finish-line"}])
    llm.queue_replies(*[json.dumps(broken)] * 3)
    page.expected_failures.add((422, "/ai/workflows/generate"))
    page.get_by_role("button", name="Generate").click()
    page.get_by_label("Describe the workflow").fill("Summarise a text, with a finish line")
    page.get_by_role("button", name="Generate draft").click()
    page.get_by_role("button", name="Replace").click()  # the first draft is unsaved
    expect(card(page, "end")).to_contain_text("finish-line")
    expect(card(page, "end").locator(".step-issues")).to_contain_text("finish-line")
    expect(page.get_by_role("region", name="Problems")).to_contain_text("unknown node type")


def test_lists_in_dark_mode_at_full_hd(live: LiveServer, admin: httpx.Client) -> None:
    from playwright.sync_api import expect

    key = admin.post("/auth/keys", json={"name": "dark", "role": "viewer"}).json()["key"]
    for name in ("Alpha", "Beta"):
        workflow = admin.post(
            "/workflows/",
            json=chain(name),
        ).json()
        admin.post(f"/workflows/{workflow['id']}/execute", json={})
    for page in open_browser(viewport=(1920, 1080), color_scheme="dark"):
        page.goto(live.url + "/ui/sign-in")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("link", name="Alpha")).to_be_visible()
        page.get_by_label("Search workflows").fill("bet")
        expect(page.get_by_role("link", name="Alpha")).to_have_count(0)
        expect(page.get_by_role("link", name="Beta")).to_be_visible()
        shot(page, "web-workflows-dark")
        background = "(el) => getComputedStyle(el).backgroundColor"
        # The system asks for dark; the Theme button pins light, then dark again.
        assert page.locator("html").evaluate(background) == "rgb(21, 23, 28)"
        theme = page.get_by_role("button", name="Theme")
        while "light" not in (theme.text_content() or ""):
            theme.click()
        assert page.locator("html").evaluate(background) == "rgb(247, 247, 248)"
        while "dark" not in (theme.text_content() or ""):
            theme.click()
        assert page.locator("html").evaluate(background) == "rgb(21, 23, 28)"
        assert unnamed_controls(page) == []
        page.get_by_role("link", name="Runs").first.click()
        expect(page.get_by_role("link", name="Beta")).to_be_visible()
        expect(page.get_by_role("link", name="Alpha")).to_be_visible()
        assert unnamed_controls(page) == []
        assert page.console_errors == []


def test_ai_tokens_appear_on_the_run_view_as_they_stream(
    page: Any, live: LiveServer, admin: httpx.Client, llm: OpenAIStub
) -> None:
    from playwright.sync_api import expect

    workflow = admin.post(
        "/workflows/",
        json=chain(
            "Streaming",
            {
                "id": "ai",
                "type": "ai-processor",
                "config": {"prompt": "one two three four five six seven", "stream": True},
            },
        ),
    ).json()
    llm.token_latency = 0.8  # ~6 s of streaming: long enough to watch it arrive
    run = admin.post(f"/workflows/{workflow['id']}/execute", json={"async_execution": True})
    page.goto(f"{live.url}/ui/runs/{run.json()['execution_id']}")
    node(page, "ai").click()
    details = page.get_by_role("region", name="Node details")
    # Part of the answer is on screen while the node is still running...
    expect(card(page, "ai")).to_have_attribute("data-status", "running")
    expect(card(page, "ai").locator(".step-tokens")).to_contain_text("Echo:")
    expect(details).to_contain_text("Echo:")
    assert "seven" not in (card(page, "ai").locator(".step-tokens").text_content() or "")
    # ...and all of it once the node completes.
    expect(card(page, "ai")).to_have_attribute("data-status", "completed")
    expect(details).to_contain_text("Echo: one two three four five six seven")
    llm.token_latency = 0.0


def test_triggers_from_the_editor_start_runs_that_say_so(
    page: Any, live: LiveServer, admin: httpx.Client
) -> None:
    """A webhook and a schedule added in the editor's workflow settings, a problem
    pinned on its field and fixed, an error workflow picked; saved, the schedule's next
    fire times and the webhook's URL copied and called; the run it starts shows its
    origin in the runs list (filtered by it) and on its page; paused, the URL refuses."""
    from playwright.sync_api import expect

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    alert = admin.post("/workflows/", json=chain("Alert on failure")).json()
    workflow = admin.post("/workflows/", json=chain("New signups")).json()
    page.goto(f"{live.url}/ui/workflows/{workflow['id']}")
    page.get_by_role("button", name="Triggers").click()
    settings = page.get_by_role("region", name="Workflow settings")
    expect(settings.get_by_role("heading", name="Workflow settings")).to_be_focused()

    settings.get_by_role("button", name="Add webhook").click()
    expect(settings.get_by_label("Path")).to_have_value("new-signups")
    settings.get_by_role("button", name="Add schedule").click()
    cron = settings.get_by_label("Cron expression")
    cron.fill("*/5 * *")
    # The server's problem, on the field and in Problems; a click there opens it.
    expect(settings.locator(".dw-field-errors")).to_contain_text("3 fields")
    problems = page.get_by_role("region", name="Problems")
    problem = problems.get_by_role("button", name=re.compile("trigger 2 · cron"))
    expect(problem).to_be_visible()
    cron.fill("0 9 * * *")
    expect(problem).to_have_count(0)
    settings.get_by_label("Error workflow").select_option(label="Alert on failure")
    page.locator(".editor-side").evaluate("(side) => side.scrollTo(0, 0)")
    shot(page, "web-triggers")
    assert unnamed_controls(page) == []

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved version 2.")).to_be_visible()
    saved = admin.get(f"/workflows/{workflow['id']}").json()
    assert saved["error_workflow_id"] == alert["id"]
    assert [t["type"] for t in saved["triggers"]] == ["webhook", "schedule"]
    assert saved["triggers"][1]["cron"] == "0 9 * * *"

    # The schedule's next five fire times, and the webhook's URL, copied.
    times = settings.get_by_role("list", name="Fires next at:")
    expect(times.get_by_role("listitem")).to_have_count(5)
    url = f"{live.url}/hooks/new-signups"
    expect(settings.get_by_role("textbox", name="URL of trigger 1")).to_have_value(url)
    settings.get_by_role("button", name="Copy the URL of trigger 1").click()
    expect(settings.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url

    started = httpx.post(url, json={"email": "ada@example.com"})
    assert started.status_code == 202, started.text
    execution_id = started.json()["execution_id"]

    page.get_by_role("link", name="Runs").first.click()
    page.get_by_label("Started by").select_option("webhook")
    expect(page).to_have_url(re.compile(r"trigger=webhook"))
    opener = page.get_by_role("link", name=f"Open run {execution_id[:8]}")
    row = page.get_by_role("row").filter(has=opener)
    expect(row).to_contain_text("POST /hooks/new-signups")
    assert unnamed_controls(page) == []
    opener.click()
    facts = page.locator(".run-facts")
    expect(facts).to_contain_text("Started by")
    expect(facts).to_contain_text("POST /hooks/new-signups")

    # Paused: the workflows list says so, and the URL starts nothing.
    page.get_by_role("link", name="Open in editor").click()
    page.get_by_role("button", name="Pause triggers").click()
    expect(page.get_by_role("button", name="Resume triggers")).to_be_visible()
    assert admin.get(f"/workflows/{workflow['id']}").json()["status"] == "paused"
    assert httpx.post(url, json={}).status_code == 409
    page.get_by_role("link", name="Workflows").first.click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="New signups"))
    expect(row.locator(".badge-paused")).to_have_text("paused")
    expect(row).to_contain_text("webhook · schedule")


def test_approve_a_step_that_waits_for_a_person(
    page: Any, live: LiveServer, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    workflow = admin.post(
        "/workflows/",
        json=chain(
            "Publish after approval",
            {"id": "approve", "type": "wait", "config": {"title": "Publish the draft?"}},
        ),
    ).json()
    run = admin.post(f"/workflows/{workflow['id']}/execute", json={"async_execution": True})
    execution_id = run.json()["execution_id"]
    page.goto(f"{live.url}/ui/runs/{execution_id}")
    waiting = page.get_by_role("region", name="Waiting for a person")
    expect(waiting).to_contain_text("Publish the draft?")
    expect(card(page, "approve")).to_have_attribute("data-status", "waiting")
    # The wait node's branches are handles; its plain edge to `end` is drawn too.
    expect(node(page, "approve").locator(".react-flow__handle.source")).to_have_count(3)
    expect(page.locator(".react-flow__edge")).to_have_count(2)
    link = waiting.get_by_role("textbox", name="Resume link of approve").input_value()
    assert "/resume/" in link
    shot(page, "web-waiting")
    assert unnamed_controls(page) == []
    waiting.get_by_role("button", name="Approve approve").click()
    expect(page.get_by_role("status").filter(has_text="Run status:")).to_have_text(
        "Run status: success"
    )
    expect(waiting).to_have_count(0)
    node(page, "approve").click()
    expect(page.get_by_role("region", name="Node details")).to_contain_text("approved:true")
    # The link was for one answer: it is spent now.
    assert httpx.post(link, json={"approved": False}).status_code == 410


def test_build_a_loop_with_a_body_node_and_save_it(page: Any, admin: httpx.Client) -> None:
    """A loop dropped on the canvas is a group; a node dropped into it joins its body
    (`parent`, a position relative to the loop), a node dragged out leaves it, and the
    saved workflow reopens with its body where it was."""
    from playwright.sync_api import expect

    types = {t["type"] for t in admin.get("/node-types").json()}
    assert "loop" in types
    page.get_by_role("link", name="New workflow").first.click()
    expect(page.get_by_role("region", name="Node palette")).to_be_visible()
    drag_from_palette(page, "loop", 200, 120)
    expect(page.locator(".react-flow__node-loop")).to_have_count(1)
    (loop_id,) = node_ids(page)
    box = node(page, loop_id).bounding_box()
    pane = page.locator(".react-flow__pane").bounding_box()
    # Into the group: a little right of and below its top-left corner.
    drag_from_palette(page, "transformer", box["x"] - pane["x"] + 150, box["y"] - pane["y"] + 130)
    below_loop = box["y"] - pane["y"] + box["height"] + 80
    drag_from_palette(page, "end", box["x"] - pane["x"] + 120, below_loop)
    expect(page.locator(".react-flow__node")).to_have_count(3)
    body_id = next(i for i in node_ids(page) if i.startswith("transformer"))
    end_id = next(i for i in node_ids(page) if i.startswith("end"))
    connect(page, loop_id, end_id)
    expect(page.locator(".react-flow__edge")).to_have_count(1)

    # The end node dragged into the loop and out again: back at the top level.
    end_box = node(page, end_id).bounding_box()
    page.mouse.move(end_box["x"] + 30, end_box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + box["height"] - 40, steps=10)
    page.mouse.up()
    # Dropped inside, the end node joined the body: its edge from the loop crossed the
    # boundary and went.
    expect(page.locator(".react-flow__edge")).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__edge")).to_have_count(1)

    # Selected by its title bar (its middle is the body node's).
    card(page, loop_id).locator(".step-loop-head").click()
    settings = page.get_by_role("region", name="Node settings")
    settings.get_by_role("textbox", name="Items", exact=True).fill("{{ input.rows }}")
    page.get_by_label("Workflow name").fill("Loop on the canvas")
    shot(page, "web-loop")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/ui/workflows/(?!new$)[^/]+$"))
    workflow_id = page.url.rsplit("/", 1)[-1]
    saved = admin.get(f"/workflows/{workflow_id}").json()
    by_id = {n["id"]: n for n in saved["nodes"]}
    assert by_id[body_id]["parent"] == loop_id
    assert by_id[end_id].get("parent") is None
    # Relative to the loop: inside its box.
    size = by_id[loop_id]["size"]
    at = by_id[body_id]["position"]
    assert 0 <= at["x"] < size["width"] and 0 <= at["y"] < size["height"]
    assert by_id[loop_id]["config"]["items"] == "{{ input.rows }}"

    # Reopened: the body node is drawn inside its loop, where it was (React Flow places
    # a child at its loop's position plus its own).
    page.reload()
    node(page, body_id).wait_for()
    loop_at = by_id[loop_id]["position"]
    assert flow_position(page, body_id) == (loop_at["x"] + at["x"], loop_at["y"] + at["y"])
    assert unnamed_controls(page) == []


CARDS_MOUNTED = """
window.__cardsMounted = 0;
const observe = ResizeObserver.prototype.observe;
ResizeObserver.prototype.observe = function (target, options) {
  if (target.classList?.contains("react-flow__node")) window.__cardsMounted += 1;
  return observe.call(this, target, options);
};
"""
"""Counts the node cards React Flow mounts (it observes each one's size once drawn)."""


def large_chain(length: int) -> dict[str, Any]:
    middle = [
        {"id": f"n{i}", "type": "transformer", "config": {"transform_type": "map"}}
        for i in range(length)
    ]
    return chain("Large", *middle)


def assert_only_cards_on_screen_drawn(page: Any) -> None:
    """Before declared handles, React Flow mounted every card once to measure it."""
    mounted = page.evaluate("window.__cardsMounted")
    assert 0 < mounted < 300, mounted
    assert page.locator(".react-flow__node").count() < 300
    # The edges between the drawn cards are drawn too.
    assert page.locator(".react-flow__edge").count() > 0


def test_a_large_run_draws_only_the_cards_on_screen(
    page: Any, live: LiveServer, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    workflow = admin.post("/workflows/", json=large_chain(1000)).json()
    run = admin.post(f"/workflows/{workflow['id']}/execute", json={}, timeout=120).json()
    assert run["status"] == "success"
    page.add_init_script(CARDS_MOUNTED)
    page.goto(f"{live.url}/ui/runs/{run['execution_id']}")
    expect(card(page, "start")).to_have_attribute("data-status", "completed")
    expect(node(page, "n0")).to_be_visible()
    assert_only_cards_on_screen_drawn(page)


def test_a_large_workflow_opens_in_the_editor_drawing_only_the_cards_on_screen(
    page: Any, live: LiveServer, admin: httpx.Client
) -> None:
    from playwright.sync_api import expect

    workflow = admin.post("/workflows/", json=large_chain(1000)).json()
    page.add_init_script(CARDS_MOUNTED)
    page.goto(f"{live.url}/ui/workflows/{workflow['id']}")
    expect(node(page, "start")).to_be_visible()
    assert_only_cards_on_screen_drawn(page)
    # The first card's edge is drawn (the editor's edge ids are `source->target`).
    assert page.locator(".react-flow__edge[data-id^='start->']").count() == 1
