"""Inbound webhooks over HTTP: `/hooks/{path}` against a live embedded server.

Callers send no API key: the trigger's own auth is the gate. Every refusal is
checked to have started nothing (the workflow's runs are listed afterwards).
The pure parts (signature checks, body parsing) have unit tests at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ductwork.api.hooks import response_for
from ductwork.settings import Settings
from ductwork.triggers.hooks import HookAnswer, HookRefused, Unauthorized, parse_body, verify
from ductwork.triggers.spec import HmacAuth, TokenAuth
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until

TOKEN = "hook-token-0123456789"
GITHUB_SECRET = "github-signing-secret-42"
STRIPE_SECRET = "whsec_stripe_signing_secret"
ENV_SECRET = "secret-from-the-environment"

_paths = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hooks"),
        secrets={
            "env_secret": SecretStr(ENV_SECRET),
            "blank_at_call": SecretStr(""),
            "blank_at_save": SecretStr(""),
        },
        hook_sync_wait_seconds=20,
    )
    with LiveServer(settings) as live:
        with live.client() as admin:
            for name, value in (
                ("hook_token", TOKEN),
                ("github_secret", GITHUB_SECRET),
                ("stripe_secret", STRIPE_SECRET),
            ):
                created = admin.post(
                    "/credentials", json={"name": name, "type": "secret", "data": {"value": value}}
                )
                assert created.status_code == 201, created.text
            created = admin.post(
                "/credentials",
                json={"name": "a_bearer", "type": "bearer", "data": {"token": TOKEN}},
            )
            assert created.status_code == 201, created.text
        yield live


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    """Sends the admin API key (saving workflows, reading runs)."""
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def caller(server: LiveServer) -> Iterator[httpx.Client]:
    """Sends no API key: what a webhook sender is."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def unique(prefix: str = "hook") -> str:
    """A path no other test uses (rate limits and the route cache are per path)."""
    return f"{prefix}-{next(_paths)}"


def webhook(path: str, **options: Any) -> dict[str, Any]:
    return {"type": "webhook", "path": path, "auth": {"type": "none"}, **options}


def hook_workflow(
    trigger: dict[str, Any],
    *,
    mapping: dict[str, str] | None = None,
    end: dict[str, Any] | None = None,
    middle: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """start -> shape (transformer compose over the inputs) -> [middle ...] -> end."""
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {
            "id": "shape",
            "type": "transformer",
            "config": {
                "transform_type": "compose",
                "mapping": mapping or {"greeting": "'hello ' ~ body.name"},
            },
        },
        *(middle or []),
        {"id": "end", "type": "end", "config": end or {}},
    ]
    chain = [node["id"] for node in nodes]
    return {
        "name": "hooked",
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(chain)],
        "triggers": [trigger],
        **fields,
    }


def save(admin: httpx.Client, definition: dict[str, Any]) -> str:
    created = admin.post("/workflows/", json=definition)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def add_secret(admin: httpx.Client, name: str, value: str) -> None:
    created = admin.post(
        "/credentials", json={"name": name, "type": "secret", "data": {"value": value}}
    )
    assert created.status_code == 201, created.text


