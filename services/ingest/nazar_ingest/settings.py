"""Settings of the ingest / API deployable (``NAZAR_*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr

from nazar_common.settings import CommonSettings


class IngestSettings(CommonSettings):
    listen_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    listen_port: int = Field(default=8080, ge=1, le=65535, description="Port the API listens on.")
    workers: int = Field(default=1, ge=1, description="Worker processes (uvicorn).")
    public_url: str = Field(
        default="", description="External URL of the API and dashboard, used in links."
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, after decompression (413 beyond).",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a client has to send a whole request body (408 and the "
        "connection closed beyond).",
    )
    max_samples_per_request: int = Field(
        default=50_000, ge=1, description="Most samples in one ingest request (413 beyond)."
    )
    accept_past: timedelta = Field(
        default=timedelta(hours=24), description="Oldest sample timestamp accepted, before now."
    )
    accept_future: timedelta = Field(
        default=timedelta(minutes=10), description="Latest sample timestamp accepted, after now."
    )
    insert_mode: Literal["copy", "unnest"] = Field(
        default="unnest",
        description="How samples are written: one INSERT of three unnested arrays (half the "
        "client CPU of COPY and faster on the server too, measured), or COPY.",
    )
    commit_max_samples: int = Field(
        default=20_000, ge=1, description="Group commit: most samples written per transaction."
    )
    commit_concurrency: int = Field(
        default=3, ge=1, description="Group commit: most transactions in flight at once."
    )
    commit_overlap_samples: int = Field(
        default=1_000,
        ge=1,
        description="Group commit: while transactions are in flight, another starts only once "
        "this many samples wait, and at least as many as those being written (fewer, larger "
        "transactions contend less in PostgreSQL).",
    )
    series_limit_per_host: int = Field(
        default=20_000,
        ge=0,
        description="Cardinality budget: most series one host may have; samples of new series "
        "beyond it are rejected (0: no limit).",
    )
    series_limit: int = Field(
        default=1_000_000,
        ge=0,
        description="Cardinality budget: most series in the store; samples of new series beyond "
        "it are rejected (0: no limit).",
    )
    outbox_batch: int = Field(
        default=400,
        ge=1,
        description="Outbox relay: rows published per round (a group commit writes one row "
        "per analyzer partition it touches).",
    )
    maintenance_interval: float = Field(
        default=30.0, gt=0, description="Seconds between partition / rollup maintenance runs."
    )
    events_retention: timedelta = Field(
        default=timedelta(days=400),
        description="How long events (deploys, config changes, incidents) are kept after they "
        "end.",
    )
    report_timeout: float = Field(
        default=120.0, gt=0,
        description="Longest an availability report, monthly report or SLO measurement may run "
        "in the database (s); a longer one is refused with 422 (ask for less).",
    )
    query_max_points: int = Field(
        default=11_000, ge=10, description="Most points per series a query may return."
    )
    query_max_series: int = Field(
        default=500, ge=1, description="Most series one query may return."
    )
    host_stale_after: float = Field(
        default=60.0, gt=0, description="A host is 'stale' when its last sample is older (s)."
    )
    host_down_after: float = Field(
        default=600.0,
        gt=0,
        description="A host is 'down' in the fleet overview when its last sample is older (s).",
    )
    dependency_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for the database or broker per request."
    )
    ingest_aliases: bool = Field(
        default=True,
        description="Also store the agent's metric names for known node_exporter / OTel / "
        "Telegraf gauges (docs/ingestion.md).",
    )
    dashboard_dir: str = Field(
        default="",
        description="Folder of the built web dashboard (index.html and assets/); default: "
        "dashboard/dist of the source checkout.",
    )
    analyzer_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Analyzer's internal HTTP endpoint (rule backtests).",
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8082",
        description="Notifier's internal HTTP endpoint (test notifications).",
    )
    bootstrap_admin_key: SecretStr = Field(
        default=SecretStr(""),
        description="If set, this admin key is created at start-up when no admin key exists "
        "(for automated installs such as the Helm chart).",
    )
    bootstrap_operator_key: SecretStr = Field(
        default=SecretStr(""),
        description="If set, this key is created at start-up, named `operator`, unless its id "
        "is known (a revoked key stays revoked): the Kubernetes operator's own key, so the "
        "bootstrap admin key need not leave the hands of its owner (the Helm chart sets it).",
    )
    bootstrap_agent_key: SecretStr = Field(
        default=SecretStr(""),
        description="If set, this `ingest`-scoped key is created at start-up, named `agent`, "
        "unless its id is known: the key of the Helm chart's agent DaemonSet.",
    )
