"""``GET /api/v1/forecast``: when will a series cross a threshold? (read scope)

The parameters are checked here (a bad one is a 400 without further ado);
the forecasts themselves are computed by the analyzer, which has the
numerical libraries (``POST /forecast`` of its internal endpoint, as for
backtests; 503 while it is unreachable): each matching series' hourly
averages over ``lookback`` through a Theil-Sen trend with the daily profile
and level shifts removed, projected to the threshold, with an interval. One
host and metric gives one forecast ("disk full in 6 days ± 1"); a metric
alone gives the fleet, soonest crossing first (``within`` keeps only those
expected to cross within the horizon). Method: docs/capacity.md.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from nazar_common.auth import Scope
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.names import METRIC_NAME_RE
from nazar_ingest.deps import AppState, get_state, require
from nazar_ingest.routes.alerts import ask_analyzer
from nazar_ingest.routes.query import LabelFilter, _check_hosts, parse_labels
from nazar_ingest.timeparse import parse_duration

router = APIRouter(tags=["query"])

DAY = 86400.0
#: Longest history and horizon accepted (as the analyzer's).
MAX_LOOKBACK = 90 * DAY
MAX_HORIZON = 365 * DAY
#: Default and largest number of series forecast in one request.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@router.get(
    "/api/v1/forecast",
    summary="When a series is expected to cross a threshold (capacity forecast)",
    responses={
        400: {"description": "Invalid parameters (problem+json)"},
        401: {"description": "Missing or invalid API key"},
        403: {"description": "The key lacks the read scope"},
        503: {"description": "The analyzer, which computes forecasts, is unreachable"},
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
) -> Any:
    """One forecast per matching series: status ``crossing`` (with the
    expected time ``crossing_at`` and an ``interval``), ``crossed``,
    ``not_crossing`` (with the ``reason``) or ``insufficient_data``."""
    if not metric:
        raise InvalidInputError("metric is required")
    if not METRIC_NAME_RE.match(metric):
        raise InvalidInputError(f"metric {metric[:200]!r} is not a valid metric name")
    if threshold is None:
        raise InvalidInputError("threshold is required (the level to forecast, e.g. 90)")
    if not math.isfinite(threshold):
        raise InvalidInputError("threshold must be a finite number")
    horizon_s = parse_duration(horizon, "horizon")
    lookback_s = parse_duration(lookback, "lookback")
    if horizon_s > MAX_HORIZON:
        raise InvalidInputError(f"horizon must be at most {MAX_HORIZON / DAY:.0f}d")
    if lookback_s > MAX_LOOKBACK or lookback_s < 12 * 3600:
        raise InvalidInputError(f"lookback must be between 12h and {MAX_LOOKBACK / DAY:.0f}d")
    hosts = _check_hosts(host)
    body = {
        "metric": metric,
        "threshold": threshold,
        "hosts": None if hosts is None else [hosts] if isinstance(hosts, str) else hosts,
        "labels": parse_labels(labels),
        "direction": direction,
        "horizon": horizon_s,
        "lookback": lookback_s,
        "within": within,
        "limit": limit,
        "projection": projection if projection is not None else hosts is not None,
    }
    return await ask_analyzer(state, "/forecast", body, "Forecast failed", "forecast-failed")
