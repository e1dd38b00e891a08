"""Reading time series: query planning (pure), SQL building (pure) and the
async functions that run it on an asyncpg connection or pool.

A range query is answered by ONE SQL statement: the matching series are
resolved first (``LIMIT max_series + 1``), then each series' points are
read with an index range scan on ``(series_id, time)`` (or the rollup's
``(series_id, bucket)`` key) and turned into JSON by PostgreSQL itself, so
no per-point Python work is done; the response embeds that JSON text as
:class:`orjson.Fragment`.

Sources: ``raw`` (``samples``), ``1m`` (``samples_1m``) and ``1h``
(``samples_1h``). Rollups keep count, sum, min, max and last per bucket, so
re-aggregating them over any step that is a multiple of their resolution
is exact: avg = sum(sum) / sum(count), min = min(min), max = max(max),
count = sum(count), sum = sum(sum), last = last of the latest bucket.

The counter aggregations ``rate`` and ``increase`` are not computed in SQL:
:func:`counter_series` reads each series' samples (or, from a rollup, its
``(bucket, last)`` pairs) and the caller derives the per-bucket rates with a
pure function, handling counter resets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import orjson

from nazar_common.db.backends import BUCKET_ORIGIN, StorageBackend
from nazar_common.errors import InvalidInputError

Source = Literal["raw", "1m", "1h"]
#: A host name, several (any of them), or None for every host.
HostFilter = str | list[str] | None
Aggregate = Literal["avg", "min", "max", "count", "last", "sum", "rate", "increase"]
#: Aggregations of cumulative counters, derived from consecutive values.
COUNTER_AGGREGATES: tuple[str, ...] = ("rate", "increase")
AGGREGATES: tuple[str, ...] = ("avg", "min", "max", "count", "last", "sum", *COUNTER_AGGREGATES)

#: Bucket width of each source in seconds (0: raw samples).
RESOLUTION: dict[Source, int] = {"raw": 0, "1m": 60, "1h": 3600}
TABLE: dict[Source, str] = {"raw": "samples", "1m": "samples_1m", "1h": "samples_1h"}
_ORDER: tuple[Source, ...] = ("raw", "1m", "1h")

#: Without a step, ranges up to this long return raw points.
RAW_RANGE_WITHOUT_STEP = 6 * 3600.0
#: An automatic step aims at about this many points per series.
AUTO_POINTS = 1000
#: Smallest step accepted (seconds).
MIN_STEP = 1.0
#: A counter aggregation reads at most this many times ``max_points`` samples
#: (or rollup rows) per series.
COUNTER_READ_FACTOR = 10

#: Steps an automatic step is rounded up to (seconds); beyond the last, whole days.
NICE_STEPS: tuple[int, ...] = (
    1, 2, 5, 10, 15, 20, 30,
    60, 120, 300, 600, 900, 1200, 1800,
    3600, 7200, 10800, 14400, 21600, 43200,
    86400,
)

_ORIGIN = BUCKET_ORIGIN.timestamp()
#: Unix seconds of the storage backends' bucket origin.
ORIGIN: float = _ORIGIN


def nice_step(seconds: float) -> int:
    """The smallest round step (1s, 5m, 1h, 1d, ...) of at least ``seconds``."""
    for step in NICE_STEPS:
        if step >= seconds:
            return step
    return math.ceil(seconds / 86400) * 86400


def format_duration(seconds: float) -> str:
    """Short human form: ``90`` → ``"90s"``, ``300`` → ``"5m"``, ``86400`` → ``"1d"``."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def align(ts: float, step: float) -> float:
    """``ts`` floored to a bucket start of width ``step`` (buckets share
    the storage backends' origin, so SQL bucketing agrees)."""
    return _ORIGIN + math.floor((ts - _ORIGIN) / step) * step


@dataclass(frozen=True)
class QueryLimits:
    max_points: int
    max_series: int
    retention_raw: timedelta
    retention_1m: timedelta


