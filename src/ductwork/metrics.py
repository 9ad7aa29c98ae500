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


# The labelled children of the per-node series, looked up once: `labels()` on every
# committed event was a measurable part of a node's overhead.
_NODES_COMPLETED = NODES_FINISHED.labels("completed")
_NODES_FAILED = NODES_FINISHED.labels("failed")
_NODES_SKIPPED = NODES_FINISHED.labels("skipped")
_LATENCY_CACHED = NODE_LATENCY.labels("true")
_LATENCY_UNCACHED = NODE_LATENCY.labels("false")


def observe(events: Sequence[Event]) -> None:
    """Count what a batch of committed events says happened."""
    for event in events:
        kind = event.type
        if kind == "node_completed":
            _NODES_COMPLETED.inc()
            latency = event.data.get("latency_ms")
            if isinstance(latency, int | float):
                cached = event.data.get("cached")
                (_LATENCY_CACHED if cached else _LATENCY_UNCACHED).observe(latency / 1000)
        elif kind == "node_failed":
            _NODES_FAILED.inc()
        elif kind == "node_skipped":
            _NODES_SKIPPED.inc()
        elif kind == "node_retrying":
            NODE_RETRIES.inc()
        elif kind == "run_started":
            RUNS_STARTED.inc()
        elif kind == "run_finished":
            RUNS_FINISHED.labels(str(event.data.get("status", "unknown"))).inc()
