"""Backtests: a rule evaluated over stored history with the live service's
evaluators and state machine, storing nothing."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nazar_analyzer import detectors, store
from nazar_analyzer.evaluators import (
    ThresholdEvaluator,
    absence_observation,
    estimate_interval,
    new_detector_evaluator,
    step_many,
    warm_many,
)
from nazar_analyzer.machine import Machine, Status, Transition
from nazar_analyzer.rules import Rule
from nazar_common.schemas.config import AbsenceParams, RuleSpec

Resolution = Literal["auto", "raw", "1m", "1h"]
DAY = 86400.0


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: RuleSpec
    start: datetime | None = Field(default=None, description="Default: 24 hours before end.")
    end: datetime | None = Field(default=None, description="Default: now.")
    resolution: Resolution = Field(
        default="auto",
        description="raw samples, or 1-minute / 1-hour rollup averages; auto picks raw up to "
        "2 days, 1m up to 30 days, else 1h.",
    )
    max_series: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _range(self) -> BacktestRequest:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        if self.rule.params.kind == "forecast":
            raise ValueError(
                "forecast rules are not backtested: GET /api/v1/forecast shows what such a "
                "rule sees now (the crossing time of each series)"
            )
        if self.rule.params.kind == "burn_rate":
            raise ValueError("burn_rate rules are evaluated on their SLO's windows as they "
                             "pass; backtests replay series rules only")
        return self


@dataclass
class SeriesHistory:
    series_id: int | None
    host: str
    metric: str | None
    labels: dict[str, str]
    times: list[float]
    values: list[float]


@dataclass
class BacktestResult:
    transitions: list[dict[str, Any]] = field(default_factory=list)
    points: int = 0


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _row(h: SeriesHistory, tr: Transition) -> dict[str, Any]:
    obs = tr.observation
    return {
        "at": _iso(tr.at),
        "host": h.host,
        "metric": h.metric,
        "labels": h.labels,
        "series_id": h.series_id,
        "from": tr.previous,
        "to": tr.state,
        "started_at": _iso(tr.started_at),
        "value": _finite(obs.value) if obs else None,
        "expected": {"low": obs.low, "high": obs.high, "centre": obs.centre} if obs else None,
        "score": obs.score if obs else None,
        "explanation": obs.explanation if obs else None,
        "contributors": list(obs.contributors) if obs else [],
    }


def evaluate_series(
    rule: Rule,
    h: SeriesHistory,
    start: float,
    end: float,
    limits: detectors.Limits,
    default_interval: float,
) -> tuple[list[Transition], int]:
    """Transitions of one series over [start, end]; points before ``start``
    only warm the detector up."""
    return evaluate_histories(rule, [h], start, end, limits, default_interval)[0]


def evaluate_histories(
    rule: Rule,
    histories: list[SeriesHistory],
    start: float,
    end: float,
    limits: detectors.Limits,
    default_interval: float,
) -> list[tuple[list[Transition], int]]:
    """Transitions and evaluated point counts of several series over [start, end].

    Detectors of the series share detector banks, so every series is warmed up
    and evaluated in batches, as in the service."""
    if isinstance(rule.spec.params, AbsenceParams):
        out = []
        for h in histories:
            machine = Machine(rule.spec.for_, rule.spec.keep_firing_for)
            out.append((_absence(rule, h, start, end, machine, Status()), len(h.times)))
        return out
    if rule.kind == "threshold":
        ev = ThresholdEvaluator(rule.spec.params, rule.spec.metric)  # type: ignore[arg-type]
        out = []
        for h in histories:
            machine = Machine(rule.spec.for_, rule.spec.keep_firing_for)
            status = Status()
            transitions: list[Transition] = []
            n = 0
            for ts, value in zip(h.times, h.values, strict=True):
                if start <= ts <= end:
                    transitions += machine.step(status, ev.observe(ts, value))
                    n += 1
            out.append((transitions, n))
        return out
    pool = detectors.BankPool()
    work = []
    warm = []
    for h in histories:
        interval = estimate_interval(h.times, default_interval)
        dev = new_detector_evaluator(rule, h.series_id or 0, interval, limits, pool)
        warm.append((dev, [(t, v) for t, v in zip(h.times, h.values, strict=True) if t < start]))
        inside = [(t, v) for t, v in zip(h.times, h.values, strict=True) if start <= t <= end]
        work.append((
            dev, Machine(rule.spec.for_, rule.spec.keep_firing_for), Status(),
            [t for t, _ in inside], [v for _, v in inside],
        ))
    warm_many(warm)
    return step_many(work)


def _absence(
    rule: Rule, h: SeriesHistory, start: float, end: float, machine: Machine, status: Status
) -> list[Transition]:
    """Replays absence: the periodic check is simulated at the instants that
    matter (a gap exceeding ``after``, then ``for`` later, then data again)."""
    params = rule.spec.params
    assert isinstance(params, AbsenceParams)
    what = f"host {h.host}" if h.metric is None else f"{h.metric} on {h.host}"
    out: list[Transition] = []
    times = [t for t in h.times if t <= end]
    last: float | None = None

    def check(now: float) -> None:
        if now < start or now > end:
            return
        out.extend(machine.step(status, absence_observation(rule, now, last, what)))

    for t in times:
        if last is not None and t - last > params.after:
            due = last + params.after + 1e-3
            check(due)
            if rule.spec.for_ > 0:
                check(due + rule.spec.for_)
        last = t
        check(t)
    if last is not None and end - last > params.after:
        due = last + params.after + 1e-3
        check(due)
        if rule.spec.for_ > 0:
            check(due + rule.spec.for_)
    return out


def pick_resolution(resolution: Resolution, span: float) -> str:
    if resolution != "auto":
        return resolution
    if span <= 2 * DAY:
        return "raw"
    if span <= 30 * DAY:
        return "1m"
    return "1h"


async def run(
    pool: asyncpg.Pool,
    req: BacktestRequest,
    hosts: dict[str, dict[str, str]],
    *,
    limits: detectors.Limits,
    default_interval: float,
    max_series: int,
    max_points: int,
) -> dict[str, Any]:
    """Load history for the rule's series and evaluate it."""
    rule = Rule(0, req.rule.name, 0, req.rule)
    end = (req.end or datetime.now(UTC)).timestamp()
    start = req.start.timestamp() if req.start else end - DAY
    params = req.rule.params
    warmup = 0.0
    if params.kind == "baseline":
        warmup = params.window
    elif params.kind == "anomaly":
        warmup = params.training_window
    resolution = pick_resolution(req.resolution, end - start + warmup)
    limit = min(req.max_series or max_series, max_series)
    started = time.perf_counter()
    histories: list[SeriesHistory] = []
    truncated = False
    if req.rule.metric is None:  # host absence: any sample of the host counts
        names = [h for h, labels in hosts.items() if rule.matches_host(h, labels)]
        names = sorted(names)
        truncated = len(names) > limit
        for host in names[:limit]:
            rows = await pool.fetch(
                "SELECT DISTINCT extract(epoch FROM s.time)::float8 AS ts FROM samples s "
                "JOIN series r ON r.id = s.series_id WHERE r.host = $1 "
                "AND s.time >= to_timestamp($2) AND s.time <= to_timestamp($3) ORDER BY 1 LIMIT $4",
                host, start - params.after, end, max_points,  # type: ignore[union-attr]
            )
            times = [r["ts"] for r in rows]
            histories.append(SeriesHistory(None, host, None, {}, times, [0.0] * len(times)))
    else:
        series = await store.matching_series(
            pool, req.rule.metric, req.rule.match_series_labels,
            req.rule.selector.hosts or None, limit + 1,
        )
        series = [s for s in series if rule.matches_host(s.host, hosts.get(s.host, {}))]
        truncated = len(series) > limit
        series = series[:limit]
        data = await store.load_history(
            pool, [s.id for s in series], start - warmup, end, resolution, max_points
        )
        for s in series:
            times, values = data.get(s.id, ([], []))
            histories.append(SeriesHistory(s.id, s.host, s.metric, s.labels, times, values))
    loaded = time.perf_counter()
    transitions: list[dict[str, Any]] = []
    points = 0
    evaluated = evaluate_histories(rule, histories, start, end, limits, default_interval)
    for h, (trs, n) in zip(histories, evaluated, strict=True):
        points += n
        transitions += [_row(h, t) for t in trs]
    transitions.sort(key=lambda t: (t["at"], t["host"]))
    counts: dict[str, int] = {}
    for t in transitions:
        counts[t["to"]] = counts.get(t["to"], 0) + 1
    return {
        "rule": req.rule.name,
        "kind": req.rule.params.kind,
        "start": _iso(start),
        "end": _iso(end),
        "resolution": resolution,
        "series": len(histories),
        "truncated": truncated,
        "points": points,
        "counts": counts,
        "transitions": transitions,
        "timing": {
            "load_seconds": round(loaded - started, 4),
            "evaluate_seconds": round(time.perf_counter() - loaded, 4),
        },
    }