@dataclass(frozen=True)
class QueryPlan:
    """What to read: ``start`` is aligned down to ``step`` when there is one."""

    source: Source
    start: float
    end: float
    step: float | None
    agg: str

    @property
    def points(self) -> int:
        if self.step is None:
            return 0
        return math.ceil((self.end - self.start) / self.step)


def _coarsest_needed(start: float, now: float, limits: QueryLimits) -> Source:
    """The finest source still holding data at ``start`` (retention)."""
    if start >= now - limits.retention_raw.total_seconds():
        return "raw"
    if start >= now - limits.retention_1m.total_seconds():
        return "1m"
    return "1h"


def _preferred(step: float) -> Source:
    """The coarsest source whose resolution divides ``step`` exactly, below ``step``."""
    if step >= 3600 and step % 3600 == 0:
        return "1h"
    if step >= 60 and step % 60 == 0:
        return "1m"
    return "raw"


def plan_query(
    start: float,
    end: float,
    step: float | None,
    agg: str,
    now: float,
    limits: QueryLimits,
) -> QueryPlan:
    """Choose source and step for a range query; InvalidInputError when the
    request cannot be answered within the limits. A counter aggregation
    (``rate``, ``increase``) always has a step: without one it gets the
    automatic step (at least 60 s), even for a range that would return raw
    points."""
    if agg not in AGGREGATES:
        raise InvalidInputError(f"agg must be one of {', '.join(AGGREGATES)}, not {agg!r}")
    if end <= start:
        raise InvalidInputError("start must be before end")
    if step is not None and step < MIN_STEP:
        raise InvalidInputError(f"step must be at least {MIN_STEP:g} second")
    span = end - start
    floor = _coarsest_needed(start, now, limits)
    if step is None:
        if span <= RAW_RANGE_WITHOUT_STEP and floor == "raw" and agg not in COUNTER_AGGREGATES:
            return QueryPlan("raw", start, end, None, agg)
        target = min(AUTO_POINTS, limits.max_points - 1)
        step = float(nice_step(max(span / target, 60.0, RESOLUTION[floor])))
        explicit = False
    else:
        explicit = True
    source = max(_preferred(step), floor, key=_ORDER.index)
    resolution = RESOLUTION[source]
    if resolution and step % resolution:
        # Only when retention forces a coarser source than the step suits.
        step = float(math.ceil(step / resolution) * resolution)
    plan = QueryPlan(source, align(start, step), end, step, agg)
    if plan.points > limits.max_points:
        smallest = math.ceil(span / (limits.max_points - 1))
        hint = format_duration(nice_step(smallest))
        what = "the given step" if explicit else "this range"
        raise InvalidInputError(
            f"{what} gives {plan.points} points per series, over the limit of "
            f"{limits.max_points}; use a step of at least {smallest}s (for example {hint})",
            max_points=limits.max_points,
            min_step=smallest,
        )
    return plan


# --------------------------------------------------------------------------- SQL building


def _finite(expr: str) -> str:
    """JSON has no NaN or infinities: they become null."""
    return (
        f"CASE WHEN {expr} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) "
        f"THEN NULL ELSE {expr} END"
    )


_RAW_AGG: dict[str, str] = {
    "avg": "avg(r.value)",
    "min": "min(r.value)",
    "max": "max(r.value)",
    "count": "count(*)::float8",
    "sum": "sum(r.value)",
    "last": "(array_agg(r.value ORDER BY r.time DESC))[1]",
}

_ROLLUP_AGG: dict[str, str] = {
    "avg": "sum(r.sum) / nullif(sum(r.count), 0)",
    "min": "min(r.min)",
    "max": "max(r.max)",
    "count": "sum(r.count)::float8",
    "sum": "sum(r.sum)",
    "last": "(array_agg(r.last ORDER BY r.bucket DESC))[1]",
}


