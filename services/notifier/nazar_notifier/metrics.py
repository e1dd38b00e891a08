"""Prometheus metrics of the notifier (``nazar_notifier_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "nazar_notifier_events_total", "Alert events consumed", ["outcome"]
)
NOTIFICATIONS = Counter(
    "nazar_notifier_notifications_total",
    "Notifications by final outcome (sent, failed, silenced)",
    ["channel_type", "kind", "status"],
)
ATTEMPTS = Counter(
    "nazar_notifier_delivery_attempts_total",
    "Delivery attempts by outcome (sent, retry, failed, short_circuited)",
    ["channel_type", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "nazar_notifier_delivery_seconds",
    "Duration of one delivery attempt",
    ["channel_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_TO_SEND_SECONDS = Histogram(
    "nazar_notifier_event_to_send_seconds",
    "From an alert event's timestamp to the receiver's acceptance of its notification",
    ["channel_type"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
DEAD_LETTERED = Counter(
    "nazar_notifier_dead_lettered_total", "Alert events sent to the dead-letter queue",
    ["reason"],
)
BREAKER_OPEN = Gauge(
    "nazar_notifier_breaker_open", "1 while an endpoint's circuit breaker is open", ["endpoint"]
)
OUTSTANDING = Gauge(
    "nazar_notifier_outstanding_notifications", "Notifications pending or being sent"
)
UNKNOWN_CHANNELS = Counter(
    "nazar_notifier_unknown_channel_total", "Events naming a channel that does not exist"
)
