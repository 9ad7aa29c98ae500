"""Prometheus metrics, fed from the committed event stream (the engine knows nothing of them).

The values are plain in-process counters: prometheus_client (and the HTTP server,
WSGI and exposition code it imports, ~50 ms) is loaded only by a process that
serves `/metrics`, which calls `register()` to expose them through its default
registry. A `ductwork run` counts for nobody and never imports it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ductwork.models import Event

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class _Metric:
    """One metric family: a value (or histogram) per tuple of label values."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def _child(self, values: tuple[str, ...]) -> Any:
        child = self._children.get(values)
        if child is None:
            with self._lock:
                child = self._children.setdefault(values, self._new_child())
        return child

    def _new_child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        """The child for these label values (in `labelnames` order)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        return self._child(tuple(str(value) for value in values))

    def samples(self) -> list[tuple[tuple[str, ...], Any]]:
        """(label values, child) for every child so far."""
        with self._lock:
            return list(self._children.items())


class _Value:
    """A counter or gauge value (float adds are atomic enough under the GIL for counts)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount`."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract `amount` (gauges)."""
        self.value -= amount


class Counter(_Metric):
    """A monotonic count (`name` ends in `_total`, as Prometheus exposes it)."""

    kind = "counter"

    def _new_child(self) -> _Value:
        return _Value()

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` to the unlabelled counter."""
        self.labels().inc(amount)


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def _new_child(self) -> _Value:
        return _Value()

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` to the unlabelled gauge."""
        self.labels().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Subtract `amount` from the unlabelled gauge."""
        self.labels().dec(amount)


class _Buckets:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        """Count one observation in the first bucket whose bound is >= `amount`."""
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class Histogram(_Metric):
    """Observations counted in cumulative buckets (`le` bounds), with their sum."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = (),
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(sorted(float(bound) for bound in buckets))

    def _new_child(self) -> _Buckets:
        return _Buckets(self.buckets)


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
_ALL: tuple[_Metric, ...] = (
    RUNS_STARTED,
    RUNS_FINISHED,
    RUNS_ACTIVE,
    NODES_FINISHED,
    NODE_RETRIES,
    NODE_LATENCY,
)
# Unlabelled metrics show a 0 sample before their first increment, as prometheus_client's do.
for _metric in _ALL:
    if not _metric.labelnames:
        _metric.labels()


def _format_bound(bound: float) -> str:
    # The `le` text prometheus_client writes for these bounds ("0.0005", "1.0", "+Inf").
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _Collector:
    """Turns the in-process values into Prometheus metric families at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        for metric in _ALL:
            labels = list(metric.labelnames)
            if isinstance(metric, Histogram):
                histogram = HistogramMetricFamily(metric.name, metric.documentation, labels=labels)
                for values, child in metric.samples():
                    cumulative = 0
                    buckets: list[tuple[str, float]] = []
                    for bound, count in zip(
                        (*child.bounds, float("inf")), child.counts, strict=True
                    ):
                        cumulative += count
                        buckets.append((_format_bound(bound), cumulative))
                    histogram.add_metric(list(values), buckets, child.sum)
                yield histogram
                continue
            family = CounterMetricFamily if isinstance(metric, Counter) else GaugeMetricFamily
            values_family = family(metric.name, metric.documentation, labels=labels)
            for values, child in metric.samples():
                values_family.add_metric(list(values), child.value)
            yield values_family


_registered = False
_register_lock = threading.Lock()


def register() -> None:
    """Expose these metrics through prometheus_client's default registry (once per process).

    Called by the API module serving `/metrics`; importing prometheus_client here, not
    at module import, keeps it out of processes that never serve them.
    """
    global _registered
    with _register_lock:
        if _registered:
            return
        from prometheus_client import REGISTRY

        REGISTRY.register(_Collector())  # type: ignore[arg-type]
        _registered = True


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
