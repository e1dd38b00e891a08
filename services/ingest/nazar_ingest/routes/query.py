"""Read API: range queries, series search, metric names and hosts (read scope).

Parameter parsing happens here; planning and SQL live in
:mod:`nazar_common.db.queries`, counter rates in :mod:`nazar_ingest.rates`.
Bad parameters raise InvalidInputError (400 problem+json), never 500.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from nazar_common.auth import Scope
from nazar_common.db import queries
from nazar_common.db.backends import StorageBackend
from nazar_common.errors import InvalidInputError, NotFoundError
from nazar_common.schemas.names import HOST_PATTERN, HOST_RE, LABEL_NAME_RE, METRIC_NAME_RE
from nazar_common.schemas.storable import text_problem
from nazar_ingest import rates
from nazar_ingest.deps import AppState, connection, get_backend, get_state, require
from nazar_ingest.timeparse import parse_duration, parse_time

router = APIRouter(tags=["query"])
Reader = Annotated[object, Depends(require(Scope.READ))]
State = Annotated[AppState, Depends(get_state)]
Backend = Annotated[StorageBackend, Depends(get_backend)]

#: Default range of a query without ``start``.
DEFAULT_RANGE = 3600.0
#: Most series listed in a host's detail.
HOST_SERIES_LIMIT = 10_000

_METRIC_GLOB_RE = re.compile(r"^[a-zA-Z0-9_.:*]{1,200}$")

_BAD_PARAMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters (problem+json with a detail)"}
}
_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The key lacks the read scope"},
}


#: A repeatable ``label`` filter: ``k=v,k2=v2`` or a JSON object (:func:`parse_labels`).
LabelFilter = Annotated[
    list[str] | None,
    Query(description="Labels that must be present with these values: k=v,k2=v2 "
          "(repeatable) or a JSON object."),
]


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def parse_labels(values: list[str] | None, name: str = "labels") -> dict[str, str]:
    """``k=v,k2=v2``, repeated parameters, or a JSON object; merged."""
    out: dict[str, str] = {}
    for raw in values or []:
        text = raw.strip()
        if not text:
            continue
        pairs: list[tuple[object, object]] = []
        if text.startswith("{"):
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise InvalidInputError(f"{name} {raw!r} is not a valid JSON object") from None
            if not isinstance(obj, dict):
                raise InvalidInputError(f"{name} must be a JSON object of strings")
            pairs = list(obj.items())
        else:
            for part in text.split(","):
                if not part.strip():
                    continue
                key, sep, value = part.partition("=")
                if not sep:
                    raise InvalidInputError(
                        f"{name} {part.strip()!r} is not of the form name=value "
                        "(use k=v,k2=v2 or a JSON object)"
                    )
                pairs.append((key.strip(), value))
        for label, text_value in pairs:
            if not isinstance(label, str) or not LABEL_NAME_RE.match(label):
                raise InvalidInputError(f"{name}: {label!r} is not a valid label name")
            if not isinstance(text_value, str):
                raise InvalidInputError(f"{name}: the value of {label!r} must be a string")
            problem = text_problem(text_value)
            if problem is not None:
                raise InvalidInputError(f"{name}: the value of {label!r} {problem}")
            if out.get(label, text_value) != text_value:
                raise InvalidInputError(
                    f"{name}: {label!r} is given twice with different values"
                )
            out[label] = text_value
    return out


def _check_host(host: str | None) -> str | None:
    if host is None or host == "":
        return None
    if not HOST_RE.match(host):
        raise InvalidInputError(f"host {host!r} is not a valid host name")
    return host


def _check_hosts(hosts: list[str] | None) -> queries.HostFilter:
    """One host name, several (any of them), or None for all."""
    names = list(dict.fromkeys(h for h in hosts or [] if h))
    for name in names:
        _check_host(name)
    if not names:
        return None
    return names[0] if len(names) == 1 else names


def _limits(state: AppState) -> queries.QueryLimits:
    s = state.settings
    return queries.QueryLimits(
        max_points=s.query_max_points,
        max_series=s.query_max_series,
        retention_raw=s.retention_raw,
        retention_1m=s.retention_1m,
    )


@router.get(
    "/api/v1/query",
    summary="Points of the series of one metric over a time range",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def query_range(
    state: State,
    backend: Backend,
    _: Reader,
    metric: Annotated[str | None, Query(description="Metric name (required).")] = None,
    host: Annotated[
        list[str] | None,
        Query(description="Only this host; repeatable (any of them); default all."),
    ] = None,
    labels: Annotated[
        list[str] | None,
        Query(description="Series labels must contain these: k=v,k2=v2 (repeatable) "
              "or a JSON object."),
    ] = None,
    start: Annotated[
        str | None, Query(description="Unix seconds, RFC 3339 or now-<duration>; "
                          "default end - 1h.")
    ] = None,
    end: Annotated[str | None, Query(description="As start; default now.")] = None,
    step: Annotated[
        str | None, Query(description="Seconds or a duration (60s, 5m, 1h, 1d).")
    ] = None,
    agg: Annotated[
        str,
        Query(description="avg, min, max, count, last or sum (with a step); rate or "
              "increase of a cumulative counter (always with a step, default automatic)."),
    ] = "avg",
) -> Response:
    """Raw points for ranges up to 6 h without ``step``; otherwise one point
    per step bucket (timestamp = bucket start), read from the raw samples,
    the 1-minute or the 1-hour rollup depending on step and range."""
    if not metric:
        raise InvalidInputError("metric is required")
    if not METRIC_NAME_RE.match(metric):
        raise InvalidInputError(f"metric {metric!r} is not a valid metric name")
    now = time.time()
    t_end = parse_time(end, now, "end") if end is not None else now
    t_start = parse_time(start, now, "start") if start is not None else t_end - DEFAULT_RANGE
    step_s = parse_duration(step, "step") if step is not None else None
    limits = _limits(state)
    plan = queries.plan_query(t_start, t_end, step_s, agg.strip().lower(), now, limits)
    hosts = _check_hosts(host)
    wanted = parse_labels(labels)
    if plan.agg in queries.COUNTER_AGGREGATES:
        async with connection(state) as conn:
            found = await queries.counter_series(
                conn, plan, metric=metric, host=hosts, labels=wanted, limits=limits
            )
        return _json(_counter_body(plan, found))
    async with connection(state) as conn:
        body = await queries.query_range(
            conn, backend, plan, metric=metric, host=hosts, labels=wanted, limits=limits
        )
    return _json(body)


def _counter_body(plan: queries.QueryPlan, found: list[queries.CounterSeries]) -> dict[str, Any]:
    """Per-bucket ``rate`` / ``increase`` of each series (counter resets handled)."""
    assert plan.step is not None  # counter plans always have a step
    agg: rates.CounterAggregate = "increase" if plan.agg == "increase" else "rate"
    series = [
        s.out(rates.counter_buckets(s.points, plan.step, agg, origin=queries.ORIGIN,
                                    start=plan.start))
        for s in found
    ]
    return queries.range_body(plan, series)


@router.get(
    "/api/v1/series",
    summary="Search series",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def search_series(
    state: State,
    _: Reader,
    metric: Annotated[
        str | None, Query(description="Metric name; * matches anything (cpu.*).")
    ] = None,
    host: Annotated[str | None, Query(description="Only this host.")] = None,
    match: Annotated[
        list[str] | None,
        Query(description="Labels the series must contain: k=v,k2=v2 or a JSON object."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    if metric is not None and not _METRIC_GLOB_RE.match(metric):
        raise InvalidInputError(f"metric {metric!r} is not a metric name or pattern")
    host = _check_host(host)
    wanted = parse_labels(match, "match")
    async with connection(state) as conn:
        found, truncated = await queries.search_series(
            conn, metric=metric or None, host=host, labels=wanted, limit=limit
        )
    return _json({"series": found, "truncated": truncated})


@router.get(
    "/api/v1/metrics/names",
    summary="Metric names (of one host)",
    responses={**_BAD_PARAMS, **_AUTH},
)
async def metric_names(
    state: State,
    _: Reader,
    host: Annotated[str | None, Query(description="Only metrics of this host.")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    host = _check_host(host)
    async with connection(state) as conn:
        names = await queries.metric_names(conn, host=host, limit=limit)
    return _json({"names": names})


def _stale_after(state: AppState, raw: str | None) -> timedelta:
    """The ``stale_after`` parameter, by default ``NAZAR_HOST_STALE_AFTER``."""
    if raw is None:
        return timedelta(seconds=state.settings.host_stale_after)
    return timedelta(seconds=parse_duration(raw, "stale_after"))


@router.get(
    "/api/v1/hosts", summary="Hosts with rate and status", responses={**_BAD_PARAMS, **_AUTH}
)
async def list_hosts(
    state: State,
    backend: Backend,
    _: Reader,
    stale_after: Annotated[
        str | None,
        Query(description="A host is stale when its latest sample is older "
              "(default NAZAR_HOST_STALE_AFTER, 60s)."),
    ] = None,
) -> Response:
    threshold = _stale_after(state, stale_after)
    async with connection(state) as conn:
        hosts, window = await queries.list_hosts(
            conn, backend, now=datetime.now(UTC), stale_after=threshold
        )
    return _json({"hosts": hosts, "rate_window": queries.window_out(window)})


@router.get(
    "/api/v1/hosts/{host}",
    summary="One host with its series",
    responses={**_BAD_PARAMS, **_AUTH, 404: {"description": "Unknown host"}},
)
async def get_host(
    state: State,
    backend: Backend,
    _: Reader,
    host: Annotated[str, Path(pattern=HOST_PATTERN)],
    stale_after: Annotated[
        str | None,
        Query(description="A host is stale when its latest sample is older "
              "(default NAZAR_HOST_STALE_AFTER, 60s)."),
    ] = None,
) -> Response:
    threshold = _stale_after(state, stale_after)
    async with connection(state) as conn:
        hosts, window = await queries.list_hosts(
            conn, backend, now=datetime.now(UTC), stale_after=threshold, host=host
        )
        if not hosts:
            raise NotFoundError(f"no host named {host!r}")
        series, truncated = await queries.host_series(conn, host, HOST_SERIES_LIMIT)
    return _json(
        {
            **hosts[0],
            "rate_window": queries.window_out(window),
            "series": series,
            "series_truncated": truncated,
        }
    )
