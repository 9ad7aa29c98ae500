"""Prometheus metrics, fed from the committed event stream (the engine knows nothing of them)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from ductwork.models import Event

RUNS_STARTED = Counter("ductwork_runs_started_total", "Runs that started executing.")
RUNS_FINISHED = Counter("ductwork_runs_finished_total", "Runs that ended, by status.", ["status"])
RUNS_ACTIVE = Gauge("ductwork_runs_active", "Runs this process is advancing now.")
NODES_FINISHED = Counter(
    "ductwork_nodes_finished_total", "Node executions that ended, by type and status.", ["status"]
)
NODE_RETRIES = Counter("ductwork_node_retries_total", "Node attempts that failed and were retried.")
NODE_LATENCY = Histogram(
    "ductwork_node_latency_seconds",
    "Time from a node's first start to its completion.",
    ["cached"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def observe(events: Sequence[Event]) -> None:
    """Count what a batch of committed events says happened."""
    for event in events:
        kind = event.type
        if kind == "node_completed":
            NODES_FINISHED.labels("completed").inc()
            latency = event.data.get("latency_ms")
            if isinstance(latency, int | float):
                NODE_LATENCY.labels(str(bool(event.data.get("cached"))).lower()).observe(
                    latency / 1000
                )
        elif kind == "node_failed":
            NODES_FINISHED.labels("failed").inc()
        elif kind == "node_skipped":
            NODES_FINISHED.labels("skipped").inc()
        elif kind == "node_retrying":
            NODE_RETRIES.inc()
        elif kind == "run_started":
            RUNS_STARTED.inc()
        elif kind == "run_finished":
            RUNS_FINISHED.labels(str(event.data.get("status", "unknown"))).inc()