class Params:
    """Collects positional parameters: ``p.add(value)`` returns ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def like_pattern(glob: str) -> str:
    """A LIKE pattern for a glob where ``*`` matches anything."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def series_conditions(
    p: Params,
    *,
    metric: str | None = None,
    host: HostFilter = None,
    labels: dict[str, str] | None = None,
    alias: str = "",
) -> list[str]:
    """WHERE terms selecting series; ``metric`` may be a glob with ``*``,
    ``host`` one name or a list of names (any of them)."""
    col = f"{alias}." if alias else ""
    terms: list[str] = []
    if metric is not None and metric != "*":
        if "*" in metric:
            terms.append(f"{col}metric LIKE {p.add(like_pattern(metric))}")
        else:
            terms.append(f"{col}metric = {p.add(metric)}")
    if isinstance(host, list):
        terms.append(f"{col}host = ANY({p.add(host)}::text[])")
    elif host is not None:
        terms.append(f"{col}host = {p.add(host)}")
    if labels:
        terms.append(f"{col}labels @> {p.add(orjson.dumps(labels).decode())}::jsonb")
    return terms or ["true"]


def build_points_sql(
    backend: StorageBackend,
    plan: QueryPlan,
    *,
    metric: str,
    host: HostFilter,
    labels: dict[str, str] | None,
    max_series: int,
    max_points: int,
) -> tuple[str, list[Any]]:
    """One statement returning ``(id, host, metric, labels, n, points)`` per
    series, where ``points`` is JSON text ``[[t, v], ...]`` ordered by time
    and ``n`` the number of points. At most ``max_series + 1`` rows; when
    there are more than ``max_series``, no points are read."""
    p = Params()
    start = p.add(datetime.fromtimestamp(plan.start, UTC))
    end = p.add(datetime.fromtimestamp(plan.end, UTC))
    sel, gate = _selection(p, metric=metric, host=host, labels=labels, max_series=max_series)
    table = TABLE[plan.source]
    if plan.step is None:
        inner = (
            f"SELECT extract(epoch FROM s.time)::float8 AS t, {_finite('s.value')} AS v "
            f"FROM {table} s WHERE s.series_id = sel.id AND s.time >= {start} "
            f"AND s.time < {end} AND {gate} "
            f"ORDER BY s.time LIMIT {p.add(max_points + 1)}"
        )
    else:
        interval = p.add(timedelta(seconds=plan.step)) + "::interval"
        if plan.source == "raw":
            bucket = backend.bucket_sql(interval, "s.time")
            columns = "s.time, s.value"
            time_col = "time"
            agg = _RAW_AGG[plan.agg]
        else:
            bucket = backend.bucket_sql(interval, "s.bucket")
            columns = "s.bucket, s.count, s.sum, s.min, s.max, s.last"
            time_col = "bucket"
            agg = _ROLLUP_AGG[plan.agg]
        inner = (
            f"SELECT extract(epoch FROM r.b)::float8 AS t, {_finite(agg)} AS v FROM ("
            f"SELECT {bucket} AS b, {columns} FROM {table} s "
            f"WHERE s.series_id = sel.id AND s.{time_col} >= {start} "
            f"AND s.{time_col} < {end} AND {gate}"
            f") r GROUP BY r.b"
        )
    sql = (
        f"{sel} "
        "SELECT sel.id, sel.host, sel.metric, sel.labels::text AS labels, p.n, "
        "coalesce(p.points::text, '[]') AS points FROM sel "
        "CROSS JOIN LATERAL (SELECT count(*) AS n, "
        "json_agg(json_build_array(x.t, x.v) ORDER BY x.t) AS points "
        f"FROM ({inner}) x) p "
        "ORDER BY sel.host, sel.metric, sel.labels, sel.id"
    )
    return sql, p.values


def _selection(
    p: Params,
    *,
    metric: str,
    host: HostFilter,
    labels: dict[str, str] | None,
    max_series: int,
) -> tuple[str, str]:
    """The ``WITH sel AS (...)`` clause resolving at most ``max_series + 1``
    series, and a condition that is false when more than ``max_series`` match
    (so no points are read for a query that will be refused)."""
    limit = p.add(max_series + 1)
    cap = p.add(max_series)
    where = " AND ".join(series_conditions(p, metric=metric, host=host, labels=labels))
    sel = (
        "WITH sel AS MATERIALIZED ("
        f"SELECT id, host, metric, labels FROM series WHERE {where} "
        f"ORDER BY host, metric, labels, id LIMIT {limit})"
    )
    return sel, f"(SELECT count(*) FROM sel) <= {cap}"


