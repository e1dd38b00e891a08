"""Service level objectives and availability (stored configuration, pure).

An SLO states how good a service must be over a rolling window:

* ``ratio``: the share of good events among all events, from a pair of
  metrics (``good`` and ``total``) whose samples count events since the
  previous one (StatsD counters, OTLP delta sums, a per-interval count pushed
  over REST), or, with ``counter``, cumulative counters whose increase counts
  (Prometheus ``*_total``, OTLP cumulative sums);
* ``availability``: the share of monitored time the selected hosts were
  reporting (see :func:`availability` and ``/api/v1/reports/availability``).

The error budget is what the objective allows to fail (``1 - objective``);
a burn rate of 1 spends exactly the budget over the window. ``burn_rate``
rules (:class:`~nazar_common.schemas.config.BurnRateParams`) alert on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nazar_common.schemas.config import NAME_PATTERN, HostSelector
from nazar_common.schemas.durations import Seconds
from nazar_common.schemas.names import METRIC_NAME_PATTERN
from nazar_common.schemas.storable import Text

#: Longest SLO window (seconds): 400 days, the 1-hour rollups' default retention.
MAX_SLO_WINDOW = 400 * 86400.0
#: Default silence after which a host counts as down (seconds).
DEFAULT_GAP = 300.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SeriesMatch(_Strict):
    metric: str = Field(pattern=METRIC_NAME_PATTERN)
    match_labels: dict[Text, Text] = Field(
        default_factory=dict, description="Series labels that must all be equal."
    )


class RatioIndicator(_Strict):
    kind: Literal["ratio"] = "ratio"
    good: SeriesMatch = Field(description="Samples counting good events.")
    total: SeriesMatch = Field(description="Samples counting all events.")
    counter: bool = Field(
        default=False,
        description="The metrics are cumulative counters (Prometheus *_total, OTLP cumulative "
        "sums): their increase counts, a drop being a reset. Default: each sample is a count.",
    )


class AvailabilityIndicator(_Strict):
    kind: Literal["availability"] = "availability"
    gap: Annotated[Seconds, Field(le=86400.0)] = Field(
        default=DEFAULT_GAP,
        description="A host silent for longer than this is down (seconds or a duration).",
    )


Indicator = Annotated[RatioIndicator | AvailabilityIndicator, Field(discriminator="kind")]


class SLOSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique DNS-style name.")
    description: Text = ""
    objective: float = Field(
        gt=0, lt=100, description="Target share of good events or time, in percent (99.9)."
    )
    window: Annotated[Seconds, Field(ge=60, le=MAX_SLO_WINDOW)] = Field(
        default=30 * 86400.0, description="Rolling window (seconds or a duration: 30d)."
    )
    selector: HostSelector = Field(default_factory=HostSelector)
    indicator: Indicator
    labels: dict[Text, Text] = Field(default_factory=dict)

    @property
    def budget(self) -> float:
        """The error budget: the share of events (or time) allowed to fail."""
        return 1.0 - self.objective / 100.0


# -- measurements ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    """Good and total (events, or seconds up and monitored) over one window."""

    good: float
    total: float

    @property
    def error_ratio(self) -> float | None:
        if self.total <= 0:
            return None
        return min(max(1.0 - self.good / self.total, 0.0), 1.0)

    def burn_rate(self, budget: float) -> float | None:
        ratio = self.error_ratio
        return None if ratio is None else ratio / budget


def status(spec: SLOSpec, window: Measure, burn: dict[str, Measure]) -> dict[str, Any]:
    """The SLO's state as the API shows it: SLI, attainment, budget, burn rates."""
    ratio = window.error_ratio
    budget = spec.budget
    remaining = None if ratio is None else 1.0 - ratio / budget
    return {
        "good": window.good,
        "total": window.total,
        "sli_percent": None if ratio is None else round((1.0 - ratio) * 100.0, 6),
        "attained": None if ratio is None else ratio <= budget + 1e-12,
        "error_budget": budget,
        "error_budget_remaining": None if remaining is None else round(remaining, 6),
        "burn_rates": {
            name: (None if (b := m.burn_rate(budget)) is None else round(b, 6))
            for name, m in burn.items()
        },
    }


# -- availability (pure) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Presence:
    """When one host reported within ``[start - gap, end)``: its first and last
    sample times and every silence longer than the gap (from, to)."""

    host: str
    first: float | None
    last: float | None
    silences: Sequence[tuple[float, float]] = ()


@dataclass(frozen=True, slots=True)
class Outage:
    start: float
    end: float
    ongoing: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Availability:
    monitored: float = 0.0
    outages: list[Outage] = field(default_factory=list)
    #: When monitoring began (the period's start, or the host's first sample).
    begin: float | None = None

    @property
    def downtime(self) -> float:
        return sum(o.seconds for o in self.outages)

    def merge(self, other: Availability) -> None:
        self.monitored += other.monitored
        self.outages += other.outages

    def clip(self, start: float, end: float) -> Availability:
        """This availability restricted to ``[start, end)``."""
        begin = start if self.begin is None else max(start, self.begin)
        if begin >= end or self.monitored <= 0:
            return Availability()
        out = Availability(end - begin, begin=begin)
        for o in self.outages:
            a, b = max(o.start, begin), min(o.end, end)
            if b > a:
                out.outages.append(Outage(a, b, o.ongoing))
        return out

    def out(self, max_outages: int = 0) -> dict[str, Any]:
        down = self.downtime
        recovered = [o for o in self.outages if not o.ongoing]
        longest = max(self.outages, key=lambda o: o.seconds, default=None)
        body: dict[str, Any] = {
            "uptime_percent": None if self.monitored <= 0 else round(
                100.0 * (1.0 - down / self.monitored), 6),
            "monitored_seconds": round(self.monitored, 3),
            "downtime_seconds": round(down, 3),
            "outages": len(self.outages),
            "down_at_end": any(o.ongoing for o in self.outages),
            "longest_outage": None if longest is None else _outage(longest),
            "mttr_seconds": None if not recovered else round(
                sum(o.seconds for o in recovered) / len(recovered), 3),
        }
        if max_outages:
            newest = sorted(self.outages, key=lambda o: o.start, reverse=True)[:max_outages]
            body["outage_list"] = [_outage(o) for o in newest]
        return body


def _outage(o: Outage) -> dict[str, Any]:
    return {"start": o.start, "end": o.end, "seconds": round(o.seconds, 3), "ongoing": o.ongoing}


def availability(
    p: Presence, start: float, end: float, gap: float, first_seen: float | None = None
) -> Availability:
    """Uptime of one host over ``[start, end)``.

    A host is down during every silence longer than ``gap``: from its last
    sample before the silence to its first sample after it (clipped to the
    period); a silence still going on at ``end`` is an ongoing outage. Time
    before the host was first seen is not monitored."""
    begin = start if first_seen is None else max(start, first_seen)
    if begin >= end:
        return Availability()
    result = Availability(monitored=end - begin, begin=begin)
    if p.first is None or p.last is None:  # not a sample in the whole period
        result.outages.append(Outage(begin, end, ongoing=True))
        return result
    spans = []
    if p.first - begin > gap:
        spans.append((begin, p.first, False))
    spans += [(a, b, False) for a, b in p.silences if b - a > gap]
    if end - p.last > gap:
        spans.append((p.last, end, True))
    for a, b, ongoing in spans:
        a, b = max(a, begin), min(b, end)
        if b > a:
            result.outages.append(Outage(a, b, ongoing))
    return result
