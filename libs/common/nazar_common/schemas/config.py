"""Stored configuration: alert rules and notification channels.

These are the shapes of the REST API, the ``AlertRule`` custom resource and
the rows the analyzer and notifier load. Evaluation and delivery live in
their services; the schema lives here so every component agrees on it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nazar_common.schemas.durations import Seconds
from nazar_common.schemas.events import KIND_PATTERN
from nazar_common.schemas.names import LABEL_NAME_PATTERN, METRIC_NAME_PATTERN
from nazar_common.schemas.storable import SecretText, Text
from nazar_common.schemas.wire import Severity

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
#: Rule kinds that learn from their series, and so may be held after a deploy.
HOLDABLE_KINDS = ("baseline", "anomaly")
#: Longest ``deploys.annotate_within`` / ``hold_for`` (seconds): one week.
MAX_DEPLOY_WINDOW = 7 * 86400.0
#: Longest forecast horizon (seconds): one year.
MAX_FORECAST_HORIZON = 365 * 86400.0
#: Longest burn-rate window (seconds): 30 days.
MAX_BURN_WINDOW = 30 * 86400.0
#: Validation context of a configuration being written (API, operator). Checks
#: that a stored object may predate run only with it, so that a rule accepted by
#: an earlier version still loads (and is still evaluated) after an upgrade.
WRITE: dict[str, bool] = {"write": True}


def _writing(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("write"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class HostSelector(_Strict):
    """Which hosts a rule applies to. Empty means every host."""

    match_labels: dict[Annotated[str, Field(pattern=LABEL_NAME_PATTERN)], Text] = Field(
        default_factory=dict, description="Host labels that must all be equal."
    )
    hosts: list[Text] = Field(default_factory=list, description="Explicit host names (any of).")


class ThresholdParams(_Strict):
    kind: Literal["threshold"] = "threshold"
    comparator: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    value: float
    recovery_value: float | None = Field(
        default=None,
        description="Hysteresis: once firing, the alert resolves only when this level is "
        "crossed back.",
    )

    @model_validator(mode="after")
    def _recovery_on_resolving_side(self, info: ValidationInfo) -> ThresholdParams:
        if self.recovery_value is None or not _writing(info):
            return self
        if self.comparator in (">", ">=") and self.recovery_value > self.value:
            raise ValueError(
                f"recovery_value must be at or below value for {self.comparator!r} "
                "(it is the level the alert resolves at)"
            )
        if self.comparator in ("<", "<=") and self.recovery_value < self.value:
            raise ValueError(
                f"recovery_value must be at or above value for {self.comparator!r} "
                "(it is the level the alert resolves at)"
            )
        return self


class BaselineParams(_Strict):
    kind: Literal["baseline"] = "baseline"
    band: float = Field(
        default=4.0,
        gt=0,
        description="Narrowest band half-width in robust deviations (the band widens to the "
        "series' own recent extremes).",
    )
    direction: Literal["above", "below", "both"] = "both"
    seasonality: Literal["none", "daily", "weekly", "auto"] = "auto"
    min_history: float = Field(
        default=86400.0, ge=0, description="Seconds of history needed before it may fire."
    )
    window: float = Field(default=7 * 86400.0, gt=0, description="History window in seconds.")

    @model_validator(mode="after")
    def _history_within_window(self, info: ValidationInfo) -> BaselineParams:
        if _writing(info) and self.min_history > self.window:
            raise ValueError("min_history must not exceed window (the rule could never fire)")
        return self


class AnomalyParams(_Strict):
    kind: Literal["anomaly"] = "anomaly"
    algorithm: Text = Field(
        default="composite",
        description="composite (spikes, level shifts, variance, flat lines, drifts, seasonal "
        "breaks, rate of extremes; one configuration for every series), isolation_forest, "
        "or ensemble (robust band + isolation forest).",
    )
    score_threshold: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Scores are calibrated so that 0.5 is the edge of learned normal "
        "behaviour; raise it to fire on stronger anomalies only.",
    )
    min_fraction: float = Field(
        default=0.5, gt=0, le=1, description="Fraction of recent points that must be anomalous."
    )
    recent_points: int = Field(default=3, ge=1)
    training_window: float = Field(default=7 * 86400.0, gt=0)
    retrain_every: float = Field(
        default=3600.0, gt=0, description="isolation_forest and ensemble only: retrain period."
    )


class AbsenceParams(_Strict):
    kind: Literal["absence"] = "absence"
    after: float = Field(default=300.0, gt=0, description="Seconds without data before firing.")


class ForecastParams(_Strict):
    """Fire when the series is expected to cross ``value`` within ``horizon``
    (a Theil-Sen trend on the hourly rollup, daily profile removed: see
    :mod:`nazar_analyzer.capacity`)."""

    kind: Literal["forecast"] = "forecast"
    value: float = Field(description="The level the series is forecast to reach, e.g. 90 (%).")
    direction: Literal["above", "below"] = Field(
        default="above", description="above: crossing upwards (disk used); below: downwards "
        "(free space)."
    )
    horizon: Annotated[Seconds, Field(le=MAX_FORECAST_HORIZON)] = Field(
        default=7 * 86400.0,
        description="Fire when the expected crossing is within this long (seconds or a "
        "duration like 7d).",
    )
    recovery_horizon: Annotated[Seconds, Field(le=MAX_FORECAST_HORIZON)] | None = Field(
        default=None,
        description="Hysteresis: a firing alert resolves only once the expected crossing is "
        "further away than this (default 1.5 x horizon), so a wobbling trend does not flap.",
    )
    lookback: Annotated[Seconds, Field(ge=12 * 3600.0, le=90 * 86400.0)] = Field(
        default=7 * 86400.0, description="History the trend is fitted on (12h to 90d)."
    )
    every: Annotated[Seconds, Field(ge=1.0, le=86400.0)] = Field(
        default=900.0, description="How often the forecast is evaluated."
    )

    @model_validator(mode="after")
    def _recovery_beyond_horizon(self) -> ForecastParams:
        if self.recovery_horizon is not None and self.recovery_horizon < self.horizon:
            raise ValueError("recovery_horizon must be at least the horizon")
        return self

    @property
    def clear_after(self) -> float:
        """The expected crossing must be further than this for a firing alert to resolve."""
        return self.recovery_horizon if self.recovery_horizon is not None else 1.5 * self.horizon


class DeployParams(_Strict):
    """How a rule relates to events (deploys) that touch the hosts of its alerts."""

    annotate_within: Annotated[Seconds, Field(le=MAX_DEPLOY_WINDOW)] | None = Field(
        default=None,
        description="An alert that starts within this long after an event touching its host "
        "says so in its explanation and annotations (seconds or a duration like 15m).",
    )
    hold_for: Annotated[Seconds, Field(le=MAX_DEPLOY_WINDOW)] | None = Field(
        default=None,
        description="Baseline and anomaly rules only: the series' detector re-learns from the "
        "event on, and no alert opens for this long after it (seconds or a duration).",
    )
    kinds: list[Annotated[str, Field(pattern=KIND_PATTERN)]] = Field(
        default_factory=lambda: ["deploy"],
        min_length=1,
        max_length=16,
        description="Event kinds that count (default: deploy).",
    )


class BurnWindow(_Strict):
    """One multi-window pair: fire when the error budget burns at ``factor``
    times the sustainable rate over both the long and the short window."""

    long: Annotated[Seconds, Field(le=MAX_BURN_WINDOW)]
    short: Annotated[Seconds, Field(le=MAX_BURN_WINDOW)]
    factor: float = Field(gt=0, le=1e6, description="Burn rate threshold (1 = exactly on budget).")

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnWindow:
        if self.short > self.long:
            raise ValueError("the short window must not be longer than the long window")
        return self


def _default_burn_windows() -> list[BurnWindow]:
    """The SRE workbook's pairs for a 30-day objective: 2 % of the budget in an
    hour (fast), 5 % in six hours (slow)."""
    return [BurnWindow(long=3600, short=300, factor=14.4),
            BurnWindow(long=6 * 3600, short=1800, factor=6.0)]


class BurnRateParams(_Strict):
    """Multi-window, multi-burn-rate alert on a service level objective."""

    kind: Literal["burn_rate"] = "burn_rate"
    slo: str = Field(pattern=NAME_PATTERN, description="Name of the SLO (/api/v1/slos).")
    windows: list[BurnWindow] = Field(
        default_factory=_default_burn_windows, min_length=1, max_length=8,
        description="Window pairs; the alert fires while any pair burns too fast in both its "
        "windows (default: 1h/5m at 14.4x and 6h/30m at 6x).",
    )


RuleParams = Annotated[
    ThresholdParams | BaselineParams | AnomalyParams | AbsenceParams | ForecastParams
    | BurnRateParams,
    Field(discriminator="kind"),
]
#: Rule kinds that may go without a metric (host absence; burn_rate: the SLO names them).
UNBOUND_KINDS = ("absence", "burn_rate")


class RuleSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique DNS-style name.")
    description: Text = ""
    enabled: bool = True
    metric: str | None = Field(
        default=None,
        pattern=METRIC_NAME_PATTERN,
        description="Metric name; optional only for host absence rules (burn_rate rules take "
        "their metrics from the SLO).",
    )
    match_series_labels: dict[Text, Text] = Field(
        default_factory=dict, description="Series labels that must all be equal."
    )
    selector: HostSelector = Field(default_factory=HostSelector)
    params: RuleParams
    for_: float = Field(default=0.0, ge=0, alias="for", description="Pending period, seconds.")
    keep_firing_for: float = Field(default=0.0, ge=0)
    severity: Severity = "warning"
    labels: dict[Text, Text] = Field(default_factory=dict)
    annotations: dict[Text, Text] = Field(default_factory=dict)
    channels: list[Text] = Field(default_factory=list)
    deploys: DeployParams | None = Field(
        default=None, description="Annotate alerts after deploys, or hold them while the "
        "detector re-learns."
    )

    @model_validator(mode="after")
    def _metric_required(self) -> RuleSpec:
        if self.metric is None and self.params.kind not in UNBOUND_KINDS:
            raise ValueError(f"a {self.params.kind} rule needs a metric")
        if self.metric is not None and self.params.kind == "burn_rate":
            raise ValueError("a burn_rate rule takes its metrics from its SLO: no metric")
        return self

    @field_validator("deploys")
    @classmethod
    def _hold_learning_rules_only(
        cls, value: DeployParams | None, info: ValidationInfo
    ) -> DeployParams | None:
        params = info.data.get("params")
        if value is not None and value.hold_for is not None and params is not None and (
            params.kind not in HOLDABLE_KINDS
        ):
            raise ValueError(
                f"hold_for applies to baseline and anomaly rules only: a {params.kind} rule "
                "does not learn, so it is never held (annotate_within is allowed)"
            )
        return value


class ChannelMatch(_Strict):
    labels: dict[Text, Text] = Field(default_factory=dict)
    min_severity: Severity = "info"


class SlackConfig(_Strict):
    type: Literal["slack"] = "slack"
    webhook_url: SecretText
    channel: Text | None = None


class EmailConfig(_Strict):
    type: Literal["email"] = "email"
    to: list[Text] = Field(min_length=1)
    sender: Text = Field(alias="from")
    smtp_host: Text
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Text | None = None
    password: SecretText | None = None


class WebhookConfig(_Strict):
    type: Literal["webhook"] = "webhook"
    url: HttpUrl
    headers: dict[Text, SecretText] = Field(default_factory=dict)


ChannelConfig = Annotated[SlackConfig | EmailConfig | WebhookConfig, Field(discriminator="type")]


class ChannelSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    enabled: bool = True
    config: ChannelConfig
    match: ChannelMatch | None = Field(
        default=None, description="Also receive alerts of other rules that match these."
    )
    group_by: list[Text] = Field(default_factory=lambda: ["rule", "host"])
    group_wait: float = Field(default=10.0, ge=0)
    group_interval: float = Field(default=300.0, ge=0)
    repeat_interval: float = Field(default=4 * 3600.0, ge=0)
