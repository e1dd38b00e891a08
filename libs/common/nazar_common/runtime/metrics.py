"""Prometheus metrics of the worker runtime, named after the component that
runs it (``nazar_<component>_*``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import Counter, Gauge


@dataclass(frozen=True)
class RuntimeMetrics:
    #: Consumers attached to their queue right now (all brokers of the process).
    consumers: Gauge
    #: 1 while the broker connection is up (all brokers of the process: the sum).
    broker_connected: Gauge
    #: Broker connections re-established after they were lost.
    broker_reconnects: Counter
    #: Consumers re-attached after their channel or subscription was lost.
    consumer_restarts: Counter
    #: Failed rounds of background tasks, by task.
    task_errors: Counter
    #: LISTEN connections re-established after they were lost.
    listener_reconnects: Counter


_lock = threading.Lock()
_by_component: dict[str, RuntimeMetrics] = {}


def runtime_metrics(component: str) -> RuntimeMetrics:
    """The runtime metrics of ``component`` (created once per process)."""
    with _lock:
        found = _by_component.get(component)
        if found is None:
            p = f"nazar_{component}"
            found = _by_component[component] = RuntimeMetrics(
                consumers=Gauge(f"{p}_consumers", "Consumers attached to their queues"),
                broker_connected=Gauge(
                    f"{p}_broker_connected", "1 while the broker connection is up"
                ),
                broker_reconnects=Counter(
                    f"{p}_broker_reconnects_total",
                    "Broker connections re-established after a loss",
                ),
                consumer_restarts=Counter(
                    f"{p}_consumer_restarts_total",
                    "Consumers re-attached after their channel or subscription was lost",
                    ["queue"],
                ),
                task_errors=Counter(
                    f"{p}_background_errors_total", "Failed rounds of background tasks", ["task"]
                ),
                listener_reconnects=Counter(
                    f"{p}_config_listener_reconnects_total",
                    "LISTEN connections re-established after a loss",
                ),
            )
        return found
