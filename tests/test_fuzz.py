"""Schemathesis over every operation of the served `/openapi.json`, against a live server.

Bounded for CI (a few minutes of CPU, split into SHARDS tests that run in parallel): a
few dozen derandomized examples per operation and generation mode, no shrinking (a
failure is recorded, not minimised), no example database. Each operation is fuzzed
with random ids and, where it has path parameters, with ids that exist (so 200 bodies
are checked too, not only 404s).

Checks: no 5xx, every status documented, every body valid against its documented
schema, every content type documented. The report lists every finding at once.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ductwork.api.guard import is_public as guard_is_public
from ductwork.api.workflows import SEED_WORKFLOW
from ductwork.settings import Settings
from tests.support.live_server import LiveServer

ADMIN_KEY = "dw_fuzz-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
EXAMPLES_PER_MODE = int(os.environ.get("DUCTWORK_FUZZ_EXAMPLES", "25"))
"""Generated cases per operation, generation mode and id source (random or existing);
raise it for a deeper run off CI (DUCTWORK_FUZZ_EXAMPLES=1000)."""
EXAMPLES_WITHOUT_KEY = max(1, EXAMPLES_PER_MODE // 6)
REQUEST_TIMEOUT = 30.0

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]

# Quick, reproducible and bounded: no shrinking storms, no database between runs.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_MODE,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class FuzzReport:
    """Every case sent and every check that failed, for one fuzz run."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[tuple[str, int]] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        statuses = dict(sorted(self.statuses.items()))
        return (
            f"{self.cases} cases in {seconds:.1f} s, statuses {statuses}, "
            f"{len(self.findings)} findings"
        )


def _is_public(method: str, path: str) -> bool:
    method = method.lower()
    return guard_is_public(method, path)


@dataclass
class Existing:
    """Ids that exist on the server, so fuzzed requests reach past the 404."""

    stable_workflow: str  # executed and read, never replaced
    mutable_workflow: str  # PUT replaces it with fuzzed definitions
    doomed_workflows: list[str]  # DELETE removes them
    execution: str  # a finished run (SSE ends after its events)

    def path_parameters(self, method: str, path: str) -> dict[str, str] | None:
        if "{workflow_id}" in path:
            if method == "PUT":
                return {"workflow_id": self.mutable_workflow}
            if method == "DELETE":
                return (
                    {"workflow_id": self.doomed_workflows.pop()} if self.doomed_workflows else None
                )
            return {"workflow_id": self.stable_workflow}
        if "{execution_id}" in path:
            return {"execution_id": self.execution}
        return None


def _seed(client: httpx.Client, headers: dict[str, str]) -> Existing:
    def create() -> str:
        response = client.post("/workflows/", json=SEED_WORKFLOW, headers=headers)
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        return workflow_id

    stable = create()
    run = client.post(f"/workflows/{stable}/execute", json={}, headers=headers)
    assert run.status_code == 200 and run.json()["status"] == "success", run.text
    return Existing(stable, create(), [create()], run.json()["execution_id"])


def _operations(schema: Any) -> list[Any]:
    """Every operation, DELETE last (it removes what the others read)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda op: op.method.upper() == "DELETE")


def _fuzz_operation(
    operation: Any,
    report: FuzzReport,
    *,
    base_url: str,
    headers: dict[str, str],
    mode: GenerationMode,
    max_examples: int,
    path_parameters: dict[str, str] | None = None,
    extra_check: Callable[[Any, Any], str | None] | None = None,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(FUZZ_SETTINGS, max_examples=max_examples)
    @given(case=strategy)
    def run(case: Any) -> None:
        report.cases += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT)
        except Exception as exc:  # a dropped connection or a timeout is a finding too
            report.findings.append(f"{operation.label} [{mode.value}]: request failed: {exc!r}")
            return
        report.statuses[response.status_code] += 1
        report.by_operation[operation.label, response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                report.findings.append(_describe(operation, mode, failure, case))
        if extra_check is not None:
            problem = extra_check(case, response)
            if problem:
                report.findings.append(f"{operation.label} [{mode.value}]: {problem}")

    try:
        run()
    except Unsatisfiable:
        # Negative mode on an operation with nothing to break (no parameters or body,
        # or only the fixed ids).
        assert mode is GenerationMode.NEGATIVE, operation.label


def _describe(operation: Any, mode: GenerationMode, failure: Failure, case: Any) -> str:
    return (
        f"{operation.label} [{mode.value}]: {failure.title}: {failure.message[:400]}\n"
        f"    {case.as_curl_command()[:600]}"
    )


@pytest.fixture
def fuzz_settings(full_settings: Settings) -> Settings:
    """full_settings with a known admin key and a short sync wait (fuzzed runs stay short)."""
    return full_settings.model_copy(
        update={
            "admin_api_key": SecretStr(ADMIN_KEY),
            "sync_wait_seconds": 5,
            "execute_rate_limit": "1000000/minute",
        }
    )


@pytest.fixture
def fuzz_server(fuzz_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(fuzz_settings) as live:
        yield live


def _load(server: LiveServer, headers: dict[str, str]) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=headers)


SHARDS = 4
"""Each fuzz test runs as this many tests (every SHARDS-th operation, on a server of its
own), so a parallel run (pytest-xdist, scripts/test) spreads them over its workers."""


def _shard(operations: list[Any], shard: int) -> list[Any]:
    assert len(operations) >= 17
    return operations[shard::SHARDS]


@pytest.mark.parametrize("shard", range(SHARDS))
def test_fuzz_every_operation_with_an_admin_key(fuzz_server: LiveServer, shard: int) -> None:
    """0 server errors, 0 schema violations, 0 undocumented statuses or content types."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    schema = _load(fuzz_server, headers)
    report = FuzzReport()
    with httpx.Client(base_url=fuzz_server.url, timeout=REQUEST_TIMEOUT) as client:
        existing = _seed(client, headers)
    for operation in _shard(_operations(schema), shard):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            common: dict[str, Any] = {
                "base_url": fuzz_server.url,
                "headers": headers,
                "mode": mode,
                "max_examples": EXAMPLES_PER_MODE,
            }
            _fuzz_operation(operation, report, **common)
            known = existing.path_parameters(operation.method.upper(), operation.path)
            if known is not None:
                _fuzz_operation(operation, report, path_parameters=known, **common)
    print(f"\nfuzz with an admin key: {report.summary()}")
    for (label, status), count in sorted(report.by_operation.items()):
        print(f"    {label}: {status} x{count}")
    assert not report.findings, "\n".join([report.summary(), *sorted(set(report.findings))[:40]])
    assert report.statuses[200] + report.statuses[201] > 0  # the fuzz reached real bodies


@pytest.mark.parametrize("shard", range(SHARDS))
def test_fuzz_every_operation_without_a_key_is_401(fuzz_server: LiveServer, shard: int) -> None:
    """Without credentials every operation except the public ones answers 401, as documented."""
    schema = _load(fuzz_server, {})
    report = FuzzReport()

    def must_be_401(case: Any, response: Any) -> str | None:
        if _is_public(case.operation.method, case.operation.path):
            return None
        if response.status_code != 401:
            return f"{response.status_code} without a key (expected 401): {response.text[:200]}"
        return None

    for operation in _shard(_operations(schema), shard):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(
                operation,
                report,
                base_url=fuzz_server.url,
                headers={},
                mode=mode,
                max_examples=EXAMPLES_WITHOUT_KEY,
                extra_check=must_be_401,
            )
    print(f"\nfuzz without a key: {report.summary()}")
    assert not report.findings, "\n".join([report.summary(), *sorted(set(report.findings))[:40]])
