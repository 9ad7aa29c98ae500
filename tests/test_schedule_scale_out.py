"""Schedules with real processes: an API (role api, no scheduler), two `ductwork worker`s
(each runs a scheduler), PostgreSQL and a private Redis.

Every slot starts one run however many workers fire it (the slot key is the run's
idempotency key), across SIGKILLs and a restart of everything, and a change made
through the API reaches every worker's scheduler through the control channel.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.polling import wait_until
from tests.support.processes import Process
from tests.test_scale_out import CLUSTER_WAIT, Cluster
from tests.test_scale_out import cluster_env as cluster_env  # a fixture

GRACE = 1.5
"""DUCTWORK_SCHEDULE_MISFIRE_GRACE_SECONDS: a slot older than this when its scheduler
comes to it was missed (catch_up decides); small, so a restart misses some."""


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    env = {
        **cluster_env,
        "DUCTWORK_SCHEDULE_MISFIRE_GRACE_SECONDS": str(GRACE),
        # Only the control message can make a worker notice a change in time.
        "DUCTWORK_SCHEDULE_REFRESH_SECONDS": "3600",
    }
    running = Cluster(env, tmp_path)
    yield running
    running.stop_all()


def every_second(name: str, **schedule: Any) -> dict[str, Any]:
    return {
        "name": name,
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}],
        "triggers": [{"type": "schedule", "every_seconds": 1, **schedule}],
    }


def scheduled_runs(client: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    response = client.get(
        "/workflows/executions",
        params={"workflow_id": workflow_id, "trigger": "schedule", "limit": 1000},
    )
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    return runs


def slot_time(run: dict[str, Any]) -> datetime:
    return datetime.strptime(run["trigger"]["slot"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def slots_of(client: httpx.Client, workflow_id: str, key: str | None = None) -> list[datetime]:
    """Fired slots, oldest first, after checking no slot started two runs."""
    runs = [
        run
        for run in scheduled_runs(client, workflow_id)
        if key is None or run["trigger"]["key"] == key
    ]
    counts = Counter(run["trigger"]["slot"] for run in runs)
    assert max(counts.values(), default=1) == 1, f"slots fired twice: {counts.most_common(3)}"
    return sorted(slot_time(run) for run in runs)


def consecutive(slots: list[datetime]) -> bool:
    return all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(slots))


def wait_for_slots(client: httpx.Client, workflow_id: str, count: int, after: datetime) -> None:
    wait_until(
        lambda: sum(slot > after for slot in slots_of(client, workflow_id)) >= count,
        within=CLUSTER_WAIT,
        what=f"{count} slots after {after:%H:%M:%S}",
    )


def kill_just_before_a_slot(cluster: Cluster, name: str) -> None:
    """SIGKILL a worker 10 ms before a whole second: when its scheduler is about to fire."""
    now = time.time()
    time.sleep(1 - (now % 1) - 0.01 if now % 1 < 0.99 else 1.99 - (now % 1))
    cluster.workers[name].kill()


def start_workers(cluster: Cluster, *names: str) -> list[Process]:
    """Start workers side by side (each boots in seconds), then wait for all of them."""
    started = [cluster.start_worker(name, wait=False) for name in names]
    for process in started:
        process.wait_for_line("consuming runs", timeout=CLUSTER_WAIT)
    return started


def test_every_second_fires_each_slot_once_through_kills_and_a_restart_of_everything(
    cluster: Cluster,
) -> None:
    client = cluster.start_api()
    start_workers(cluster, "worker-a", "worker-b")
    created = client.post("/workflows/", json=every_second("heartbeat", catch_up="latest"))
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]

    # Two workers fire every slot; each slot starts one run.
    start = datetime.now(UTC)
    wait_for_slots(client, workflow_id, 5, after=start - timedelta(seconds=1))
    assert consecutive(slots_of(client, workflow_id))

    # A worker dies as it is about to fire; the other fires on, nothing is lost.
    kill_just_before_a_slot(cluster, "worker-a")
    wait_for_slots(client, workflow_id, 2, after=datetime.now(UTC))
    assert consecutive(slots_of(client, workflow_id))

    # The last one dies as it is about to fire, and the API stops: nothing runs. It stays
    # down long enough that some slots are missed for good.
    kill_just_before_a_slot(cluster, "worker-b")
    cluster.stop_api()
    time.sleep(GRACE + 3.0)  # part of the scenario: slots pass while nothing runs
    client = cluster.start_api()
    before = slots_of(client, workflow_id)
    last_before = before[-1]
    start_workers(cluster, "worker-a", "worker-b")
    wait_for_slots(client, workflow_id, 4, after=last_before)

    slots = slots_of(client, workflow_id)
    assert slots[: len(before)] == before
    after = slots[len(before) :]
    # catch_up latest: of the slots missed while down, only the newest fired (late, once);
    # from it on, the rhythm is back: every slot once.
    assert consecutive(after), after
    assert after[0] - last_before >= timedelta(seconds=2), "every missed slot was caught up"
    caught_up = next(
        run for run in scheduled_runs(client, workflow_id) if slot_time(run) == after[0]
    )
    fired_late = datetime.fromisoformat(caught_up["created_at"]) - after[0]
    assert fired_late > timedelta(seconds=GRACE), "the first slot after the restart was on time"

    # No run was lost between its creation and its queueing: each one finishes.
    wait_until(
        lambda: all(run["status"] == "success" for run in scheduled_runs(client, workflow_id)),
        within=CLUSTER_WAIT,
        what="every scheduled run finished",
    )


def test_a_change_through_the_api_reaches_every_worker_at_once(cluster: Cluster) -> None:
    client = cluster.start_api()
    workers = start_workers(cluster, "worker-a", "worker-b")
    changing = client.post("/workflows/", json=every_second("changing", id="old")).json()["id"]
    witness = client.post("/workflows/", json=every_second("witness", id="w")).json()["id"]
    wait_for_slots(client, changing, 2, after=datetime.now(UTC) - timedelta(seconds=1))

    def every_worker_printed(text: str) -> None:
        for process in workers:
            process.wait_for_line(text, timeout=CLUSTER_WAIT)

    # A new timing (a new series): with a refresh of an hour, only the message can do it.
    updated = client.put(f"/workflows/{changing}", json=every_second("changing", id="new"))
    assert updated.status_code == 200, updated.text
    every_worker_printed(f"workflow {changing} changed: schedules new")
    old_slots = slots_of(client, changing, "old")
    heard_at = datetime.now(UTC)
    wait_for_slots(client, witness, 2, after=heard_at)
    wait_until(
        lambda: len(slots_of(client, changing, "new")) >= 2,
        within=CLUSTER_WAIT,
        what="the new schedule fires",
    )
    assert slots_of(client, changing, "old") == old_slots, "a worker fired the old schedule"

    # Removed: no worker fires it again.
    removed = client.put(
        f"/workflows/{changing}", json={**every_second("changing"), "triggers": []}
    )
    assert removed.status_code == 200, removed.text
    every_worker_printed(f"workflow {changing} changed: schedules none")
    fired = slots_of(client, changing)
    wait_for_slots(client, witness, 2, after=datetime.now(UTC))
    assert slots_of(client, changing) == fired, "a worker fired a removed schedule"

    # Paused: the same, through the pause route.
    paused = client.post(f"/workflows/{witness}/pause")
    assert paused.status_code == 200, paused.text
    every_worker_printed(f"workflow {witness} changed: schedules w (paused)")
    stopped = slots_of(client, witness)
    probe = client.post("/workflows/", json=every_second("probe")).json()["id"]
    wait_for_slots(client, probe, 2, after=datetime.now(UTC))
    assert slots_of(client, witness) == stopped, "a paused schedule fired"
