"""Read API for the dashboard: the fleet overview, metric-name search and
label values (read scope). SQL lives in :mod:`nazar_ingest.store` and
:mod:`nazar_common.db.queries`."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from nazar_common.db import queries
from nazar_common.errors import InvalidInputError
from nazar_common.schemas.names import METRIC_NAME_RE
from nazar_ingest import store
from nazar_ingest.deps import connection
from nazar_ingest.routes.query import (
    _AUTH,
    _BAD_PARAMS,
    Backend,
    LabelFilter,
    Reader,
    State,
    _check_host,
    _json,
    _stale_after,
    parse_labels,
)
from nazar_ingest.timeparse import parse_duration

router = APIRouter(tags=["query"])

#: Longest sparkline range, and points per sparkline.
MAX_SPARK_RANGE = 7 * 86400.0
SPARK_POINTS = 60


def parse_sort(raw: str) -> tuple[store.SortKey, bool]:
    """``host`` ascending, ``-cpu`` descending."""
    text = raw.strip()
    descending = text.startswith("-")
    key = text.lstrip("-+")
    if key not in store.SORT_KEYS:
        raise InvalidInputError(
            f"sort must be one of {', '.join(store.SORT_KEYS)} (prefix - for descending), "
            f"not {raw!r}"
        )
    return key, descending  # type: ignore[return-value]


def spark_step(range_s: float) -> int:
    """Whole minutes giving about ``SPARK_POINTS`` points over ``range_s``."""
    return max(60, math.ceil(range_s / SPARK_POINTS / 60) * 60)


@router.get(
    "/api/v1/overview",
    summary="A page of hosts with status, open alerts, latest values and sparklines",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def overview(
    state: State,
    backend: Backend,
    _: Reader,
    q: Annotated[
        str | None, Query(max_length=253, description="Hosts whose name contains this.")
    ] = None,
    label: LabelFilter = None,
    status: Annotated[
        list[store.HostStatus] | None, Query(description="up, stale or down; repeatable.")
    ] = None,
    sort: Annotated[
        str,
        Query(description="host, status, last_seen, alerts, cpu, mem or disk; prefix - for "
              "descending."),
    ] = "host",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    spark: Annotated[
        str, Query(description="Sparkline range, a duration (default 1h, at most 7d).")
    ] = "1h",
    stale_after: Annotated[
        str | None,
        Query(description="A host is stale when its latest sample is older "
              "(default NAZAR_HOST_STALE_AFTER)."),
    ] = None,
    down_after: Annotated[
        str | None,
        Query(description="A host is down when its latest sample is older "
              "(default NAZAR_HOST_DOWN_AFTER)."),
    ] = None,
) -> Response:
    sort_key, descending = parse_sort(sort)
    spark_range = parse_duration(spark, "spark")
    if spark_range > MAX_SPARK_RANGE:
        raise InvalidInputError("spark must be at most 7d")
    stale = _stale_after(state, stale_after)
    down = (
        timedelta(seconds=parse_duration(down_after, "down_after"))
        if down_after is not None
        else timedelta(seconds=state.settings.host_down_after)
    )
    if down < stale:
        raise InvalidInputError("down_after must not be shorter than stale_after")
    now = datetime.now(UTC)
    request = store.OverviewQuery(
        now=now,
        stale_after=stale,
        down_after=down,
        search=q.strip() if q and q.strip() else None,
        labels=parse_labels(label, "label") or None,
        statuses=list(dict.fromkeys(status)) if status else None,
        sort=sort_key,
        descending=descending,
        limit=limit,
        offset=offset,
    )
    step = spark_step(spark_range)
    start = datetime.fromtimestamp(queries.align(now.timestamp() - spark_range, step), UTC)
    async with connection(state) as conn:
        page, total, counts = await store.overview_page(conn, request)
        latest, sparks = await store.overview_series(
            conn, backend, [h["host"] for h in page], start=start,
            step=timedelta(seconds=step),
        )
    for host in page:
        host["latest"] = latest[host["host"]]
        host["spark"] = sparks[host["host"]]
    return _json(
        {
            "total": total,
            "offset": offset,
            "limit": limit,
            "counts": counts,
            "spark": {"start": start.timestamp(), "end": now.timestamp(), "step": step},
            "metrics": store.OVERVIEW_METRICS,
            "hosts": page,
        }
    )


@router.get(
    "/api/v1/metrics/search",
    summary="Metric names containing every word of a query (autocomplete)",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def search_metrics(
    state: State,
    _: Reader,
    q: Annotated[str, Query(max_length=200, description="Words the name must contain.")] = "",
    host: Annotated[str | None, Query(description="Only metrics of this host.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    """Case-insensitive; names starting with the first word come first, then
    by name. ``truncated`` says whether more names matched."""
    host = _check_host(host)
    started = time.perf_counter()
    async with connection(state) as conn:
        names, truncated = await queries.search_metric_names(
            conn, query=q, host=host, limit=limit
        )
    return _json(
        {
            "names": names,
            "truncated": truncated,
            "took_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    )


@router.get(
    "/api/v1/labels",
    summary="Label names and values of the series of a metric (or of a host)",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def labels(
    state: State,
    _: Reader,
    metric: Annotated[str | None, Query(description="Only series of this metric.")] = None,
    host: Annotated[str | None, Query(description="Only series of this host.")] = None,
) -> Response:
    if metric is not None and not METRIC_NAME_RE.match(metric):
        raise InvalidInputError(f"metric {metric!r} is not a valid metric name")
    host = _check_host(host)
    if metric is None and host is None:
        raise InvalidInputError("give a metric, a host or both")
    async with connection(state) as conn:
        found = await queries.label_values(conn, metric=metric, host=host)
    return _json({"labels": found})
