"""Hourly averages of series, from the 1-hour rollup: what capacity forecasts
(:mod:`nazar_analyzer.capacity`) are computed from, by the forecast API and the
analyzer's ``forecast`` rule kind alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson

from nazar_common.db.queries import HostFilter, Params, series_conditions


@dataclass(frozen=True)
class HourlySeries:
    id: int
    host: str
    metric: str
    labels: dict[str, str]
    times: list[float]
    values: list[float]


async def hourly_averages(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    start: float,
    end: float,
    metric: str | None = None,
    host: HostFilter = None,
    labels: dict[str, str] | None = None,
    series_ids: list[int] | None = None,
    limit: int = 1000,
) -> tuple[list[HourlySeries], bool]:
    """The hourly averages over ``[start, end)`` of the series matching the
    filters (or with these ids), at most ``limit`` series ordered by host,
    metric and labels; and whether more matched. One statement: the series
    are resolved first, then each one's rollup rows read by its
    ``(series_id, bucket)`` key. An hour's average is placed at the middle
    of its hour (bucket start + 30 min), the time it best represents."""
    p = Params()
    terms = series_conditions(p, metric=metric, host=host, labels=labels)
    if series_ids is not None:
        terms.append(f"id = ANY({p.add(series_ids)}::bigint[])")
    t0 = p.add(datetime.fromtimestamp(start, UTC))
    t1 = p.add(datetime.fromtimestamp(end, UTC))
    rows = await conn.fetch(
        "WITH sel AS MATERIALIZED (SELECT id, host, metric, labels FROM series "
        f"WHERE {' AND '.join(terms)} ORDER BY host, metric, labels, id "
        f"LIMIT {p.add(limit + 1)}) "
        "SELECT sel.id, sel.host, sel.metric, sel.labels::text AS labels, p.ts, p.vs "
        "FROM sel CROSS JOIN LATERAL (SELECT "
        "array_agg(extract(epoch FROM r.bucket)::float8 + 1800 ORDER BY r.bucket) AS ts, "
        "array_agg(r.sum / r.count ORDER BY r.bucket) AS vs FROM samples_1h r "
        f"WHERE r.series_id = sel.id AND r.bucket >= {t0} AND r.bucket < {t1} "
        "AND r.count > 0) p ORDER BY sel.host, sel.metric, sel.labels, sel.id",
        *p.values,
    )
    out = [
        HourlySeries(r["id"], r["host"], r["metric"], orjson.loads(r["labels"]),
                     list(r["ts"] or []), list(r["vs"] or []))
        for r in rows[:limit]
    ]
    return out, len(rows) > limit
