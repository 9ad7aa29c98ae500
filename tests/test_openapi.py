"""The served `/openapi.json` says what the API sends (the typed clients are generated from it).

Structure: every operation documents its success body (no bare `string` for JSON),
every error body is a `Problem` (422) or an `ErrorDetail`, FastAPI's
`HTTPValidationError` is gone, non-public operations document 401/403.
Then real responses from a live server are validated against the document with
jsonschema (date-times checked as RFC 3339 with an offset), and the defects the
fuzzer (tests/test_fuzz.py) found each have a regression test here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import jsonschema
import pytest

from ductwork.api.guard import is_public as guard_is_public
from tests.support.polling import wait_until
from tests.support.seed import SEED_BODY

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_MODELS = {
    "#/components/schemas/Problem",
    "#/components/schemas/GenerationProblem",
    "#/components/schemas/ErrorDetail",
    "#/components/schemas/ErrorMessage",
    "#/components/schemas/Health",  # /health's 503
    "#/components/schemas/HookRunFailed",  # a sync webhook's failed run: its error summary
}


@pytest.fixture
def document(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def is_public(method: str, path: str) -> bool:
    return guard_is_public(method, path)


# -- the document's structure ---------------------------------------------------------


def test_every_operation_documents_its_success_body(document: dict[str, Any]) -> None:
    assert len(operations(document)) >= 17
    for method, path, operation in operations(document):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, f"{method} {path}: no success response"
        for status, response in successes.items():
            where = f"{method.upper()} {path} {status}"
            if status == "204":
                assert "content" not in response, where
                continue
            content = response["content"]
            if path == "/metrics":
                assert list(content) == ["text/plain"], where
            elif path == "/setup" or (path == "/resume/{token}" and status == "200"):
                # The one-time setup page; a resume link's approval page (and the page
                # answering its form).
                assert list(content) == ["text/html"], where
            elif path.endswith("/events"):
                assert list(content) == ["text/event-stream"], where
                assert content["text/event-stream"]["itemSchema"]["properties"]["event"], where
            else:
                assert list(content) == ["application/json"], where
                schema = content["application/json"]["schema"]
                assert schema != {"type": "string"} and schema, where
                assert "$ref" in schema or "$ref" in schema.get("items", {}), where


def test_error_bodies_are_problem_or_error_detail(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    assert "ValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            if (method, path) == ("get", "/resume/{token}") and status != "422":
                # A resume link's page: a browser gets a page, refusals included (its
                # POST answers a JSON client with JSON and the page's form with a page).
                assert list(response["content"]) == ["text/html"], where
                continue
            ref = response["content"]["application/json"]["schema"]["$ref"]
            if status == "422":
                assert ref in ERROR_MODELS and ref.endswith("Problem"), where
            elif int(status) < 500:
                # ErrorDetail, or a body that extends it (409 on a credential in use also
                # names the workflows): clients can always read `detail`.
                schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert "detail" in schema["required"], where
                assert schema["properties"]["detail"]["type"] == "string", where
            else:
                assert ref in ERROR_MODELS, where
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["message", "detail"]
    detail = document["components"]["schemas"]["ProblemDetail"]
    assert set(detail["properties"]) == {"node_id", "field", "message"}


def test_guarded_operations_document_401_and_403_and_bodies_413_and_415(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        where = f"{method.upper()} {path}"
        if not is_public(method, path):
            # Public routes may answer 401 themselves (a wrong password on /auth/login).
            assert {"401", "403"} <= statuses, where
        if "requestBody" in operation:
            assert {"413", "415", "422"} <= statuses, where
    assert "401" not in document["paths"]["/health"]["get"]["responses"]
    execute = document["paths"]["/workflows/{workflow_id}/execute"]["post"]["responses"]
    assert {"200", "202", "404", "422", "429"} <= set(execute)
    assert "Retry-After" in execute["429"]["headers"]


# -- real responses against the document ----------------------------------------------

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    """RFC 3339 needs the offset, which `datetime.fromisoformat` alone does not."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def conforms(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """Assert `response` is documented for the operation (status and media type) and its
    JSON body validates against the documented schema."""
    documented = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method} {path}: {status} undocumented"
    content = documented[status].get("content")
    if content is None:
        assert not response.content
        return
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, f"{media_type} not documented for {status}"
    if media_type != "application/json":
        return
    schema = {**content[media_type]["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator(schema, format_checker=FORMATS).validate(response.json())


def test_real_responses_validate_against_the_document(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    created = client.post("/workflows/", json=SEED_BODY)
    conforms(document, "post", "/workflows/", created)
    wid = created.json()["id"]
    conforms(document, "get", "/workflows/", client.get("/workflows/"))
    conforms(document, "get", "/workflows/", client.get("/workflows/", params={"q": "TEST"}))
    conforms(document, "get", "/workflows/", client.get("/workflows/", params={"q": "x" * 201}))
    search = document["paths"]["/workflows/"]["get"]["parameters"][0]
    assert (search["name"], search["in"], search["required"]) == ("q", "query", False)
    assert {"type": "string", "maxLength": 200} in search["schema"]["anyOf"]
    conforms(document, "get", "/workflows/{workflow_id}", client.get(f"/workflows/{wid}"))
    conforms(
        document, "put", "/workflows/{workflow_id}", client.put(f"/workflows/{wid}", json=SEED_BODY)
    )

    executed = client.post(f"/workflows/{wid}/execute", json={"inputs": {"name": "Ann"}})
    assert executed.json()["status"] == "success"
    conforms(document, "post", "/workflows/{workflow_id}/execute", executed)
    eid = executed.json()["execution_id"]
    run = client.get(f"/workflows/executions/{eid}")
    assert run.json()["node_states"]["ai1"]["usage"]  # an extra key, allowed by the model
    conforms(document, "get", "/workflows/executions/{execution_id}", run)
    queued = client.post(f"/workflows/{wid}/execute", json={"async_execution": True})
    assert queued.status_code == 202
    conforms(document, "post", "/workflows/{workflow_id}/execute", queued)
    conforms(
        document,
        "get",
        "/workflows/{workflow_id}/executions",
        client.get(f"/workflows/{wid}/executions"),
    )
    # Retrying a successful run is a conflict.
    retried = client.post(f"/workflows/executions/{eid}/retry", json={})
    assert retried.status_code == 409
    conforms(document, "post", "/workflows/executions/{execution_id}/retry", retried)

    invalid = dict(SEED_BODY, edges=[{"from": "start", "to": "nowhere"}])
    report = client.post("/workflows/validate", json=invalid)
    assert report.json()["valid"] is False
    conforms(document, "post", "/workflows/validate", report)
    refused = client.post("/workflows/", json=invalid)
    assert refused.status_code == 422
    conforms(document, "post", "/workflows/", refused)
    not_json = client.post("/workflows/", json={"name": 5})
    assert not_json.status_code == 422
    conforms(document, "post", "/workflows/", not_json)
    missing = client.get("/workflows/executions/no-such-run")
    assert missing.status_code == 404
    conforms(document, "get", "/workflows/executions/{execution_id}", missing)

    conforms(document, "get", "/health", client.get("/health"))
    conforms(document, "get", "/node-types", client.get("/node-types"))
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    conforms(document, "get", "/metrics", metrics)
    deleted = client.delete(f"/workflows/{wid}")
    conforms(document, "delete", "/workflows/{workflow_id}", deleted)


# -- regressions for what the fuzzer found --------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b""),  # an empty cross-site form post
        ("application/x-www-form-urlencoded", b"inputs=1"),
        ("text/plain", b'{"inputs": {}}'),  # JSON in a form's text/plain: no preflight
        ("multipart/form-data; boundary=x", b"--x--\r\n"),
        (None, b'{"inputs": {}}'),
    ],
)
def test_execute_accepts_json_only(
    client: httpx.Client, document: dict[str, Any], content_type: str | None, body: bytes
) -> None:
    wid = client.post("/workflows/", json=SEED_BODY).json()["id"]
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(f"/workflows/{wid}/execute", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    conforms(document, "post", "/workflows/{workflow_id}/execute", response)
    assert client.get(f"/workflows/{wid}/executions").json() == []  # no run was started


def test_json_routes_refuse_other_media_types_and_take_json_variants(
    client: httpx.Client,
) -> None:
    form = client.post(
        "/workflows/",
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    wid = client.post("/workflows/", json=SEED_BODY).json()["id"]
    # JSON with parameters or a +json suffix is JSON; an absent body needs no type.
    typed = client.post(
        f"/workflows/{wid}/execute",
        content=b'{"async_execution": true}',
        headers={"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert typed.status_code == 202, typed.text
    bare = client.post(f"/workflows/{wid}/execute")
    assert bare.status_code == 200, bare.text
    wait_until(
        lambda: all(
            run["status"] == "success" for run in client.get(f"/workflows/{wid}/executions").json()
        ),
        within=20,
    )


def test_bad_last_event_id_is_a_problem(client: httpx.Client, document: dict[str, Any]) -> None:
    wid = client.post("/workflows/", json=SEED_BODY).json()["id"]
    eid = client.post(f"/workflows/{wid}/execute", json={}).json()["execution_id"]
    path = "/workflows/executions/{execution_id}/events"
    response = client.get(f"/workflows/executions/{eid}/events", headers={"Last-Event-ID": "x"})
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["field"] == "Last-Event-ID" and "non-negative seq" in issue["message"]
    conforms(document, "get", path, response)
    finished = client.get(f"/workflows/executions/{eid}/events?after=1000")
    assert finished.status_code == 204
    conforms(document, "get", path, finished)
