"""Settings of the analyzer deployable (``NAZAR_ANALYZER_*``)."""

from __future__ import annotations

from pydantic import Field

from nazar_common.settings import CommonSettings


class AnalyzerSettings(CommonSettings):
    analyzer_listen_host: str = Field(
        default="127.0.0.1", description="Address of the internal HTTP endpoint."
    )
    analyzer_listen_port: int = Field(
        default=8081, ge=0, le=65535,
        description="Port of the internal HTTP endpoint (/healthz, /readyz, /metrics, /backtest).",
    )
    analyzer_prefetch: int = Field(
        default=512, ge=2,
        description="Sample batches of one partition delivered ahead of acknowledgement "
        "(a batch is acknowledged once a checkpoint covers it).",
    )
    analyzer_checkpoint_interval: float = Field(
        default=5.0, gt=0,
        description="Seconds between checkpoints of a partition's state (alerts are "
        "recorded at once; after a crash the batches since the last checkpoint are replayed).",
    )
    analyzer_checkpoint_samples: int = Field(
        default=200_000, ge=1,
        description="A partition is also checkpointed after this many evaluated samples.",
    )
    analyzer_rebalance_interval: float = Field(
        default=2.0, gt=0,
        description="Seconds between membership heartbeats; a replica owning more than "
        "its share of partitions hands the excess over at this pace.",
    )
    analyzer_reload_interval: float = Field(
        default=30.0, gt=0,
        description="Seconds between full reloads of rules and host labels (changes are also "
        "picked up at once through LISTEN nazar_config).",
    )
    analyzer_sweep_interval: float = Field(
        default=10.0, gt=0, description="Seconds between absence / no-data evaluations."
    )
    analyzer_burn_rate_interval: float = Field(
        default=30.0, gt=0,
        description="Seconds between evaluations of each burn_rate rule (each measures its "
        "SLO's windows in the database).",
    )
    analyzer_nodata_after: float = Field(
        default=900.0, gt=0,
        description="A series silent this long puts its alerts of sample-driven rules in "
        "the nodata state.",
    )
    analyzer_absence_lookback: float = Field(
        default=86400.0, gt=0,
        description="Absence rules consider hosts / series seen within this many seconds "
        "(older ones are treated as decommissioned unless an alert is already open).",
    )
    analyzer_events_lookback: float = Field(
        default=8 * 86400.0, gt=0,
        description="Events (deploys...) that started within this many seconds are kept in "
        "memory for rules with `deploys` (they are reloaded on NOTIFY nazar_events).",
    )
    analyzer_state_flush_interval: float = Field(
        default=60.0, gt=0,
        description="Seconds between detector state (model) snapshots; they are written "
        "with a partition's checkpoint.",
    )
    analyzer_default_interval: float = Field(
        default=60.0, gt=0,
        description="Sampling interval assumed for a series whose history is too short to "
        "measure it (converts rule windows in seconds to points).",
    )
    analyzer_max_history_points: int = Field(
        default=4032, ge=32, description="Most history points a detector keeps / warms up on."
    )
    analyzer_detector_cache: int = Field(
        default=100_000, ge=1, description="Detectors kept in memory (least recently used out)."
    )
    analyzer_outbox_batch: int = Field(
        default=50, ge=1, description="Outbox relay: alert events published per round."
    )
    analyzer_backtest_max_series: int = Field(
        default=200, ge=1, description="Most series one backtest evaluates."
    )
    analyzer_backtest_max_points: int = Field(
        default=2_000_000, ge=1000, description="Most points one backtest loads."
    )
    analyzer_drain_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to finish in-flight batches on SIGTERM."
    )
