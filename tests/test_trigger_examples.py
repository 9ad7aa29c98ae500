"""The trigger examples in examples/ do what they say, driven the way a user would.

`tests/test_examples.py` runs every example that a plain execute starts; the ones
whose `expected.trigger` names a schedule, a webhook or an approval are exercised
here, through the real server: a schedule fires on its own, a webhook is called
over HTTP with a GitHub-style signature, an approval is answered by following the
link the email carried.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from pydantic import SecretStr

from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.smtp_server import SmtpTestServer
from tests.test_examples import EXAMPLES, assert_subset

GITHUB_SECRET = "it's-a-secret-to-everybody"

TRIGGER_EXAMPLES = {
    path.stem: path
    for path in EXAMPLES
    if "trigger" in (orjson.loads(path.read_bytes()).get("expected") or {})
}


def example(stem: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(workflow, inputs, expected) of examples/<stem>.json, as raw JSON."""
    data = orjson.loads(TRIGGER_EXAMPLES[stem].read_bytes())
    return data["workflow"], data.get("inputs") or {}, data["expected"]


def test_every_trigger_example_is_exercised_here() -> None:
    kinds = {example(stem)[2]["trigger"] for stem in TRIGGER_EXAMPLES}
    assert kinds == {"schedule", "webhook", "approval"}, sorted(TRIGGER_EXAMPLES)


@pytest.fixture
def live(full_settings: Settings) -> Iterator[LiveServer]:
    settings = full_settings.model_copy(
        update={"secrets": {"GITHUB_WEBHOOK_SECRET": SecretStr(GITHUB_SECRET)}}
    )
    with LiveServer(settings) as server:
        yield server


def finished_runs(client: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/workflows/{workflow_id}/executions")
    response.raise_for_status()
    return [run for run in response.json() if run["status"] in ("success", "error")]


def check_emails(smtp: SmtpTestServer, wanted: list[dict[str, Any]]) -> None:
    for want in wanted:
        sent = [m for m in smtp.messages if m.rcpt_tos == want["to"]]
        assert sent, f"no email to {want['to']}: {[m.rcpt_tos for m in smtp.messages]}"
        subject = sent[-1].message["Subject"]
        if "subject" in want:
            assert subject == want["subject"]
        if "subject_starts" in want:
            assert subject.startswith(want["subject_starts"]), subject
        assert want["body_contains"] in sent[-1].message.get_body().get_content()


def test_scheduled_digest_fires_and_mails_the_summary(
    live: LiveServer, http_server: RecordingHttpServer, smtp: SmtpTestServer
) -> None:
    workflow, _, expected = example("11-scheduled-digest")
    http_server.script(
        "/api/orders", Reply(body={"orders": [{"id": 1, "total": 30}, {"id": 2, "total": 12}]})
    )
    workflow = orjson.loads(
        orjson.dumps(workflow).replace(b"https://shop.example.com", http_server.base_url.encode())
    )
    with live.client() as client:
        created = client.post("/workflows/", json=workflow)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        # As shipped: weekdays at 08:00 in Berlin, whatever the UTC offset that day.
        (schedule,) = client.get(f"/workflows/{workflow_id}/schedule").json()
        berlin = [
            datetime.fromisoformat(t["utc"]).astimezone(ZoneInfo("Europe/Berlin"))
            for t in schedule["next"]
        ]
        assert len(berlin) == 5
        assert all((t.hour, t.minute, t.second) == (8, 0, 0) for t in berlin)
        assert all(t.weekday() < 5 for t in berlin)
        # Fire it now: the same schedule every second (a 6-field cron, seconds first).
        workflow["triggers"][0]["cron"] = "* * * * * *"
        assert client.put(f"/workflows/{workflow_id}", json=workflow).status_code == 200
        wait_until(lambda: finished_runs(client, workflow_id), what="a scheduled run")
        assert client.post(f"/workflows/{workflow_id}/pause").status_code == 200
        run = finished_runs(client, workflow_id)[-1]
    assert_subset({k: expected[k] for k in ("status", "result")}, run)
    full = live.call(live.app.get_run(run["execution_id"], with_events=False))
    assert full.trigger is not None and full.trigger["type"] == "schedule"
    assert full.trigger["key"] == "weekday-morning"
    assert full.variables["team"] == "team@example.com"
    check_emails(smtp, expected["emails"])


def sign(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signed_github_webhook_answers_with_the_summary_and_refuses_a_bad_signature(
    live: LiveServer,
) -> None:
    workflow, inputs, expected = example("12-signed-github-webhook")
    body = orjson.dumps(inputs["body"])
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    with live.client() as client:
        created = client.post("/workflows/", json=workflow)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
    with httpx.Client(base_url=live.url, timeout=30) as anonymous:  # no API key: the signature
        forged = anonymous.post(
            "/hooks/github/push",
            content=body,
            headers={**headers, "X-Hub-Signature-256": sign(body, "guessed")},
        )
        assert forged.status_code == 401, forged.text
        with live.client() as client:
            assert client.get(f"/workflows/{workflow_id}/executions").json() == []
        answer = anonymous.post(
            "/hooks/github/push",
            content=body,
            headers={**headers, "X-Hub-Signature-256": sign(body)},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected["result"]
        other = orjson.dumps({**inputs["body"], "ref": "refs/heads/feature"})
        ignored = anonymous.post(
            "/hooks/github/push",
            content=other,
            headers={**headers, "X-Hub-Signature-256": sign(other)},
        )
        assert ignored.status_code == 202, ignored.text
        assert ignored.json() == {"ignored": "refs/heads/feature"}
    with live.client() as client:
        runs = client.get(f"/workflows/{workflow_id}/executions").json()
    assert len(runs) == 2
    assert {run["trigger"]["type"] for run in runs} == {"webhook"}


def test_approval_email_link_resumes_the_run_once(live: LiveServer, smtp: SmtpTestServer) -> None:
    workflow, inputs, expected = example("13-approval")
    with live.client() as client:
        created = client.post("/workflows/", json=workflow)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        started = client.post(
            f"/workflows/{workflow_id}/execute", json={"inputs": inputs, "async_execution": True}
        )
        assert started.status_code in (200, 202), started.text
        execution_id = started.json()["execution_id"]

        def status() -> str:
            return str(client.get(f"/workflows/executions/{execution_id}").json()["status"])

        wait_until(lambda: status() == "waiting", what="the run parks at the wait node")
        assert live.app.executor.active_runs == []  # parked: no worker holds it
    (ask,) = [m for m in smtp.messages if m.rcpt_tos == ["lead@example.com"]]
    match = re.search(r"https?://\S+/resume/\S+", ask.message.get_body().get_content())
    assert match, "the approval email carries the resume link"
    link = match.group(0).replace(f"http://127.0.0.1:{live.app.settings.port}", live.url)
    path = "/resume/" + link.split("/resume/", 1)[1]
    with httpx.Client(base_url=live.url, timeout=30) as browser:  # no API key: the link
        page = browser.get(path)
        assert page.status_code == 200 and "Publish this announcement?" in page.text
        approved = browser.post(path, json={"approved": True})
        assert approved.status_code == 202, approved.text  # accepted: the run goes on
        again = browser.post(path, json={"approved": False})
        assert again.status_code == 410, again.text
    with live.client() as client:
        wait_until(lambda: status() == "success", what="the approved run finishes")
        run = client.get(f"/workflows/executions/{execution_id}").json()
    assert_subset({k: expected[k] for k in ("status", "result")}, run)
    check_emails(smtp, expected["emails"])
