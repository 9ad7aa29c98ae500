"""Schedule jitter: how late a slot's run is created (run.created_at - slot), and how late
it starts running (run.start_time - slot). Prints a table.

    .venv/bin/python bench/schedule_jitter.py [--seconds 30] [--schedules 20]

1. embedded: one process, SQLite, in-process queue (the scheduler in the app);
2. scaled: `ductwork serve` (role api, no scheduler) + two `ductwork worker`s (each runs
   a scheduler; every slot is fired by both and created once), PostgreSQL and Redis.

Each with one every-second schedule, then with `--schedules` of them due in the same
second (a process fires at most 16 schedules at once: the rest queue behind them).
Uses a private redis-server and a fresh database on the local PostgreSQL
(`DUCTWORK_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.live_server import ADMIN_KEY
from tests.support.processes import BIN, Process, RedisServer, worker
from tests.support.smtp_server import free_port
from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, unique_name

from ductwork.models import Run, WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.store.base import RunQuery
from ductwork.triggers.schedule import parse_slot


def every_second(index: int) -> dict[str, Any]:
    return {
        "name": f"tick {index}",
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}],
        "triggers": [{"type": "schedule", "every_seconds": 1}],
    }


Samples = list[tuple[float, float]]
"""(created, started) milliseconds after the slot, per run."""


def late_ms(trigger: dict[str, Any] | None, moment: datetime | None) -> float:
    assert trigger is not None and trigger["type"] == "schedule" and moment is not None
    return (moment - parse_slot(trigger["slot"])).total_seconds() * 1000


def summary(label: str, samples: Samples) -> list[tuple[str, str, str]]:
    rows = []
    for what, values in (
        ("created", [created for created, _ in samples]),
        ("started", [started for _, started in samples]),
    ):
        p99 = statistics.quantiles(values, n=100, method="inclusive")[98]
        rows.append(
            (
                f"{label}: slot -> run {what} (n={len(values)}), median / p99 / max",
                f"{statistics.median(values):.1f} / {p99:.1f} / {max(values):.1f} ms",
                "",
            )
        )
    return rows


async def embedded(seconds: float, schedules: int) -> Samples:
    """Jitter of every slot fired in `seconds` by an embedded app (SQLite)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Settings(data_dir=Path(tmp)))
        await app.start()
        try:
            ids = [
                (await app.create_workflow(WorkflowDefinition.model_validate(every_second(i)))).id
                for i in range(schedules)
            ]
            await asyncio.sleep(seconds)  # the scenario: let the schedules fire
            for workflow_id in ids:
                await app.delete_workflow(workflow_id)
            runs: list[Run] = []
            for workflow_id in ids:
                runs += await app.store.find_runs(RunQuery(workflow_id=workflow_id), limit=10_000)
        finally:
            await app.close()
    return [
        (late_ms(run.trigger, run.created_at), late_ms(run.trigger, run.start_time)) for run in runs
    ]


async def scaled(client: httpx.AsyncClient, seconds: float, schedules: int) -> Samples:
    """Jitter of every slot fired in `seconds` by the workers behind `client`'s API."""
    ids = []
    for index in range(schedules):
        response = await client.post("/workflows/", json=every_second(index))
        ids.append(response.json()["id"])
    await asyncio.sleep(seconds)  # the scenario: let the schedules fire
    for workflow_id in ids:
        await client.delete(f"/workflows/{workflow_id}")
    samples = []
    for workflow_id in ids:
        runs = (
            await client.get(
                "/workflows/executions", params={"workflow_id": workflow_id, "limit": 1000}
            )
        ).json()
        samples += [
            (
                late_ms(run["trigger"], datetime.fromisoformat(run["created_at"])),
                late_ms(run["trigger"], datetime.fromisoformat(run["start_time"])),
            )
            for run in runs
        ]
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--schedules", type=int, default=20)
    args = parser.parse_args()
    rows = summary("embedded, 1 schedule", await embedded(args.seconds, 1))
    rows += summary(
        f"embedded, {args.schedules} schedules", await embedded(args.seconds, args.schedules)
    )

    admin = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    database = unique_name("bench")
    postgres_execute(admin, f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        redis = RedisServer(tmp_path).start()
        env = {
            **os.environ,
            "DUCTWORK_STORE_URL": admin.rsplit("/", 1)[0] + f"/{database}",
            "DUCTWORK_REDIS_URL": redis.url,
            "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
            "DUCTWORK_ADMIN_API_KEY": ADMIN_KEY,
        }
        port = free_port()
        api = Process(
            "api", [str(BIN / "ductwork"), "serve", "--port", str(port)], env, tmp_path / "api.log"
        )
        workers = [worker(name, env, tmp_path) for name in ("w1", "w2")]
        try:
            api.start()
            for process in workers:
                process.start()
            api.wait_for_line("Application startup complete")
            for process in workers:
                process.wait_for_line("consuming runs")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ) as client:
                rows += summary("scaled, 1 schedule", await scaled(client, args.seconds, 1))
                rows += summary(
                    f"scaled, {args.schedules} schedules",
                    await scaled(client, args.seconds, args.schedules),
                )
        finally:
            for process in workers:
                process.kill()
            api.terminate()
            redis.kill()
            postgres_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
