"""Resuming `wait` nodes over HTTP: signed links without a key, the approval page, the
approval email's link, a restart in between, the API route with a key, PostgreSQL.

Each test runs a real server (tests/support/live_server.py) on a real store.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.live_server import LiveServer, auth_headers
from tests.support.polling import wait_until

RUN_WAIT = 30.0
"""Seconds a test waits for a run to end: a deadline for a stuck run, not a speed check."""


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, email_backend="file", sync_wait_seconds=20, **overrides)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(settings(tmp_path)) as server:
        yield server


@pytest.fixture
def admin(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


@pytest.fixture
def anonymous(live: LiveServer) -> Iterator[httpx.Client]:
    """A client without credentials: what a person clicking a link in an email is."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def approval_workflow(**wait_config: Any) -> dict[str, Any]:
    return {
        "name": "approval",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {"id": "w", "type": "wait", "config": wait_config},
            {"id": "end", "type": "end", "config": {}},
        ],
        "edges": [{"from": "start", "to": "w"}, {"from": "w", "to": "end"}],
    }


def start_run(client: httpx.Client, workflow: dict[str, Any], **inputs: Any) -> str:
    created = client.post("/workflows/", json=workflow)
    assert created.status_code == 201, created.text
    started = client.post(
        f"/workflows/{created.json()['id']}/execute",
        json={"inputs": inputs, "async_execution": True},
    )
    assert started.status_code == 202, started.text
    execution_id: str = started.json()["execution_id"]
    return execution_id