def runs_of(admin: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    listed = admin.get(f"/workflows/{workflow_id}/executions")
    assert listed.status_code == 200, listed.text
    runs: list[dict[str, Any]] = listed.json()
    return runs


def finished(admin: httpx.Client, execution_id: str) -> dict[str, Any]:
    """The run once it has ended."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(admin.get(f"/workflows/executions/{execution_id}").json())
        return seen["status"] in ("success", "error", "cancelled")

    wait_until(done, within=30, what=f"run {execution_id} to end")
    return seen


def github_signature(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stripe_signature(body: bytes, at: int, secret: str = STRIPE_SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


# Answers ----------------------------------------------------------------------------


def test_sync_hook_answers_with_the_result_and_records_inputs_and_trigger(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("new-signup")
    workflow_id = save(
        admin,
        hook_workflow(
            webhook(
                path,
                respond="sync",
                headers=["X-Source", "X-Absent"],
                inputs={"team": "growth", "body": "replaced"},
            ),
            mapping={"greeting": "'hello ' ~ body.name", "team": "team", "ref": "query.ref"},
        ),
    )
    answer = caller.post(
        f"/hooks/{path}?ref=ad&tag=a&tag=b",
        json={"name": "Ada"},
        headers={"X-Source": "landing", "X-Other": "not copied"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"greeting": "hello Ada", "team": "growth", "ref": "ad"}
    assert answer.headers["content-security-policy"] == "sandbox"
    assert answer.headers["x-content-type-options"] == "nosniff"
    execution_id = answer.headers["x-execution-id"]

    run = admin.get(f"/workflows/executions/{execution_id}").json()
    assert run["workflow_id"] == workflow_id
    assert run["trigger"] == {"type": "webhook", "path": path, "method": "POST"}
    assert run["variables"] == {
        "team": "growth",
        "body": {"name": "Ada"},  # the request's body wins over the trigger's input
        "query": {"ref": "ad", "tag": ["a", "b"]},
        "headers": {"x-source": "landing"},
        "method": "POST",
        "path": path,
    }
    listed = admin.get("/workflows/executions", params={"trigger": "webhook"}).json()
    assert execution_id in [item["execution_id"] for item in listed]


def test_async_hook_answers_202_at_once_with_where_to_look(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("async")
    save(admin, hook_workflow(webhook(path, respond="async")))
    answer = caller.post(f"/hooks/{path}", json={"name": "Bo"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"execution_id", "status"}
    assert answer.headers["location"] == f"/workflows/executions/{body['execution_id']}"
    assert finished(admin, body["execution_id"])["result"] == {"greeting": "hello Bo"}


def test_a_slash_around_the_path_and_other_methods(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("nested") + "/deeper"
    save(
        admin,
        hook_workflow(
            webhook(f"/{path}/", respond="sync", methods=["GET", "DELETE"]),
            mapping={"method": "method", "body": "body", "q": "query"},
        ),
    )
    got = caller.get(f"/hooks/{path}/", params={"x": "1"})
    assert got.status_code == 200, got.text
    assert got.json() == {"method": "GET", "body": None, "q": {"x": "1"}}
    deleted = caller.delete(f"/hooks/{path}")
    assert deleted.json()["method"] == "DELETE"


def test_a_failed_run_is_500_with_the_error_summary(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("fails")
    save(
        admin,
        hook_workflow(webhook(path, respond="sync"), mapping={"x": "body.missing.deeper"}),
    )
    answer = caller.post(f"/hooks/{path}", json={"name": "Ada"})
    assert answer.status_code == 500, answer.text
    body = answer.json()
    assert set(body) == {"execution_id", "status", "error"}
    assert body["status"] == "error"
    assert "missing" in body["error"]
    assert "Traceback" not in answer.text and 'File "' not in answer.text


def test_a_run_longer_than_the_sync_limit_is_202_with_its_id(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("slow")
    save(
        admin,
        hook_workflow(
            webhook(path, respond="sync", sync_timeout_seconds=0.2),
            middle=[{"id": "wait", "type": "delay", "config": {"delay_seconds": 3}}],
        ),
    )
    answer = caller.post(f"/hooks/{path}", json={"name": "Ada"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] in ("queued", "running", "waiting")
    assert answer.headers["location"].endswith(answer.json()["execution_id"])


def test_the_end_node_sets_status_code_and_headers(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("created")
    save(
        admin,
        hook_workflow(
            webhook(path, respond="sync"),
            end={
                "status_code": "{{ 201 if body.new else 200 }}",
                "headers": {"Location": "/things/{{ body.name }}", "Cache-Control": "no-store"},
            },
        ),
    )
    created = caller.post(f"/hooks/{path}", json={"name": "ada", "new": True})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/things/ada"
    assert created.headers["cache-control"] == "no-store"
    assert created.json() == {"greeting": "hello ada"}
    again = caller.post(f"/hooks/{path}", json={"name": "ada", "new": False})
    assert again.status_code == 200


def test_the_end_node_may_answer_text_or_nothing(admin: httpx.Client, caller: httpx.Client) -> None:
    text_path = unique("text")
    save(
        admin,
        hook_workflow(
            webhook(text_path, respond="sync"),
            end={
                "output": "<b>{{ body.name }}</b>",
                "headers": {"Content-Type": "text/html; charset=utf-8"},
            },
        ),
    )
    answer = caller.post(f"/hooks/{text_path}", json={"name": "<script>x</script>"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    # Templates escape nothing in a plain field, but the answer is a sandboxed document.
    assert answer.headers["content-security-policy"] == "sandbox"
    assert answer.text.startswith("<b>")

    problem_path = unique("problem")
    save(
        admin,
        hook_workflow(
            webhook(problem_path, respond="sync"),
            end={"status_code": 422, "headers": {"Content-Type": "application/problem+json"}},
        ),
    )
    problem = caller.post(f"/hooks/{problem_path}", json={"name": "x"})
    assert problem.status_code == 422
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json() == {"greeting": "hello x"}

    empty_path = unique("empty")
    save(admin, hook_workflow(webhook(empty_path, respond="sync"), end={"status_code": 204}))
    empty = caller.post(f"/hooks/{empty_path}", json={"name": "x"})
    assert empty.status_code == 204
    assert empty.content == b""
    assert "content-type" not in empty.headers


def test_the_end_node_refuses_headers_the_server_owns(admin: httpx.Client) -> None:
    for name in ("Set-Cookie", "Transfer-Encoding", "Connection", "Access-Control-Allow-Origin"):
        refused = admin.post(
            "/workflows/",
            json=hook_workflow(webhook(unique()), end={"headers": {name: "x"}}),
        )
        assert refused.status_code == 422, name
        [issue] = refused.json()["detail"]
        assert issue["node_id"] == "end" and issue["field"] == "config.headers", issue
        assert name in issue["message"]


def test_the_end_node_cannot_loosen_the_protective_headers(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    """An end node's CSP or nosniff would let a caller's script run on the server's
    origin (the answer echoes the body): refused at save."""
    for name in (
        "Content-Security-Policy",
        "content-security-policy-report-only",
        "X-Content-Type-Options",
    ):
        refused = admin.post(
            "/workflows/",
            json=hook_workflow(
                webhook(unique(), respond="sync"),
                end={
                    "output": "{{ body.html }}",
                    "headers": {"Content-Type": "text/html", name: "default-src * 'unsafe-inline'"},
                },
            ),
        )
        assert refused.status_code == 422, refused.text
        [issue] = refused.json()["detail"]
        assert issue["node_id"] == "end" and issue["field"] == "config.headers", issue
        assert name in issue["message"] and "set by the server" in issue["message"]


def test_the_protective_headers_win_over_an_answers_own() -> None:
    """Even a stored end node from before the save check cannot replace them (in any
    case of the name)."""
    answer = HookAnswer(
        200,
        b"<script>x</script>",
        {"content-security-policy": "default-src *", "X-Content-Type-Options": "sniff"},
        media_type="text/html",
    )
    sent = [(k.decode(), v.decode()) for k, v in response_for(answer, "").raw_headers]
    csp = [v for k, v in sent if k.lower() == "content-security-policy"]
    nosniff = [v for k, v in sent if k.lower() == "x-content-type-options"]
    assert csp == ["sandbox"] and nosniff == ["nosniff"], sent


def test_end_node_header_values_must_be_latin_1(admin: httpx.Client, caller: httpx.Client) -> None:
    refused = admin.post(
        "/workflows/",
        json=hook_workflow(webhook(unique(), respond="sync"), end={"headers": {"X-Name": "日本"}}),
    )
    assert refused.status_code == 422, refused.text
    [issue] = refused.json()["detail"]
    assert issue["field"] == "config.headers" and "X-Name" in issue["message"], issue
    assert "Latin-1" in issue["message"]

    path = unique("named")
    save(
        admin,
        hook_workflow(
            webhook(path, respond="sync"), end={"headers": {"X-Name": "{{ body.name }}"}}
        ),
    )
    fine = caller.post(f"/hooks/{path}", json={"name": "Zoë"})  # Latin-1 is sendable
    assert fine.status_code == 200, fine.text
    assert fine.headers.raw and fine.headers.get("x-name", "").encode("latin-1") == "Zoë".encode(
        "latin-1"
    )
    failed = caller.post(f"/hooks/{path}", json={"name": "Zoë ☃"})
    assert failed.status_code == 500, failed.text
    body = failed.json()  # the failed run's answer, not an unhandled error
    assert body["status"] == "error" and body["execution_id"] == failed.headers["x-execution-id"]
    assert "X-Name" in body["error"] and "Latin-1" in body["error"]
    assert finished(admin, body["execution_id"])["status"] == "error"


# Refusals that start nothing ----------------------------------------------------------


def test_unknown_path_wrong_method_and_paused_workflow_start_nothing(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    assert caller.post(f"/hooks/{unique('nobody')}", json={}).status_code == 404
    assert caller.post("/hooks/not a valid path!", json={}).status_code == 404

    path = unique("post-only")
    definition = hook_workflow(webhook(path, methods=["POST", "PUT"]))
    workflow_id = save(admin, definition)
    wrong = caller.get(f"/hooks/{path}")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST, PUT"
    assert "GET" in wrong.json()["detail"]

    paused = admin.put(f"/workflows/{workflow_id}", json={**definition, "status": "paused"})
    assert paused.status_code == 200, paused.text
    refused = caller.post(f"/hooks/{path}", json={"name": "x"})
    assert refused.status_code == 409
    assert "paused" in refused.json()["detail"]
    assert workflow_id not in refused.text  # anonymous callers learn no workflow id
    assert runs_of(admin, workflow_id) == []

    resumed = admin.put(f"/workflows/{workflow_id}", json=definition)
    assert resumed.status_code == 200
    assert caller.post(f"/hooks/{path}", json={"name": "x"}).status_code == 202


def test_a_changed_path_is_served_at_once_and_the_old_one_is_gone(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    old, new = unique("old"), unique("new")
    workflow_id = save(admin, hook_workflow(webhook(old, respond="sync")))
    assert caller.post(f"/hooks/{old}", json={"name": "a"}).status_code == 200  # now cached
    updated = admin.put(
        f"/workflows/{workflow_id}", json=hook_workflow(webhook(new, respond="sync"))
    )
    assert updated.status_code == 200, updated.text
    assert caller.post(f"/hooks/{old}", json={"name": "a"}).status_code == 404
    assert caller.post(f"/hooks/{new}", json={"name": "a"}).status_code == 200
    assert admin.delete(f"/workflows/{workflow_id}").status_code == 204
    assert caller.post(f"/hooks/{new}", json={"name": "a"}).status_code == 404


def test_a_path_another_workflow_serves_is_422_on_the_trigger(admin: httpx.Client) -> None:
    path = unique("taken")
    save(admin, hook_workflow(webhook(path)))
    second = hook_workflow(webhook(f"{path}/"))
    second["triggers"].insert(0, {"type": "schedule", "every_seconds": 3600})
    refused = admin.post("/workflows/", json=second)
    assert refused.status_code == 422, refused.text
    [issue] = refused.json()["detail"]
    assert issue["field"] == "triggers[1].path"
    assert f"/hooks/{path}" in issue["message"]


def test_too_large_bodies_are_413_whether_announced_or_chunked(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("small")
    workflow_id = save(admin, hook_workflow(webhook(path, max_body_bytes=100)))
    announced = caller.post(
        f"/hooks/{path}", content=b"x" * 101, headers={"Content-Type": "text/plain"}
    )
    assert announced.status_code == 413
    assert "100 bytes" in announced.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 20

    chunked = caller.post(
        f"/hooks/{path}", content=chunks(), headers={"Content-Type": "text/plain"}
    )
    assert chunked.status_code == 413
    assert runs_of(admin, workflow_id) == []
    fits = caller.post(f"/hooks/{path}", content=b"x" * 100, headers={"Content-Type": "text/plain"})
    assert fits.status_code == 202, fits.text


def test_a_body_whose_inputs_outgrow_the_inputs_limit_is_413(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("escapes")
    workflow_id = save(admin, hook_workflow(webhook(path)))
    # 200 KB of control characters: each is 6 bytes of JSON (\u0001), past 1 MB of inputs.
    answer = caller.post(
        f"/hooks/{path}", content=b"\x01" * 200_000, headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 413, answer.text
    assert "DUCTWORK_MAX_INPUTS_BYTES" in answer.json()["detail"]
    assert runs_of(admin, workflow_id) == []


def test_calls_past_the_path_rate_are_429_with_retry_after(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("limited")
    workflow_id = save(admin, hook_workflow(webhook(path, rate_limit="2/minute")))
    other = unique("unlimited")
    save(admin, hook_workflow(webhook(other)))
    assert [caller.post(f"/hooks/{path}", json={}).status_code for _ in range(2)] == [202, 202]
    refused = caller.post(f"/hooks/{path}", json={})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "2 per 1 minute" in refused.json()["detail"]
    assert caller.post(f"/hooks/{other}", json={}).status_code == 202  # counted per path
    assert len(runs_of(admin, workflow_id)) == 2


def test_bad_bodies_are_400_naming_the_problem(admin: httpx.Client, caller: httpx.Client) -> None:
    path = unique("strict")
    workflow_id = save(admin, hook_workflow(webhook(path)))
    broken = caller.post(
        f"/hooks/{path}", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("the body is invalid JSON")
    nul = caller.post(
        f"/hooks/{path}",
        content=b'{"a": {"b": "x\\u0000"}}',
        headers={"Content-Type": "application/json"},
    )
    assert nul.status_code == 400
    assert nul.json()["detail"].startswith("body.a.b: contains a NUL character")
    binary = caller.post(
        f"/hooks/{path}", content=b"\xff\xfe\x00", headers={"Content-Type": "image/png"}
    )
    assert binary.status_code == 415
    query = caller.post(f"/hooks/{path}?q=%00", json={})
    assert query.status_code == 400
    assert query.json()["detail"].startswith("query.q:")
    too_long = caller.post(f"/hooks/{path}", json={}, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 400
    assert runs_of(admin, workflow_id) == []


def test_charsets_that_are_not_text_are_415(admin: httpx.Client, caller: httpx.Client) -> None:
    path = unique("charsets")
    workflow_id = save(admin, hook_workflow(webhook(path)))
    for charset in ("undefined", "unicode_escape", "palmos", "rot13", "hex", "idna", "klingon"):
        refused = caller.post(
            f"/hooks/{path}",
            content=b"hello",
            headers={"Content-Type": f"text/plain; charset={charset}"},
        )
        assert refused.status_code == 415, (charset, refused.text)
        assert charset in refused.json()["detail"]
    assert runs_of(admin, workflow_id) == []
    utf16 = caller.post(
        f"/hooks/{path}",
        content="hé".encode("utf-16"),
        headers={"Content-Type": "text/plain; charset=utf-16"},
    )
    assert utf16.status_code == 202, utf16.text


def test_form_and_text_bodies_become_inputs(admin: httpx.Client, caller: httpx.Client) -> None:
    path = unique("forms")
    save(admin, hook_workflow(webhook(path, respond="sync"), mapping={"got": "body"}))
    form = caller.post(f"/hooks/{path}", data={"name": "Ada", "tags": ["a", "b"], "empty": ""})
    assert form.status_code == 200, form.text
    assert form.json() == {"got": {"name": "Ada", "tags": ["a", "b"], "empty": ""}}
    text = caller.post(
        f"/hooks/{path}", content="plain words ✓", headers={"Content-Type": "text/plain"}
    )
    assert text.json() == {"got": "plain words ✓"}
    latin = caller.post(
        f"/hooks/{path}",
        content="café".encode("latin-1"),
        headers={"Content-Type": "text/plain; charset=latin-1"},
    )
    assert latin.json() == {"got": "café"}


def test_an_idempotency_key_starts_one_run(admin: httpx.Client, caller: httpx.Client) -> None:
    path = unique("once")
    workflow_id = save(admin, hook_workflow(webhook(path, respond="sync")))
    headers = {"Idempotency-Key": "delivery-1"}
    first = caller.post(f"/hooks/{path}", json={"name": "a"}, headers=headers)
    again = caller.post(f"/hooks/{path}", json={"name": "b"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"greeting": "hello a"}
    assert again.headers["x-execution-id"] == first.headers["x-execution-id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = caller.post(f"/hooks/{path}", json={"name": "c"}, headers={"Idempotency-Key": "2"})
    assert other.json() == {"greeting": "hello c"}
    assert len(runs_of(admin, workflow_id)) == 2


# Auth ----------------------------------------------------------------------------------


def test_token_auth(
    admin: httpx.Client, caller: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    path = unique("token")
    auth = {"type": "token", "credential": "hook_token"}
    workflow_id = save(admin, hook_workflow(webhook(path, respond="sync", auth=auth)))
    with caplog.at_level(logging.INFO, logger="ductwork"):
        missing = caller.post(f"/hooks/{path}", json={"name": "a"})
        wrong = caller.post(
            f"/hooks/{path}", json={"name": "a"}, headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        scheme = caller.post(
            f"/hooks/{path}", json={"name": "a"}, headers={"Authorization": f"Basic {TOKEN}"}
        )
    for refused in (missing, wrong, scheme):
        assert refused.status_code == 401, refused.text
        assert TOKEN not in refused.text
    assert "Authorization header is missing" in missing.json()["detail"]
    assert runs_of(admin, workflow_id) == []
    assert TOKEN not in caplog.text
    assert "refused" in caplog.text

    right = caller.post(
        f"/hooks/{path}", json={"name": "a"}, headers={"authorization": f"bearer {TOKEN}"}
    )
    assert right.status_code == 200, right.text
    run = admin.get(f"/workflows/executions/{right.headers['x-execution-id']}").text
    assert TOKEN not in run


def test_a_wrongly_signed_github_style_request_is_401_and_starts_nothing(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("github")
    auth = {"type": "hmac", "credential": "github_secret"}  # X-Hub-Signature-256: sha256=...
    workflow_id = save(
        admin,
        hook_workflow(
            webhook(path, respond="sync", auth=auth, headers=["X-GitHub-Event"]),
            mapping={"event": "headers['x-github-event']", "ref": "body.ref"},
        ),
    )
    body = b'{"ref": "refs/heads/main"}'
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    forged = {
        "unsigned": headers,
        "wrong secret": {**headers, "X-Hub-Signature-256": github_signature(body, "guess")},
        "no prefix": {**headers, "X-Hub-Signature-256": github_signature(body)[7:]},
        "tampered": {**headers, "X-Hub-Signature-256": github_signature(b'{"ref": "x"}')},
    }
    for what, sent in forged.items():
        refused = caller.post(f"/hooks/{path}", content=body, headers=sent)
        assert refused.status_code == 401, what
        assert GITHUB_SECRET not in refused.text
    assert runs_of(admin, workflow_id) == []

    upper_hex = "sha256=" + github_signature(body).removeprefix("sha256=").upper()
    signed = caller.post(
        f"/hooks/{path}", content=body, headers={**headers, "X-Hub-Signature-256": upper_hex}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json() == {"event": "push", "ref": "refs/heads/main"}
    assert len(runs_of(admin, workflow_id)) == 1


def test_stripe_style_signatures_refuse_old_timestamps(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("stripe")
    auth = {
        "type": "hmac",
        "credential": "stripe_secret",
        "style": "stripe",
        "header": "Stripe-Signature",
        "tolerance_seconds": 300,
    }
    workflow_id = save(admin, hook_workflow(webhook(path, auth=auth)))
    body = b'{"name": "evt_1"}'
    json_type = {"Content-Type": "application/json"}
    old = stripe_signature(body, int(time.time()) - 3600)
    replayed = caller.post(
        f"/hooks/{path}", content=body, headers={**json_type, "Stripe-Signature": old}
    )
    assert replayed.status_code == 401
    assert "replay" in replayed.json()["detail"]
    garbled = caller.post(
        f"/hooks/{path}", content=body, headers={**json_type, "Stripe-Signature": "v1=abc"}
    )
    assert garbled.status_code == 401
    assert runs_of(admin, workflow_id) == []

    now = int(time.time())
    # Stripe sends a v1 per active secret while one is being rolled: any may match.
    header = f"t={now},v1={'0' * 64},{stripe_signature(body, now).split(',')[1]},v0=ignored"
    accepted = caller.post(
        f"/hooks/{path}", content=body, headers={**json_type, "Stripe-Signature": header}
    )
    assert accepted.status_code == 202, accepted.text


def test_plain_hmac_with_timestamp_base64_and_an_environment_secret(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    path = unique("signed-ts")
    auth = {
        "type": "hmac",
        "credential": "env_secret",
        "header": "X-Signature",
        "prefix": "",
        "encoding": "base64",
        "algorithm": "sha512",
        "timestamp_header": "X-Timestamp",
        "tolerance_seconds": 60,
    }
    save(admin, hook_workflow(webhook(path, respond="sync", auth=auth)))
    body = b'{"name": "Eve"}'

    def signed(at: int) -> dict[str, str]:
        mac = hmac.new(ENV_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha512).digest()
        return {
            "Content-Type": "application/json",
            "X-Timestamp": str(at),
            "X-Signature": base64.b64encode(mac).decode(),
        }

    assert caller.post(f"/hooks/{path}", content=body, headers=signed(int(time.time()))).json() == {
        "greeting": "hello Eve"
    }
    stale = caller.post(f"/hooks/{path}", content=body, headers=signed(int(time.time()) - 120))
    assert stale.status_code == 401
    moved = {**signed(int(time.time())), "X-Timestamp": str(int(time.time()) + 1)}
    assert caller.post(f"/hooks/{path}", content=body, headers=moved).status_code == 401


def test_saving_checks_the_hook_credential(admin: httpx.Client) -> None:
    cases = {
        "nope": "no credential named 'nope'",
        "a_bearer": "of type bearer",
    }
    for name, message in cases.items():
        refused = admin.post(
            "/workflows/",
            json=hook_workflow(webhook(unique(), auth={"type": "token", "credential": name})),
        )
        assert refused.status_code == 422, refused.text
        [issue] = refused.json()["detail"]
        assert issue["field"] == "triggers[0].auth.credential"
        assert message in issue["message"]
    leaky = admin.post(
        "/workflows/",
        json=hook_workflow(
            webhook(
                unique(),
                auth={"type": "token", "credential": "hook_token", "header": "X-Token"},
                headers=["X-Source", "x-token"],
            )
        ),
    )
    assert leaky.status_code == 422
    [issue] = leaky.json()["detail"]
    assert issue["field"] == "triggers[0].headers[1]"


def test_a_credential_a_hook_uses_cannot_be_deleted_unforced(admin: httpx.Client) -> None:
    created = admin.post(
        "/credentials",
        json={"name": "short_lived", "type": "secret", "data": {"value": "abcd1234"}},
    )
    assert created.status_code == 201
    auth = {"type": "token", "credential": "short_lived"}
    workflow_id = save(admin, hook_workflow(webhook(unique(), auth=auth)))
    refused = admin.delete("/credentials/short_lived")
    assert refused.status_code == 409
    assert workflow_id in refused.text


def test_a_credential_missing_at_call_time_is_503_and_starts_nothing(
    admin: httpx.Client, caller: httpx.Client
) -> None:
    add_secret(admin, "gone_soon", "abcd1234")
    path = unique("orphan")
    auth = {"type": "token", "credential": "gone_soon"}
    workflow_id = save(admin, hook_workflow(webhook(path, auth=auth)))
    assert admin.delete("/credentials/gone_soon", params={"force": "true"}).status_code == 204
    answer = caller.post(f"/hooks/{path}", json={}, headers={"Authorization": "Bearer abcd1234"})
    assert answer.status_code == 503
    assert "gone_soon" in answer.json()["detail"]
    assert runs_of(admin, workflow_id) == []


def test_an_empty_secret_is_a_missing_one(admin: httpx.Client, caller: httpx.Client) -> None:
    """An empty signing key makes every signature forgeable: refused at save, and 503
    (starting nothing) when the entry is empty at call time."""
    auth = {"type": "hmac", "credential": "blank_at_save", "header": "X-Hub-Signature-256"}
    refused = admin.post("/workflows/", json=hook_workflow(webhook(unique(), auth=auth)))
    assert refused.status_code == 422, refused.text
    [issue] = refused.json()["detail"]
    assert issue["field"] == "triggers[0].auth.credential"
    assert "blank_at_save" in issue["message"] and "empty" in issue["message"]

    # A stored secret shadows the (empty) DUCTWORK_SECRETS entry until it is deleted.
    add_secret(admin, "blank_at_call", "abcd1234")
    path = unique("blank")
    auth = {
        "type": "hmac",
        "credential": "blank_at_call",
        "header": "X-Hub-Signature-256",
        "prefix": "sha256=",
    }
    workflow_id = save(admin, hook_workflow(webhook(path, auth=auth)))
    assert admin.delete("/credentials/blank_at_call", params={"force": "true"}).status_code == 204
    body = b'{"name": "forged"}'
    forged = caller.post(
        f"/hooks/{path}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": github_signature(body, secret=""),
        },
    )
    assert forged.status_code == 503, forged.text
    assert "blank_at_call" in forged.json()["detail"]
    assert runs_of(admin, workflow_id) == []


# Unit: signatures and bodies ------------------------------------------------------------

NOW = 1_700_000_000.0


def test_verify_hmac_variants() -> None:
    body = b"payload"
    for algorithm in ("sha1", "sha256", "sha512"):
        auth = HmacAuth(type="hmac", credential="s", algorithm=algorithm, prefix=f"{algorithm}=")
        mac = hmac.new(b"key1", body, algorithm).hexdigest()
        verify(auth, "key1", {auth.header.lower(): f"{algorithm}={mac}"}, body, NOW)
        with pytest.raises(Unauthorized):
            verify(auth, "key2", {auth.header.lower(): f"{algorithm}={mac}"}, body, NOW)
    stripe = HmacAuth(type="hmac", credential="s", style="stripe", header="Sig")
    good = stripe_signature(body, int(NOW), "key1")
    verify(stripe, "key1", {"sig": good}, body, NOW + 299)
    with pytest.raises(Unauthorized, match="300 s"):
        verify(stripe, "key1", {"sig": good}, body, NOW + 301)
    soon = hmac.new(b"key1", b"soon." + body, "sha256").hexdigest()
    with pytest.raises(Unauthorized, match="unix time"):  # signed, but not a time
        verify(stripe, "key1", {"sig": f"t=soon,v1={soon}"}, body, NOW)
    many = "t=1," + ",".join(["v1=00"] * 21)
    with pytest.raises(Unauthorized, match="more than 20"):
        verify(stripe, "key1", {"sig": many}, body, NOW)


def test_verify_token_bare_and_prefixed() -> None:
    bare = TokenAuth(type="token", credential="t", header="X-Token", prefix="")
    verify(bare, "sekrit-1", {"x-token": " sekrit-1 "}, b"", NOW)
    with pytest.raises(Unauthorized, match="not valid"):
        verify(bare, "sekrit-1", {"x-token": "sekrit-2"}, b"", NOW)
    unicode = TokenAuth(type="token", credential="t")
    sent = f"Bearer {'ключ-1234'}".encode().decode("latin-1")  # as a server decodes it
    verify(unicode, "ключ-1234", {"authorization": sent}, b"", NOW)


def test_parse_body_by_content_type() -> None:
    assert parse_body("application/json", b"", 64) is None
    assert parse_body("application/vnd.api+json", b'{"a": 1}', 64) == {"a": 1}
    assert parse_body(None, b"hello", 64) == "hello"
    assert parse_body("application/x-www-form-urlencoded", b"a=1&a=2&b=", 64) == {
        "a": ["1", "2"],
        "b": "",
    }
    with pytest.raises(HookRefused) as deep:
        parse_body("application/json", b"[" * 70 + b"]" * 70, 64)
    assert deep.value.status == 400 and "nested deeper" in deep.value.detail
    with pytest.raises(HookRefused) as unknown:
        parse_body("text/plain; charset=klingon", b"x", 64)
    assert unknown.value.status == 415


def test_hooks_need_no_api_key_but_other_routes_still_do(caller: httpx.Client) -> None:
    assert caller.get("/workflows/").status_code == 401
    assert caller.post(f"/hooks/{unique('free')}", json={}).status_code == 404  # not 401


def test_the_openapi_document_shows_hooks_as_public(caller: httpx.Client) -> None:
    document = caller.get("/openapi.json").json()
    for method in ("get", "post", "put", "patch", "delete"):
        operation = document["paths"]["/hooks/{path}"][method]
        responses = operation["responses"]
        assert {"200", "202", "401", "404", "405", "409", "413", "429", "500"} <= set(responses)
        assert "403" not in responses, method  # no role is asked for: the guard lets it through
        assert "security" not in operation or operation["security"] == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mongodb"])
def test_hooks_on_every_store(
    kind: str, store_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    """The path index, its conflicts and the run's trigger through each store."""
    settings = Settings(data_dir=tmp_path, store_url=store_url_factory(kind))
    with (
        LiveServer(settings) as live,
        live.client() as admin,
        httpx.Client(base_url=live.url, timeout=30) as caller,
    ):
        definition = hook_workflow(webhook("shared/path", respond="sync"))
        workflow_id = save(admin, definition)
        answer = caller.post("/hooks/shared/path", json={"name": kind})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"greeting": f"hello {kind}"}
        [run] = runs_of(admin, workflow_id)
        assert run["trigger"] == {"type": "webhook", "path": "shared/path", "method": "POST"}
        conflict = admin.post("/workflows/", json=definition)
        assert conflict.status_code == 422, conflict.text
        assert conflict.json()["detail"][0]["field"] == "triggers[0].path"
        assert admin.delete(f"/workflows/{workflow_id}").status_code == 204
        assert caller.post("/hooks/shared/path", json={}).status_code == 404
        save(admin, definition)  # the path is free again
        assert caller.post("/hooks/shared/path", json={"name": "again"}).status_code == 200