def build_counter_sql(
    plan: QueryPlan,
    *,
    metric: str,
    host: HostFilter,
    labels: dict[str, str] | None,
    max_series: int,
    max_rows: int,
) -> tuple[str, list[Any]]:
    """One statement returning ``(id, host, metric, labels, n, ts, vs)`` per
    series for a counter aggregation: the raw samples, or the rollup's
    ``(bucket, last)`` pairs, over ``[start - step, end)`` (the extra step
    gives the first bucket a preceding value), as arrays of Unix seconds and
    values ordered by time, at most ``max_rows + 1`` of them per series."""
    if plan.step is None:
        raise ValueError("a counter aggregation needs a step")
    p = Params()
    start = p.add(datetime.fromtimestamp(plan.start - plan.step, UTC))
    end = p.add(datetime.fromtimestamp(plan.end, UTC))
    sel, gate = _selection(p, metric=metric, host=host, labels=labels, max_series=max_series)
    time_col, value_col = ("time", "value") if plan.source == "raw" else ("bucket", "last")
    inner = (
        f"SELECT extract(epoch FROM s.{time_col})::float8 AS t, s.{value_col} AS v "
        f"FROM {TABLE[plan.source]} s WHERE s.series_id = sel.id "
        f"AND s.{time_col} >= {start} AND s.{time_col} < {end} AND {gate} "
        f"ORDER BY s.{time_col} LIMIT {p.add(max_rows + 1)}"
    )
    sql = (
        f"{sel} "
        "SELECT sel.id, sel.host, sel.metric, sel.labels::text AS labels, p.n, p.ts, p.vs "
        "FROM sel CROSS JOIN LATERAL (SELECT count(*) AS n, "
        "array_agg(x.t ORDER BY x.t) AS ts, array_agg(x.v ORDER BY x.t) AS vs "
        f"FROM ({inner}) x) p "
        "ORDER BY sel.host, sel.metric, sel.labels, sel.id"
    )
    return sql, p.values


# --------------------------------------------------------------------------- execution


def _number(x: float) -> float | int:
    return int(x) if x == int(x) else x


async def query_range(
    conn: asyncpg.Connection | asyncpg.Pool,
    backend: StorageBackend,
    plan: QueryPlan,
    *,
    metric: str,
    host: HostFilter,
    labels: dict[str, str] | None,
    limits: QueryLimits,
) -> dict[str, Any]:
    """The response body of a range query (``orjson``-serializable; points
    are embedded JSON fragments)."""
    sql, args = build_points_sql(
        backend,
        plan,
        metric=metric,
        host=host,
        labels=labels,
        max_series=limits.max_series,
        max_points=limits.max_points,
    )
    rows = await conn.fetch(sql, *args)
    _check_series_count(rows, limits)
    series = []
    for row in rows:
        if row["n"] > limits.max_points:
            raise InvalidInputError(
                f"more than {limits.max_points} raw points in one series for this range; "
                "pass a step (for example step=60s) or a shorter range",
                max_points=limits.max_points,
            )
        series.append(
            {
                "host": row["host"],
                "metric": row["metric"],
                "labels": orjson.Fragment(row["labels"]),
                "points": orjson.Fragment(row["points"]),
            }
        )
    return range_body(plan, series)


def _check_series_count(rows: list[asyncpg.Record], limits: QueryLimits) -> None:
    if len(rows) > limits.max_series:
        raise InvalidInputError(
            f"more than {limits.max_series} series match; narrow the query with host "
            "or labels",
            max_series=limits.max_series,
        )


def range_body(plan: QueryPlan, series: list[dict[str, Any]]) -> dict[str, Any]:
    """The response body of a range query around its ``series`` entries."""
    return {
        "series": series,
        "step": None if plan.step is None else _number(plan.step),
        "source": plan.source,
        "agg": plan.agg if plan.step is not None else None,
        "start": _number(plan.start),
        "end": _number(plan.end),
    }


