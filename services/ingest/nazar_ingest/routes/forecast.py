"""``GET /api/v1/forecast``: when will a series cross a threshold? (read scope)

Each matching series' hourly averages over ``lookback`` (the 1-hour rollup)
go through :func:`nazar_common.forecast.forecast`: a Theil-Sen trend with the
daily profile removed, projected to the threshold, with an interval. One
host and metric gives one forecast ("disk full in 6 days ± 1"); a metric
alone gives the fleet, soonest crossing first (``within`` keeps only those
expected to cross within the horizon).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from nazar_common.auth import Scope
from nazar_common.db.hourly import HourlySeries, hourly_averages
from nazar_common.errors import InvalidInputError
from nazar_common.forecast import DAY, HOUR, Forecast, forecast
from nazar_common.schemas.names import METRIC_NAME_RE
from nazar_ingest.deps import AppState, connection, get_state, require
from nazar_ingest.routes.query import LabelFilter, _check_hosts, parse_labels
from nazar_ingest.timeparse import parse_duration

router = APIRouter(tags=["query"])

#: Longest history and horizon accepted.
MAX_LOOKBACK = 90 * DAY
MAX_HORIZON = 365 * DAY
#: Default and largest number of series forecast in one request.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def forecast_out(
    s: HourlySeries, f: Forecast, horizon: float, projection: bool = True
) -> dict[str, Any]:
    """The API form of one series' forecast (``projection``: with the projected line)."""
    what = f"{s.metric} on {s.host}"
    eta = f.eta
    return {
        "host": s.host,
        "metric": s.metric,
        "labels": s.labels,
        "status": f.status,
        "summary": f.summary(what),
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


def _compute(
    found: list[HourlySeries], threshold: float, now: float, direction: Literal["above", "below"],
    horizon: float, projection: bool,
) -> list[dict[str, Any]]:
    out = [forecast_out(s, forecast(s.times, s.values, threshold, now, direction,
                                     horizon=horizon), horizon, projection) for s in found]
    # soonest first; then those that do not cross, then those without a forecast
    rank = {"crossed": 0, "crossing": 1, "not_crossing": 2, "insufficient_data": 3}
    out.sort(key=lambda f: (rank[f["status"]], f["crossing_ts"] or 0.0, f["host"]))
    return out


@router.get(
    "/api/v1/forecast",
    summary="When a series is expected to cross a threshold (capacity forecast)",
    responses={
        400: {"description": "Invalid parameters (problem+json)"},
        401: {"description": "Missing or invalid API key"},
        403: {"description": "The key lacks the read scope"},
    },
)
async def get_forecast(
    state: Annotated[AppState, Depends(get_state)],
    _: Annotated[object, Depends(require(Scope.READ))],
    metric: Annotated[str | None, Query(description="Metric name (required).")] = None,
    threshold: Annotated[
        float | None, Query(description="The level to forecast (required), e.g. 90.")
    ] = None,
    host: Annotated[
        list[str] | None,
        Query(description="Only this host; repeatable; default every host (the fleet)."),
    ] = None,
    labels: LabelFilter = None,
    direction: Annotated[
        Literal["above", "below"],
        Query(description="above: crossing upwards (disk used); below: downwards (free)."),
    ] = "above",
    horizon: Annotated[
        str, Query(description="How far ahead counts as soon (duration, default 30d).")
    ] = "30d",
    lookback: Annotated[
        str, Query(description="History the trend is fitted on (default 14d, at most 90d).")
    ] = "14d",
    within: Annotated[
        bool, Query(description="Only series expected to cross within the horizon.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most series.")] = DEFAULT_LIMIT,
    projection: Annotated[
        bool | None,
        Query(description="Include the projected line (default: only when host is given)."),
    ] = None,
) -> Response:
    """One forecast per matching series: status ``crossing`` (with the
    expected time ``crossing_at`` and an ``interval``), ``crossed``,
    ``not_crossing`` (with the ``reason``) or ``insufficient_data``."""
    if not metric:
        raise InvalidInputError("metric is required")
    if not METRIC_NAME_RE.match(metric):
        raise InvalidInputError(f"metric {metric[:200]!r} is not a valid metric name")
    if threshold is None:
        raise InvalidInputError("threshold is required (the level to forecast, e.g. 90)")
    if threshold != threshold or threshold in (float("inf"), float("-inf")):
        raise InvalidInputError("threshold must be a finite number")
    horizon_s = parse_duration(horizon, "horizon")
    lookback_s = parse_duration(lookback, "lookback")
    if horizon_s > MAX_HORIZON:
        raise InvalidInputError(f"horizon must be at most {MAX_HORIZON / DAY:.0f}d")
    if lookback_s > MAX_LOOKBACK or lookback_s < 12 * HOUR:
        raise InvalidInputError(
            f"lookback must be between 12h and {MAX_LOOKBACK / DAY:.0f}d"
        )
    hosts = _check_hosts(host)
    wanted = parse_labels(labels)
    now = time.time()
    async with connection(state) as conn:
        found, truncated = await hourly_averages(
            conn, start=now - lookback_s, end=now, metric=metric, host=hosts, labels=wanted,
            limit=limit,
        )
    # Theil-Sen is quadratic in the points: off the event loop
    with_line = projection if projection is not None else hosts is not None
    out = await asyncio.to_thread(_compute, found, threshold, now, direction, horizon_s,
                                  with_line)
    if within:
        out = [f for f in out if f["within_horizon"]]
    body = {
        "metric": metric,
        "threshold": threshold,
        "direction": direction,
        "horizon_seconds": horizon_s,
        "lookback_seconds": lookback_s,
        "now": _iso(now),
        "now_ts": now,
        "forecasts": out,
        "truncated": truncated,
    }
    return Response(orjson.dumps(body), media_type="application/json")
