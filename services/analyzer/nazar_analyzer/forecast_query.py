"""Forecasts on request (``POST /forecast`` of the internal endpoint, called
by the API's ``GET /api/v1/forecast``): each matching series' hourly
averages over ``lookback`` through :func:`nazar_analyzer.capacity.forecast`,
soonest crossing first. Parameters are checked by the API first; the model
checks them again."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from nazar_analyzer.capacity import DAY, Forecast, forecast
from nazar_common.db.hourly import HourlySeries, hourly_averages

#: Longest history and horizon; most series in one request.
MAX_LOOKBACK = 90 * DAY
MAX_HORIZON = 365 * DAY
MAX_LIMIT = 1000

#: Order of the answer: crossed, then crossing (soonest first), then the rest.
_RANK = {"crossed": 0, "crossing": 1, "not_crossing": 2, "insufficient_data": 3}


class ForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=200)
    threshold: float = Field(allow_inf_nan=False)
    hosts: list[str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    direction: Literal["above", "below"] = "above"
    horizon: float = Field(default=30 * DAY, gt=0, le=MAX_HORIZON)
    lookback: float = Field(default=14 * DAY, ge=12 * 3600, le=MAX_LOOKBACK)
    within: bool = False
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    projection: bool = True


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def forecast_out(
    s: HourlySeries, f: Forecast, horizon: float, projection: bool = True
) -> dict[str, Any]:
    """The API form of one series' forecast (``projection``: with the projected line)."""
    eta = f.eta
    return {
        "host": s.host,
        "metric": s.metric,
        "labels": s.labels,
        "status": f.status,
        "summary": f.summary(f"{s.metric} on {s.host}"),
        "reason": f.reason or None,
        "crossing_at": _iso(f.crossing_at),
        "crossing_ts": f.crossing_at,
        "eta_seconds": None if eta is None else round(eta),
        "eta_days": None if eta is None else round(eta / DAY, 3),
        "within_horizon": f.within(horizon),
        "interval": {
            "earliest": _iso(f.earliest),
            "latest": _iso(f.latest),
            "earliest_ts": f.earliest,
            "latest_ts": f.latest,
        },
        "trend": {
            "level": _round(f.level),
            "slope_per_day": _round(f.slope_per_day),
            "slope_per_day_low": _round(f.slope_low),
            "slope_per_day_high": _round(f.slope_high),
            "noise": _round(f.noise),
            "daily_amplitude": _round(f.daily_amplitude),
            "level_shift_at": _iso(f.shift_at),
        },
        "history": {"source": "1h", "points": f.points, "first": _iso(f.first),
                    "last": _iso(f.last)},
        "projection": [[t, _round(v)] for t, v in f.projection] if projection else None,
    }


def _compute(found: list[HourlySeries], req: ForecastRequest, now: float) -> list[dict[str, Any]]:
    out = [
        forecast_out(s, forecast(s.times, s.values, req.threshold, now, req.direction,
                                 horizon=req.horizon), req.horizon, req.projection)
        for s in found
    ]
    out.sort(key=lambda f: (_RANK[f["status"]], f["crossing_ts"] or 0.0, f["host"]))
    if req.within:
        out = [f for f in out if f["within_horizon"]]
    return out


async def run(pool: asyncpg.Pool, req: ForecastRequest) -> dict[str, Any]:
    """The answer of ``GET /api/v1/forecast``."""
    now = time.time()
    hosts: str | list[str] | None = req.hosts or None
    found, truncated = await hourly_averages(
        pool, start=now - req.lookback, end=now, metric=req.metric, host=hosts,
        labels=req.labels, limit=req.limit,
    )
    # Theil-Sen is quadratic in the points: off the event loop
    out = await asyncio.to_thread(_compute, found, req, now)
    return {
        "metric": req.metric,
        "threshold": req.threshold,
        "direction": req.direction,
        "horizon_seconds": req.horizon,
        "lookback_seconds": req.lookback,
        "now": _iso(now),
        "now_ts": now,
        "forecasts": out,
        "truncated": truncated,
    }
