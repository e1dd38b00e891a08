"""SQL of the dashboard's endpoints: the fleet overview and the alert listing.

The fleet overview answers one page of hosts with everything the fleet
table shows: status, open alerts, the latest CPU, memory and disk use and
downsampled sparklines of them. It stays cheap at thousands of hosts: the
page is chosen from the ``hosts`` table (and, to sort by a metric, from the
1-minute rollup of the last minutes); latest values and sparklines are then
read for the page's hosts only, by index range scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import orjson

from nazar_common.db.backends import StorageBackend
from nazar_common.db.queries import Params

HostStatus = Literal["up", "stale", "down"]
STATUSES: tuple[HostStatus, ...] = ("up", "stale", "down")

#: The fleet table's metric columns: key, metric name. CPU is the host total
#: (the agent's ``cpu=total`` series, or a series without a ``cpu`` label);
#: memory and disk take the fullest series (e.g. the fullest mount).
OVERVIEW_METRICS: dict[str, str] = {
    "cpu": "cpu.usage_percent",
    "mem": "mem.used_percent",
    "disk": "disk.used_percent",
}
_SERIES_FILTER = (
    "(s.metric <> 'cpu.usage_percent' OR NOT s.labels ? 'cpu' OR s.labels->>'cpu' = 'total')"
)
_KEY_OF = (
    "CASE s.metric WHEN 'cpu.usage_percent' THEN 'cpu' WHEN 'mem.used_percent' THEN 'mem' "
    "ELSE 'disk' END"
)

SortKey = Literal["host", "status", "last_seen", "alerts", "cpu", "mem", "disk"]
SORT_KEYS: tuple[SortKey, ...] = ("host", "status", "last_seen", "alerts", "cpu", "mem", "disk")
_ORDER: dict[str, str] = {
    "host": "f.host",
    # down first when descending: a rank, not the name
    "status": "CASE f.status WHEN 'up' THEN 0 WHEN 'stale' THEN 1 ELSE 2 END",
    "last_seen": "f.last_sample",
    "alerts": "f.open_alerts",
    "cpu": "m.value",
    "mem": "m.value",
    "disk": "m.value",
}

#: Sorting by a metric uses the 1-minute rollup of this recent window.
SORT_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class OverviewQuery:
    now: datetime
    stale_after: timedelta
    down_after: timedelta
    search: str | None = None
    labels: dict[str, str] | None = None
    statuses: list[HostStatus] | None = None
    sort: SortKey = "host"
    descending: bool = False
    limit: int = 50
    offset: int = 0


def _filtered_hosts(q: OverviewQuery, p: Params) -> str:
    """``h``: the hosts matching search and labels, with their status."""
    now = p.add(q.now)
    terms = ["true"]
    if q.search:
        terms.append(f"strpos(lower(host), {p.add(q.search.lower())}) > 0")
    if q.labels:
        terms.append(f"labels @> {p.add(orjson.dumps(q.labels).decode())}::jsonb")
    return (
        "h AS (SELECT host, labels, first_seen, last_seen, last_sample, "
        f"CASE WHEN last_sample >= {now}::timestamptz - {p.add(q.stale_after)}::interval "
        "THEN 'up' "
        f"WHEN last_sample >= {now}::timestamptz - {p.add(q.down_after)}::interval "
        "THEN 'stale' ELSE 'down' END AS status "
        f"FROM hosts WHERE {' AND '.join(terms)})"
    )


async def overview_page(
    conn: asyncpg.Connection, q: OverviewQuery
) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """One page of hosts (``host``, ``labels``, times, ``status``,
    ``open_alerts``, ``firing_alerts``), the number of hosts matching all
    filters, and the number per status matching search and labels."""
    p = Params()
    hosts_cte = _filtered_hosts(q, p)
    statuses = p.add(list(q.statuses) if q.statuses else None)
    ctes = [
        hosts_cte,
        "a AS (SELECT host, count(*) AS open_alerts, "
        "count(*) FILTER (WHERE state = 'firing') AS firing_alerts FROM alerts "
        "WHERE state IN ('pending', 'firing', 'nodata') GROUP BY host)",
        "f AS (SELECT h.*, coalesce(a.open_alerts, 0) AS open_alerts, "
        "coalesce(a.firing_alerts, 0) AS firing_alerts FROM h LEFT JOIN a USING (host) "
        f"WHERE {statuses}::text[] IS NULL OR h.status = ANY({statuses}::text[]))",
    ]
    join = ""
    if q.sort in OVERVIEW_METRICS:
        # Latest rolled-up value per series, the fullest series per host.
        ctes.append(
            "m AS (SELECT s.host, max(r.last) AS value FROM ("
            "SELECT DISTINCT ON (series_id) series_id, last FROM samples_1m "
            f"WHERE bucket >= {p.add(q.now - SORT_WINDOW)} "
            "AND series_id IN (SELECT s.id FROM series s WHERE "
            f"s.metric = {p.add(OVERVIEW_METRICS[q.sort])} AND {_SERIES_FILTER}) "
            "ORDER BY series_id, bucket DESC) r JOIN series s ON s.id = r.series_id "
            "GROUP BY s.host)"
        )
        join = "LEFT JOIN m ON m.host = f.host"
    direction = "DESC" if q.descending else "ASC"
    nulls = "NULLS LAST"
    rows = await conn.fetch(
        f"WITH {', '.join(ctes)} "
        "SELECT f.host, f.labels::text AS labels, f.first_seen, f.last_seen, f.last_sample, "
        "f.status, f.open_alerts, f.firing_alerts, count(*) OVER () AS total "
        f"FROM f {join} ORDER BY {_ORDER[q.sort]} {direction} {nulls}, f.host "
        f"LIMIT {p.add(q.limit)} OFFSET {p.add(q.offset)}",
        *p.values,
    )
    total = int(rows[0]["total"]) if rows else 0
    if not rows and q.offset:
        p2 = Params()
        cte = _filtered_hosts(q, p2)
        statuses2 = p2.add(list(q.statuses) if q.statuses else None)
        total = int(
            await conn.fetchval(
                f"WITH {cte} SELECT count(*) FROM h "
                f"WHERE {statuses2}::text[] IS NULL OR status = ANY({statuses2}::text[])",
                *p2.values,
            )
        )
    p3 = Params()
    counts_rows = await conn.fetch(
        f"WITH {_filtered_hosts(q, p3)} SELECT status, count(*) AS n FROM h GROUP BY status",
        *p3.values,
    )
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({r["status"]: int(r["n"]) for r in counts_rows})
    page = [
        {
            "host": r["host"],
            "labels": orjson.Fragment(r["labels"]),
            "first_seen": r["first_seen"].isoformat(),
            "last_seen": r["last_seen"].isoformat(),
            "last_sample": r["last_sample"].isoformat(),
            "status": r["status"],
            "open_alerts": int(r["open_alerts"]),
            "firing_alerts": int(r["firing_alerts"]),
        }
        for r in rows
    ]
    return page, total, counts


async def overview_series(
    conn: asyncpg.Connection,
    backend: StorageBackend,
    hosts: list[str],
    *,
    start: datetime,
    step: timedelta,
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, list[list[float]]]]]:
    """For each host: its latest CPU / memory / disk values since ``start``
    (raw samples) and their sparklines from ``start`` (1-minute rollup
    averages per ``step``, the fullest series per host and bucket)."""
    latest: dict[str, dict[str, float | None]] = {
        h: dict.fromkeys(OVERVIEW_METRICS) for h in hosts
    }
    spark: dict[str, dict[str, list[list[float]]]] = {
        h: {k: [] for k in OVERVIEW_METRICS} for h in hosts
    }
    if not hosts:
        return latest, spark
    metrics = list(OVERVIEW_METRICS.values())
    ids = await conn.fetch(
        f"SELECT s.id, s.host, {_KEY_OF} AS key FROM series s "
        f"WHERE s.host = ANY($1::text[]) AND s.metric = ANY($2::text[]) AND {_SERIES_FILTER}",
        hosts,
        metrics,
    )
    if not ids:
        return latest, spark
    series_ids = [r["id"] for r in ids]
    rows = await conn.fetch(
        "SELECT s.host, x.key, max(l.value) AS value FROM unnest($1::bigint[], $2::text[], "
        "$3::text[]) AS x(id, host, key) JOIN series s ON s.id = x.id "
        "CROSS JOIN LATERAL (SELECT value FROM samples WHERE series_id = x.id "
        "AND time >= $4 ORDER BY time DESC LIMIT 1) l GROUP BY s.host, x.key",
        series_ids,
        [r["host"] for r in ids],
        [r["key"] for r in ids],
        start,
    )
    for r in rows:
        latest[r["host"]][r["key"]] = r["value"]
    bucket = backend.bucket_sql("$3::interval", "r.bucket")
    rows = await conn.fetch(
        "SELECT x.host, x.key, extract(epoch FROM b.t)::float8 AS t, max(b.v) AS v "
        "FROM unnest($1::bigint[], $4::text[], $5::text[]) AS x(id, host, key) "
        f"CROSS JOIN LATERAL (SELECT {bucket} AS t, sum(r.sum) / nullif(sum(r.count), 0) AS v "
        "FROM samples_1m r WHERE r.series_id = x.id AND r.bucket >= $2 GROUP BY 1) b "
        "GROUP BY x.host, x.key, b.t ORDER BY x.host, x.key, b.t",
        series_ids,
        start,
        step,
        [r["host"] for r in ids],
        [r["key"] for r in ids],
    )
    for r in rows:
        if r["v"] is not None:
            spark[r["host"]][r["key"]].append([r["t"], round(r["v"], 3)])
    return latest, spark


# --------------------------------------------------------------------------- alerts

ALERT_COLUMNS = (
    "id, fingerprint, rule_id, rule_name, kind, host, series_id, metric, labels::text AS labels, "
    "annotations::text AS annotations, channels, severity, state, seq, started_at, fired_at, "
    "resolved_at, value, expected_low, expected_high, expected_centre, score, explanation, "
    "contributors, acked_at, acked_by, ack_comment, updated_at"
)


@dataclass(frozen=True)
class AlertFilter:
    states: list[str] | None = None
    host: str | None = None
    rule: str | None = None
    severity: list[str] | None = None
    kind: str | None = None
    labels: dict[str, str] | None = None
    acked: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


async def list_alerts(pool: asyncpg.Pool, f: AlertFilter) -> list[asyncpg.Record]:
    """Alerts matching every given filter, newest first."""
    return await pool.fetch(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1::text[] IS NULL OR state = ANY($1)) "
        "AND ($2::text IS NULL OR host = $2) AND ($3::text IS NULL OR rule_name = $3) "
        "AND ($4::text[] IS NULL OR severity = ANY($4)) "
        "AND ($5::timestamptz IS NULL OR resolved_at IS NULL OR resolved_at >= $5) "
        "AND ($6::timestamptz IS NULL OR started_at < $6) "
        "AND ($7::bigint IS NULL OR id < $7) "
        "AND ($9::text IS NULL OR kind = $9) "
        "AND ($10::jsonb IS NULL OR labels @> $10::jsonb) "
        "AND ($11::boolean IS NULL OR (acked_at IS NOT NULL) = $11) "
        "ORDER BY id DESC LIMIT $8",
        f.states,
        f.host,
        f.rule,
        f.severity,
        f.since,
        f.until,
        f.before_id,
        f.limit,
        f.kind,
        orjson.dumps(f.labels).decode() if f.labels else None,
        f.acked,
    )


# -- the monthly report ------------------------------------------------------------


def _group_expr(label: str | None, params: list[Any]) -> str:
    if label is None:
        return "''"
    params.append(label)
    # An alert of no known host (a burn_rate alert, a retired host) belongs to
    # no group, not to the group of hosts without the label.
    return f"CASE WHEN h.host IS NULL THEN NULL ELSE coalesce(h.labels->>${len(params)}, '') END"


async def alert_counts(
    conn: asyncpg.Connection, start: datetime, end: datetime, label: str | None
) -> list[asyncpg.Record]:
    """Alerts that fired (or opened) in ``[start, end)`` per host group, rule and
    severity (cancelled pending alerts are not counted)."""
    params: list[Any] = [start, end]
    grp = _group_expr(label, params)
    return await conn.fetch(
        f"SELECT {grp} AS grp, a.rule_name, a.severity, count(*) AS n FROM alerts a "
        "LEFT JOIN hosts h ON h.host = a.host "
        "WHERE a.started_at >= $1 AND a.started_at < $2 AND a.fired_at IS NOT NULL "
        "GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC",
        *params,
    )


async def ack_times(
    conn: asyncpg.Connection, start: datetime, end: datetime, label: str | None
) -> list[asyncpg.Record]:
    """Time from firing to acknowledgement of the alerts fired in ``[start, end)``."""
    params: list[Any] = [start, end]
    grp = _group_expr(label, params)
    return await conn.fetch(
        f"SELECT {grp} AS grp, count(*) AS acked, avg(d) AS mean, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median, max(d) AS max FROM ("
        "SELECT a.host, extract(epoch FROM a.acked_at - a.fired_at) AS d FROM alerts a "
        "WHERE a.fired_at >= $1 AND a.fired_at < $2 AND a.acked_at IS NOT NULL) x "
        "LEFT JOIN hosts h ON h.host = x.host GROUP BY 1",
        *params,
    )