@dataclass(frozen=True)
class CounterSeries:
    """One series' counter values, ordered by time: raw samples, or a
    rollup's ``(bucket start, last)`` pairs."""

    host: str
    metric: str
    labels: str  # JSON text
    points: list[tuple[float, float]]

    def out(self, points: list[tuple[float, float]]) -> dict[str, Any]:
        """The response entry of this series with ``points``."""
        return {
            "host": self.host,
            "metric": self.metric,
            "labels": orjson.Fragment(self.labels),
            "points": [[_number(t), v] for t, v in points],
        }


async def counter_series(
    conn: asyncpg.Connection | asyncpg.Pool,
    plan: QueryPlan,
    *,
    metric: str,
    host: HostFilter,
    labels: dict[str, str] | None,
    limits: QueryLimits,
) -> list[CounterSeries]:
    """The values a counter aggregation (``rate``, ``increase``) needs, per
    series (see :func:`build_counter_sql`); InvalidInputError when too many
    series match or one series has more than ``COUNTER_READ_FACTOR x
    max_points`` values in the range."""
    max_rows = COUNTER_READ_FACTOR * limits.max_points
    sql, args = build_counter_sql(
        plan, metric=metric, host=host, labels=labels, max_series=limits.max_series,
        max_rows=max_rows,
    )
    rows = await conn.fetch(sql, *args)
    _check_series_count(rows, limits)
    out = []
    for row in rows:
        if row["n"] > max_rows:
            raise InvalidInputError(
                f"a {plan.agg} over this range reads more than {max_rows} values of one "
                "series; use a shorter range or a larger step (a whole number of minutes "
                "reads the 1-minute rollup, of hours the 1-hour rollup)"
            )
        points = list(zip(row["ts"] or [], row["vs"] or [], strict=True))
        out.append(CounterSeries(row["host"], row["metric"], row["labels"], points))
    return out


def _series_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "host": row["host"],
        "metric": row["metric"],
        "labels": orjson.Fragment(row["labels"]),
        "created_at": row["created_at"].isoformat(),
    }