def run_of(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    answer = client.get(f"/workflows/executions/{execution_id}")
    assert answer.status_code == 200, answer.text
    run: dict[str, Any] = answer.json()
    return run


def parked_link(client: httpx.Client, execution_id: str, node_id: str = "w") -> str:
    """The node's resume link, once the run is parked on it."""

    def waiting() -> bool:
        run = run_of(client, execution_id)
        state = run["node_states"].get(node_id, {})
        return run["status"] == "waiting" and state.get("status") == "waiting"

    wait_until(waiting, what=f"{node_id} waiting")
    url: str = run_of(client, execution_id)["node_states"][node_id]["resume_url"]
    return url


def finished(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    wait_until(
        lambda: run_of(client, execution_id)["status"] in ("success", "error", "cancelled"),
        within=RUN_WAIT,
        what="the run ended",
    )
    return run_of(client, execution_id)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_a_link_resumes_the_run_without_a_key_and_only_once(
    live: LiveServer, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    execution_id = start_run(admin, approval_workflow(title="Ship it?"))
    url = parked_link(admin, execution_id)
    assert url.startswith(f"{live.url}/resume/")

    answer = anonymous.post(url, json={"approved": True, "note": "ok"})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"execution_id": execution_id, "node_id": "w", "status": "resumed"}
    assert answer.headers["cache-control"] == "no-store"
    run = finished(admin, execution_id)
    assert run["status"] == "success", run["error"]
    assert run["node_states"]["w"]["output"] == {"approved": True, "note": "ok"}
    assert run["result"] == {"approved": True, "note": "ok"}

    again = anonymous.post(url, json={"approved": False})
    assert again.status_code == 410
    assert "single-use" in again.json()["detail"]
    assert run_of(admin, execution_id)["node_states"]["w"]["output"] == {
        "approved": True,
        "note": "ok",
    }


def test_a_forged_link_is_refused_without_asking_the_store(
    live: LiveServer, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    execution_id = start_run(admin, approval_workflow())
    url = parked_link(admin, execution_id)
    store = live.app.store
    asked: list[str] = []
    for name in ("get_run", "resume_node"):
        original = getattr(store, name)

        def counting(*args: Any, __original: Any = original, __name: str = name, **kw: Any) -> Any:
            asked.append(__name)
            return __original(*args, **kw)

        setattr(store, name, counting)
    payload, mac = url.rsplit("/", 1)[1].split(".")
    other_node = live.app.resume_links.token(execution_id, "end").split(".")[0]  # type: ignore[union-attr]
    forgeries = [
        f"{payload}.{mac[:-4]}AAAA",
        f"{other_node}.{mac}",
        "not-a-token",
        "x" * 3000,
    ]
    for token in forgeries:
        posted = anonymous.post(f"/resume/{token}", json={"approved": True})
        assert posted.status_code == 403, (token, posted.text)
        page = anonymous.get(f"/resume/{token}")
        assert page.status_code == 403
        assert "not valid" in page.text
    assert asked == []
    for name in ("get_run", "resume_node"):
        delattr(store, name)
    assert run_of(admin, execution_id)["status"] == "waiting"
    # Signed, but for a run that does not exist.
    unknown = live.app.resume_links.url("no-such-run", "w")  # type: ignore[union-attr]
    assert anonymous.post(path_of(unknown), json={}).status_code == 404


def test_the_page_shows_the_request_escaped_and_its_form_answers(
    live: LiveServer, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    workflow = approval_workflow(title="Publish {{ who }}'s draft?", message="{{ draft }}")
    draft = "<script>alert(1)</script>\nSecond line & more"
    execution_id = start_run(admin, workflow, who="<b>Ann</b>", draft=draft)
    url = parked_link(admin, execution_id)

    page = anonymous.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe" not in csp
    assert "<script>" not in page.text and "<b>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nSecond line &amp; more" in page.text
    assert "Publish &lt;b&gt;Ann&lt;/b&gt;&#x27;s draft?" in page.text
    assert '<form method="post">' in page.text
    assert 'value="approve"' in page.text and 'value="reject"' in page.text
    assert "http" not in page.text.replace(url, "")  # no external assets

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert anonymous.post(url, content=b"decision=maybe", headers=form).status_code == 422
    assert run_of(admin, execution_id)["status"] == "waiting"
    rejected = anonymous.post(url, data={"decision": "reject"})
    assert rejected.status_code == 200
    assert "rejected" in rejected.text
    assert rejected.headers["cache-control"] == "no-store"
    run = finished(admin, execution_id)
    assert run["node_states"]["w"]["output"] == {"approved": False}

    used = anonymous.get(url)
    assert used.status_code == 410
    assert "Already answered" in used.text
    assert anonymous.post(url, data={"decision": "approve"}).status_code == 410


def test_the_approval_emails_link_resumes_the_run_and_a_second_click_does_not(
    live: LiveServer, admin: httpx.Client, anonymous: httpx.Client, tmp_path: Path
) -> None:
    workflow = {
        "name": "approval by email",
        "nodes": [
            {
                "id": "ask",
                "type": "email",
                "config": {
                    "to": "boss@example.com",
                    "subject": "Approve the refund for {{ customer }}?",
                    "body": "Open {{ run.resume_url }} to approve or reject.",
                },
            },
            {"id": "w", "type": "wait", "config": {"title": "Refund for {{ customer }}"}},
            {"id": "ok", "type": "condition", "config": {"condition": "input.approved"}},
            {"id": "refund", "type": "end", "config": {}},
        ],
        "edges": [
            {"from": "ask", "to": "w"},
            {"from": "w", "to": "ok"},
            {"from": "ok", "to": "refund", "branch": "true"},
        ],
    }
    execution_id = start_run(admin, workflow, customer="Bo")
    stored_link = parked_link(admin, execution_id)
    [mail] = list((tmp_path / "outbox").glob("*.eml"))
    message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [link] = re.findall(r"https?://\S+", text)
    assert link == stored_link

    assert "Refund for Bo" in anonymous.get(link).text
    assert anonymous.post(link, data={"decision": "approve"}).status_code == 200
    run = finished(admin, execution_id)
    assert run["status"] == "success", run["error"]
    assert run["node_states"]["refund"]["status"] == "completed"
    second = anonymous.post(link, data={"decision": "reject"})
    assert second.status_code == 410
    assert "Already answered" in second.text


def test_a_link_still_resumes_the_run_after_a_restart(tmp_path: Path) -> None:
    with LiveServer(settings(tmp_path)) as first, first.client() as admin:
        execution_id = start_run(admin, approval_workflow())
        link = parked_link(admin, execution_id)
    with LiveServer(settings(tmp_path)) as second, second.client() as admin:
        # The first server's port is gone; the link's path is what carries the token.
        answer = httpx.post(f"{second.url}{path_of(link)}", json={"after": "restart"})
        assert answer.status_code == 202, answer.text
        run = finished(admin, execution_id)
    assert run["status"] == "success", run["error"]
    assert run["result"] == {"after": "restart"}


def test_the_api_route_resumes_with_a_key_that_may_run(
    live: LiveServer, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    execution_id = start_run(admin, approval_workflow())
    parked_link(admin, execution_id)
    route = f"/workflows/executions/{execution_id}/nodes/w/resume"
    viewer = admin.post("/auth/keys", json={"name": "v", "role": "viewer"}).json()["key"]

    assert anonymous.post(route, json={}).status_code == 401
    refused = anonymous.post(route, json={}, headers=auth_headers(viewer))
    assert refused.status_code == 403
    assert admin.post(route, json=[1, 2]).status_code == 422
    missing = admin.post(f"/workflows/executions/{execution_id}/nodes/nope/resume", json={})
    assert missing.status_code == 404
    not_a_wait = admin.post(f"/workflows/executions/{execution_id}/nodes/end/resume", json={})
    assert not_a_wait.status_code == 409
    assert "not a wait node" in not_a_wait.json()["detail"]
    assert run_of(admin, execution_id)["status"] == "waiting"

    answer = admin.post(route, json={"approved": True, "by": "api"})
    assert answer.status_code == 202, answer.text
    run = finished(admin, execution_id)
    assert run["result"] == {"approved": True, "by": "api"}
    assert admin.post(route, json={}).status_code == 410
    entries = admin.get("/audit", params={"action": "run.resume"}).json()["entries"]
    assert [(e["target"], e["details"]) for e in entries] == [
        (f"execution:{execution_id}", {"node_id": "w", "via": "api"})
    ]


def test_a_link_takes_a_json_object_of_bounded_size(tmp_path: Path) -> None:
    with (
        LiveServer(settings(tmp_path, max_inputs_bytes=1000)) as live,
        live.client() as admin,
        httpx.Client(base_url=live.url) as anonymous,
    ):
        execution_id = start_run(admin, approval_workflow())
        link = parked_link(admin, execution_id)
        assert anonymous.post(link, json=["not", "an", "object"]).status_code == 422
        assert anonymous.post(link, content=b"{oops", headers=_json()).status_code == 422
        plain = anonymous.post(link, content=b"yes", headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        assert anonymous.post(link, json={"text": "x" * 2000}).status_code == 413
        assert run_of(admin, execution_id)["status"] == "waiting"
        assert anonymous.post(link).status_code == 202  # no body: an empty object
        run = finished(admin, execution_id)
    assert run["result"] == {}


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


@pytest.mark.parametrize("store", ["postgresql", "mongodb"])
def test_a_link_resumes_a_run_on_a_shared_store(
    tmp_path: Path, store_url_factory: Callable[[str], str], store: str
) -> None:
    store_url = store_url_factory(store)
    with (
        LiveServer(settings(tmp_path, store_url=store_url)) as live,
        live.client() as admin,
    ):
        execution_id = start_run(admin, approval_workflow(timeout_seconds=3600))
        link = parked_link(admin, execution_id)
        assert httpx.post(link, json={"store": store}).status_code == 202
        assert httpx.post(link, json={"store": "again"}).status_code == 410
        run = finished(admin, execution_id)
    assert run["status"] == "success", run["error"]
    assert run["result"] == {"store": store}
