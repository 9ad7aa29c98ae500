"""Resume links: the cost of making and checking one, and how soon a resumed run goes on.

- sign: `ResumeLinks.url` (HMAC-SHA256 over run and node ids, key cached);
- verify: `ResumeLinks.verify` of a good token (one key configured);
- resume round trip, embedded (SQLite, in-process queue, the whole ASGI app in
  process, no socket): from `POST /resume/{token}` to the run's end (start -> wait
  -> end), median and p99 over many runs, each parked beforehand.

Prints a table.

    python bench/resume.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.api.app import create_app
from ductwork.models import RunStatus, WorkflowDefinition
from ductwork.runtime import build
from ductwork.security.crypto import generate_key
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.triggers.resume import ResumeLinks

ROUNDS = 50_000
RUNS = 200

WORKFLOW = WorkflowDefinition.model_validate(
    {
        "name": "approval",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "w", "type": "wait", "config": {"timeout_seconds": 3600}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "w"}, {"from": "w", "to": "end"}],
    }
)


def _links_us() -> tuple[float, float]:
    key = generate_key()
    links = ResumeLinks(lambda: [key], "https://ductwork.example.com")
    eid = "6f1c3a52-1f9e-4a57-9d0c-0d3f5b0f2a11"
    started = time.perf_counter()
    for _ in range(ROUNDS):
        links.url(eid, "approve")
    sign = (time.perf_counter() - started) / ROUNDS * 1e6
    token = links.token(eid, "approve")
    started = time.perf_counter()
    for _ in range(ROUNDS):
        links.verify(token)
    verify = (time.perf_counter() - started) / ROUNDS * 1e6
    return sign, verify


async def _round_trips_ms(data_dir: Path) -> tuple[list[float], list[float]]:
    app = build(Settings(data_dir=data_dir, auth="disabled"))
    api = create_app(app)
    await app.start()
    try:
        workflow = await app.create_workflow(WORKFLOW)
        transport = httpx.ASGITransport(app=api, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            samples = []
            for _ in range(RUNS):
                run, _ = await app.execute(workflow.id, {}, wait=False)
                while True:  # parked? (not timed)
                    stored = await app.get_run(run.execution_id, with_events=False)
                    if stored.status is RunStatus.WAITING:
                        break
                    await asyncio.sleep(0.001)
                link = stored.node_states["w"].meta["resume_url"]
                path = "/" + link.split("/", 3)[3]
                started = time.perf_counter()
                answer = await client.post(path, json={"approved": True})
                finished = await app.wait_for(run.execution_id, 30, with_events=False)
                samples.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 202, answer.text
                assert finished.status is RunStatus.SUCCESS, finished.error
            reference = await _execute_ms(app, client)
            return samples, reference
    finally:
        await app.close()


async def _execute_ms(app: Ductwork, client: httpx.AsyncClient) -> list[float]:
    """The reference: a sync `POST /workflows/{id}/execute` of start -> end, same app."""
    plain = await app.create_workflow(
        WorkflowDefinition.model_validate(
            {
                "name": "plain",
                "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
                "edges": [{"from": "start", "to": "end"}],
            }
        )
    )
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = await client.post(f"/workflows/{plain.id}/execute", json={"inputs": {}})
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.json()["status"] == "success", answer.text
    return samples


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    sign, verify = _links_us()
    with tempfile.TemporaryDirectory() as directory:
        samples, reference = asyncio.run(_round_trips_ms(Path(directory)))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print_measures(
        [
            ("make a resume link", f"{sign:.1f} µs", "negligible beside a node (50 µs)"),
            ("check a resume link", f"{verify:.1f} µs", "negligible beside a request"),
            (
                f"POST link -> run ended, median ({RUNS} runs)",
                f"{statistics.median(samples):.2f} ms",
                "about a sync execute of start -> end",
            ),
            ("POST link -> run ended, p99", f"{_p99(samples):.2f} ms", ""),
            (
                "reference: sync execute start -> end, median",
                f"{statistics.median(reference):.2f} ms",
                "",
            ),
            ("reference: sync execute start -> end, p99", f"{_p99(reference):.2f} ms", ""),
        ]
    )


if __name__ == "__main__":
    main()