async def search_series(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    metric: str | None,
    host: HostFilter,
    labels: dict[str, str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Series matching the filters (``metric`` may be a glob), and whether
    more than ``limit`` matched."""
    p = Params()
    where = " AND ".join(series_conditions(p, metric=metric, host=host, labels=labels))
    rows = await conn.fetch(
        "SELECT id, host, metric, labels::text AS labels, created_at FROM series "
        f"WHERE {where} ORDER BY metric, host, labels, id LIMIT {p.add(limit + 1)}",
        *p.values,
    )
    return [_series_out(r) for r in rows[:limit]], len(rows) > limit


async def metric_names(
    conn: asyncpg.Connection | asyncpg.Pool, *, host: str | None, limit: int
) -> list[str]:
    """Distinct metric names (of one host), by a skip scan of the series indexes."""
    p = Params()
    host_param = p.add(host) if host is not None else None
    rows = await conn.fetch(
        f"{_skip_scan(host_param)} SELECT metric FROM m WHERE metric IS NOT NULL "
        f"LIMIT {p.add(limit)}",
        *p.values,
    )
    return [r["metric"] for r in rows]


def _skip_scan(host_param: str | None) -> str:
    """A recursive CTE ``m(metric)`` visiting each distinct metric name (of
    the host in ``host_param``) once, by a skip scan of the series indexes."""
    first = f"WHERE host = {host_param} " if host_param else ""
    same_host = f"s.host = {host_param} AND " if host_param else ""
    return (
        "WITH RECURSIVE m AS ("
        f"(SELECT metric FROM series {first}ORDER BY metric LIMIT 1) UNION ALL "
        f"SELECT (SELECT s.metric FROM series s WHERE {same_host}s.metric > m.metric "
        "ORDER BY s.metric LIMIT 1) FROM m WHERE m.metric IS NOT NULL)"
    )


#: Most distinct metric names a search looks through.
SEARCH_SCAN_LIMIT = 200_000


async def search_metric_names(
    conn: asyncpg.Connection | asyncpg.Pool, *, query: str, host: str | None, limit: int
) -> tuple[list[str], bool]:
    """Metric names containing every word of ``query`` (case-insensitive),
    names starting with the first word first, then by name; and whether more
    than ``limit`` matched."""
    words = [w for w in query.lower().split() if w]
    p = Params()
    host_param = p.add(host) if host is not None else None
    terms = [f"strpos(lower(metric), {p.add(w)}) > 0" for w in words]
    order = f"strpos(lower(metric), {p.add(words[0])}) = 1 DESC, metric" if words else "metric"
    scan_limit = p.add(SEARCH_SCAN_LIMIT)
    where = " AND ".join(["metric IS NOT NULL", *terms])
    rows = await conn.fetch(
        f"{_skip_scan(host_param)} SELECT metric FROM (SELECT metric FROM m LIMIT {scan_limit}) "
        f"x WHERE {where} ORDER BY {order} LIMIT {p.add(limit + 1)}",
        *p.values,
    )
    names = [r["metric"] for r in rows]
    return names[:limit], len(names) > limit


#: Most series a label listing looks through, and values listed per label.
LABEL_SCAN_LIMIT = 50_000
LABEL_VALUES_LIMIT = 200


async def label_values(
    conn: asyncpg.Connection | asyncpg.Pool, *, metric: str | None, host: str | None
) -> dict[str, list[str]]:
    """The label names of the matching series with their distinct values
    (at most ``LABEL_VALUES_LIMIT`` each, sorted)."""
    p = Params()
    where = " AND ".join(series_conditions(p, metric=metric, host=host))
    rows = await conn.fetch(
        "SELECT l.key, (array_agg(DISTINCT l.value ORDER BY l.value))"
        f"[1:{LABEL_VALUES_LIMIT}] AS vals FROM (SELECT labels FROM series WHERE {where} "
        f"LIMIT {p.add(LABEL_SCAN_LIMIT)}) s CROSS JOIN LATERAL jsonb_each_text(s.labels) l "
        "GROUP BY l.key ORDER BY l.key",
        *p.values,
    )
    return {r["key"]: list(r["vals"]) for r in rows}


# --------------------------------------------------------------------------- hosts

#: Sample rates are averaged over this window.
RATE_WINDOW = timedelta(minutes=5)
#: When the 1m rollup lags real time by more than this, rates use raw samples.
ROLLUP_BEHIND = timedelta(minutes=10)


@dataclass(frozen=True)
class RateWindow:
    source: Source
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


async def rate_window(
    conn: asyncpg.Connection, backend: StorageBackend, now: datetime
) -> RateWindow:
    """Where sample rates come from: the five complete minutes of
    ``samples_1m`` below the rollup watermark (plain PostgreSQL backend, rollup
    current), else raw samples of the last five minutes (TimescaleDB, whose
    ``samples`` has a time index, or a plain rollup that is behind)."""
    if backend.name == "postgres":
        watermark = await conn.fetchval(
            "SELECT watermark FROM rollup_watermarks WHERE resolution = '1m'"
        )
        if watermark is not None and watermark >= now - ROLLUP_BEHIND:
            return RateWindow("1m", watermark - RATE_WINDOW, watermark)
    return RateWindow("raw", now - RATE_WINDOW, now)


def _sample_counts_sql(window: RateWindow, host_param: str | None) -> str:
    host_term = f" AND x.host = {host_param}" if host_param else ""
    if window.source == "raw":
        return (
            "SELECT x.host, count(*) AS samples FROM samples r JOIN series x "
            f"ON x.id = r.series_id WHERE r.time >= $1 AND r.time < $2{host_term} "
            "GROUP BY x.host"
        )
    return (
        "SELECT x.host, sum(r.count) AS samples FROM samples_1m r JOIN series x "
        f"ON x.id = r.series_id WHERE r.bucket >= $1 AND r.bucket < $2{host_term} "
        "GROUP BY x.host"
    )


def _host_out(row: asyncpg.Record, window: RateWindow, now: datetime,
              stale_after: timedelta) -> dict[str, Any]:
    samples = int(row["samples"] or 0)
    return {
        "host": row["host"],
        "labels": orjson.Fragment(row["labels"]),
        "first_seen": row["first_seen"].isoformat(),
        "last_seen": row["last_seen"].isoformat(),
        "last_sample": row["last_sample"].isoformat(),
        "series_count": int(row["series"] or 0),
        "samples_per_second": round(samples / window.seconds, 3),
        "status": "stale" if now - row["last_sample"] > stale_after else "up",
    }


async def list_hosts(
    conn: asyncpg.Connection,
    backend: StorageBackend,
    *,
    now: datetime,
    stale_after: timedelta,
    host: str | None = None,
) -> tuple[list[dict[str, Any]], RateWindow]:
    """Every host (or one) with its series count, sample rate and status."""
    window = await rate_window(conn, backend, now)
    args: list[Any] = [window.start, window.end]
    host_param = None
    if host is not None:
        args.append(host)
        host_param = "$3"
    where = f"WHERE h.host = {host_param}" if host_param else ""
    series_where = f"WHERE host = {host_param}" if host_param else ""
    rows = await conn.fetch(
        f"WITH counts AS (SELECT host, count(*) AS series FROM series {series_where} "
        f"GROUP BY host), rates AS ({_sample_counts_sql(window, host_param)}) "
        "SELECT h.host, h.labels::text AS labels, h.first_seen, h.last_seen, h.last_sample, "
        "c.series, r.samples FROM hosts h LEFT JOIN counts c ON c.host = h.host "
        f"LEFT JOIN rates r ON r.host = h.host {where} ORDER BY h.host",
        *args,
    )
    return [_host_out(r, window, now, stale_after) for r in rows], window


async def host_series(
    conn: asyncpg.Connection | asyncpg.Pool, host: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    return await search_series(conn, metric=None, host=host, labels=None, limit=limit)


def window_out(window: RateWindow) -> dict[str, Any]:
    return {
        "source": window.source,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
    }



async def cardinality(
    conn: asyncpg.Connection, limit: int, host: str | None = None
) -> dict[str, Any]:
    """Series counts: in all, and the top hosts, metrics and label names
    (with their distinct values), of one host or of the whole store."""
    async with conn.transaction(readonly=True):
        # a report over every series: bounded, so a huge store cannot hold a connection
        await conn.execute("SET LOCAL statement_timeout = '20s'")
        total = await conn.fetchval(
            "SELECT count(*) FROM series WHERE ($1::text IS NULL OR host = $1)", host
        )
        hosts = await conn.fetch(
            "SELECT host, count(*) AS n FROM series WHERE ($2::text IS NULL OR host = $2) "
            "GROUP BY host ORDER BY n DESC, host LIMIT $1",
            limit,
            host,
        )
        metrics = await conn.fetch(
            "SELECT metric, count(*) AS n, count(DISTINCT host) AS hosts FROM series "
            "WHERE ($2::text IS NULL OR host = $2) GROUP BY metric ORDER BY n DESC, metric "
            "LIMIT $1",
            limit,
            host,
        )
        labels = await conn.fetch(
            "SELECT e.key, count(*) AS n, count(DISTINCT e.value) AS distinct_values "
            "FROM series s CROSS JOIN LATERAL jsonb_each_text(s.labels) AS e "
            "WHERE ($2::text IS NULL OR s.host = $2) GROUP BY e.key "
            "ORDER BY n DESC, e.key LIMIT $1",
            limit,
            host,
        )
    return {
        "series": int(total),
        "hosts": [{"host": r["host"], "series": int(r["n"])} for r in hosts],
        "metrics": [
            {"metric": r["metric"], "series": int(r["n"]), "hosts": int(r["hosts"])}
            for r in metrics
        ],
        "labels": [
            {"label": r["key"], "series": int(r["n"]), "values": int(r["distinct_values"])}
            for r in labels
        ],
    }
