"""Settings of the notifier deployable (``NAZAR_*``)."""

from __future__ import annotations

from pydantic import Field

from nazar_common.settings import CommonSettings


class NotifierSettings(CommonSettings):
    notifier_listen_host: str = Field(
        default="127.0.0.1",
        description="Address of /healthz, /readyz, /metrics and the internal test endpoint.",
    )
    notifier_listen_port: int = Field(default=8082, ge=0, le=65535, description="Its port.")
    dashboard_url: str = Field(
        default="", description="External URL of the dashboard, used for links in messages."
    )
    notifier_prefetch: int = Field(default=20, ge=1, description="Unacked alert events in flight.")
    notifier_poll_interval: float = Field(
        default=0.5, gt=0, description="Seconds between scans for due groups and notifications."
    )
    notifier_config_ttl: float = Field(
        default=30.0, gt=0, description="Channels are re-read at least this often (seconds)."
    )
    notifier_max_attempts: int = Field(
        default=6, ge=1, description="Delivery attempts per notification before it fails."
    )
    notifier_retry_budget: float = Field(
        default=300.0, gt=0, description="Seconds a notification may keep retrying before it fails."
    )
    notifier_backoff_base: float = Field(
        default=1.0, gt=0, description="First retry delay in seconds (doubles each attempt)."
    )
    notifier_backoff_max: float = Field(
        default=60.0, gt=0, description="Longest retry delay, seconds (Retry-After may exceed it)."
    )
    notifier_send_timeout: float = Field(
        default=10.0, gt=0, description="Seconds one delivery attempt may take."
    )
    notifier_concurrency: int = Field(
        default=16, ge=1, description="Deliveries in flight at once (across endpoints)."
    )
    notifier_lease: float = Field(
        default=120.0, gt=0, description="Seconds a claimed notification stays with one replica."
    )
    notifier_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open an endpoint's breaker."
    )
    notifier_breaker_reset: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker waits before a trial attempt."
    )
    notifier_alert_cooldown: float = Field(
        default=0.0,
        ge=0,
        description="Minimum seconds between two notifications about the same alert in a channel.",
    )
    notifier_send_resolved: bool = Field(
        default=True, description="Send a notification when an alert resolves."
    )
    notifier_flap_window: float = Field(
        default=600.0, gt=0, description="Window (seconds) in which state changes are counted."
    )
    notifier_flap_threshold: int = Field(
        default=6, ge=2, description="State changes within the window that make an alert flap."
    )
    notifier_smtp_ca_file: str = Field(
        default="", description="Extra CA bundle (PEM) trusted for SMTP TLS, e.g. a private CA."
    )
    notifier_event_retention_days: int = Field(
        default=30, ge=1, description="Days processed event ids and deliveries are kept."
    )
