"""Availability and service level objectives: all their SQL.

Presence is read from the samples themselves: raw samples from ``raw_from``
on (to the second), 1-minute rollups before it (to the minute: a bucket with
data counts as present from its start to its end). The ingest API reports
from it (``/api/v1/reports``, ``/api/v1/slos``); the analyzer's ``burn_rate``
rules measure error ratios with it (see migration ``0013_slos``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
import orjson

from nazar_common.schemas.config import HostSelector
from nazar_common.schemas.slo import (
    Availability,
    Measure,
    Presence,
    RatioIndicator,
    SeriesMatch,
    SLOSpec,
    availability,
)

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class HostInfo:
    host: str
    labels: dict[str, str]
    first_seen: float


async def hosts_in(
    conn: Conn, start: float, selector: HostSelector | None = None,
    hosts: Sequence[str] | None = None,
) -> list[HostInfo]:
    """Hosts seen since ``start`` (a host retired before the period is not
    reported), matching ``selector`` and, if given, named in ``hosts``."""
    sel = selector or HostSelector()
    rows = await conn.fetch(
        "SELECT host, labels::text AS labels, extract(epoch FROM first_seen) AS first_seen "
        "FROM hosts WHERE last_seen >= $1 AND labels @> $2::jsonb "
        "AND ($3::text[] IS NULL OR host = ANY($3)) "
        "AND ($4::text[] IS NULL OR host = ANY($4)) ORDER BY host",
        _dt(start), orjson.dumps(sel.match_labels).decode(),
        list(hosts) if hosts else None, list(sel.hosts) if sel.hosts else None,
    )
    return [HostInfo(r["host"], orjson.loads(r["labels"]), float(r["first_seen"])) for r in rows]


_PRESENCE_SQL = """
WITH t AS (
    SELECT x.host, s.time AS t FROM samples s JOIN series x ON x.id = s.series_id
    WHERE s.time >= greatest($1::timestamptz, $3::timestamptz) AND s.time < $2::timestamptz
      AND x.host = ANY($4::text[])
    GROUP BY 1, 2
    UNION ALL
    SELECT m.host, b.t FROM (
        SELECT x.host, r.bucket FROM samples_1m r JOIN series x ON x.id = r.series_id
        WHERE r.bucket >= date_trunc('minute', $1::timestamptz) AND r.bucket < $3::timestamptz
          AND r.bucket < $2::timestamptz AND x.host = ANY($4::text[])
        GROUP BY 1, 2
    ) m CROSS JOIN LATERAL (VALUES (m.bucket), (m.bucket + interval '59.999 seconds')) AS b (t)
), g AS (
    SELECT host, t, lag(t) OVER (PARTITION BY host ORDER BY t) AS prev FROM t
)
SELECT host, extract(epoch FROM min(t)) AS first, extract(epoch FROM max(t)) AS last,
       array_agg(extract(epoch FROM prev) ORDER BY t)
           FILTER (WHERE t - prev > $5::float8 * interval '1 second') AS froms,
       array_agg(extract(epoch FROM t) ORDER BY t)
           FILTER (WHERE t - prev > $5::float8 * interval '1 second') AS tos
FROM g GROUP BY host
"""


async def presence(
    conn: Conn, hosts: Sequence[str], start: float, end: float, gap: float, raw_from: float
) -> dict[str, Presence]:
    """When each host reported within ``[start - gap, end)`` (see :class:`Presence`)."""
    if not hosts:
        return {}
    rows = await conn.fetch(
        _PRESENCE_SQL, _dt(start - gap), _dt(end), _dt(raw_from), list(hosts), gap
    )
    out = {h: Presence(h, None, None) for h in hosts}
    for r in rows:
        silences = list(zip(map(float, r["froms"] or []), map(float, r["tos"] or []),
                            strict=True))
        out[r["host"]] = Presence(r["host"], float(r["first"]), float(r["last"]), silences)
    return out


async def host_availability(
    conn: Conn, hosts: Sequence[HostInfo], start: float, end: float, gap: float,
    raw_from: float,
) -> dict[str, Availability]:
    """Availability of each host over ``[start, end)`` (see :func:`availability`)."""
    found = await presence(conn, [h.host for h in hosts], start, end, gap, raw_from)
    out = {}
    for h in hosts:
        p = found[h.host]
        # samples may be older than the host's record (backfilled): monitored from either
        since = h.first_seen if p.first is None else min(h.first_seen, p.first)
        out[h.host] = availability(p, start, end, gap, since)
    return out


def _series_filter(match: SeriesMatch, sel: HostSelector, args: list[Any]) -> str:
    args += [match.metric, orjson.dumps(match.match_labels).decode(),
             list(sel.hosts) if sel.hosts else None, orjson.dumps(sel.match_labels).decode()]
    n = len(args)
    return (
        f"x.metric = ${n - 3} AND x.labels @> ${n - 2}::jsonb "
        f"AND (${n - 1}::text[] IS NULL OR x.host = ANY(${n - 1})) "
        f"AND (${n}::jsonb = '{{}}'::jsonb OR EXISTS (SELECT 1 FROM hosts h "
        f"WHERE h.host = x.host AND h.labels @> ${n}::jsonb))"
    )


#: A counter's first increase in a window needs its value before: read from this long before.
COUNTER_LOOKBACK = 3600.0
#: Event counts are summed from raw samples over the last day only: before, the
#: rollups (long refreshed) hold the same sums in far fewer rows: the 1-minute
#: ones around each window start (a window then starts on a whole minute), the
#: 1-hour ones for the whole hours between.
RATIO_RAW_SPAN = 86400.0


def _rows_sql(which: str, cond: str, counter: bool) -> str:
    """(which, t, v) rows of one side: raw samples from ``$3`` on; before, the
    1-minute rollups, except the 1-hour rollups over ``[$4, $5)`` (whole
    hours); their sums, or for counters their last values. Counters become
    the increase since the series' previous value (a drop is a reset)."""
    if not counter:
        return (
            f"SELECT '{which}' AS which, s.time AS t, s.value AS v FROM samples s "
            f"JOIN series x ON x.id = s.series_id WHERE {cond} "
            "AND s.time >= greatest($1::timestamptz, $3::timestamptz) AND s.time < $2 "
            f"UNION ALL SELECT '{which}', r.bucket, r.sum FROM samples_1m r "
            f"JOIN series x ON x.id = r.series_id WHERE {cond} "
            "AND r.bucket >= $1::timestamptz AND r.bucket < $3::timestamptz AND r.bucket < $2 "
            "AND NOT (r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz) "
            f"UNION ALL SELECT '{which}', r.bucket, r.sum FROM samples_1h r "
            f"JOIN series x ON x.id = r.series_id WHERE {cond} "
            "AND r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz"
        )
    lookback = f"$1::timestamptz - interval '{COUNTER_LOOKBACK:g} seconds'"
    return (
        f"SELECT '{which}' AS which, t, CASE WHEN prev IS NULL THEN 0 WHEN v >= prev "
        "THEN v - prev ELSE v END AS v FROM (SELECT t, v, lag(v) OVER (PARTITION BY sid "
        "ORDER BY t) AS prev FROM ("
        f"SELECT x.id AS sid, s.time AS t, s.value AS v FROM samples s "
        f"JOIN series x ON x.id = s.series_id WHERE {cond} "
        f"AND s.time >= greatest({lookback}, $3::timestamptz) AND s.time < $2 "
        f"UNION ALL SELECT x.id, r.bucket, r.last FROM samples_1m r "
        f"JOIN series x ON x.id = r.series_id WHERE {cond} "
        f"AND r.bucket >= {lookback} AND r.bucket < $3::timestamptz AND r.bucket < $2 "
        "AND NOT (r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz) "
        f"UNION ALL SELECT x.id, r.bucket, r.last FROM samples_1h r "
        f"JOIN series x ON x.id = r.series_id WHERE {cond} "
        "AND r.bucket >= $4::timestamptz AND r.bucket < $5::timestamptz"
        ") a) b"
    )


def hour_span(starts: Sequence[float], cut: float) -> tuple[float, float]:
    """Whole hours read from the 1-hour rollups: after every window start that
    lies before ``cut`` (so each window still starts on its minute) and before
    ``cut`` (empty when there are none)."""
    below = [k for k in starts if k < cut]
    if not below:
        return cut, cut
    lo = math.ceil(max(below) / 3600) * 3600
    hi = math.floor(cut / 3600) * 3600
    return (lo, hi) if hi > lo else (cut, cut)


async def measure_ratio(
    conn: Conn, indicator: RatioIndicator, selector: HostSelector, starts: Sequence[float],
    end: float, raw_from: float,
) -> list[Measure]:
    """Good and total events over each ``[start, end)``."""
    earliest = min(starts)
    raw_from = max(raw_from, end - RATIO_RAW_SPAN)
    hours = hour_span(starts, raw_from)
    args: list[Any] = [_dt(earliest), _dt(end), _dt(raw_from), _dt(hours[0]), _dt(hours[1])]
    parts = []
    for which, match in (("good", indicator.good), ("total", indicator.total)):
        cond = _series_filter(match, selector, args)
        parts.append(_rows_sql(which, cond, indicator.counter))
    cols = []
    for k in starts:
        args.append(_dt(k))
        cols.append(f"coalesce(sum(v) FILTER (WHERE t >= ${len(args)}::timestamptz), 0)")
    rows = await conn.fetch(
        f"SELECT which, {', '.join(cols)} FROM ({' UNION ALL '.join(parts)}) u "
        "WHERE t >= $1::timestamptz GROUP BY which",
        *args,
    )
    sums = {r["which"]: [float(r[i + 1]) for i in range(len(starts))] for r in rows}
    good = sums.get("good", [0.0] * len(starts))
    total = sums.get("total", [0.0] * len(starts))
    return [Measure(g, t) for g, t in zip(good, total, strict=True)]


async def measure(
    conn: Conn, spec: SLOSpec, starts: Sequence[float], end: float, raw_from: float
) -> list[Measure]:
    """Good and total over each ``[start, end)``: events for a ratio SLO,
    seconds up and monitored (summed over the hosts) for an availability SLO."""
    ind = spec.indicator
    if isinstance(ind, RatioIndicator):
        return await measure_ratio(conn, ind, spec.selector, starts, end, raw_from)
    earliest = min(starts)
    hosts = await hosts_in(conn, earliest, spec.selector)
    found = await host_availability(conn, hosts, earliest, end, ind.gap, raw_from)
    out = []
    for k in starts:
        up = total = 0.0
        for h in hosts:
            part = found[h.host].clip(k, end)
            total += part.monitored
            up += part.monitored - part.downtime
        out.append(Measure(up, total))
    return out


# -- stored SLOs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSLO:
    id: int
    name: str
    version: int
    spec: SLOSpec


async def load_slos(conn: Conn) -> dict[str, StoredSLO]:
    """Every stored SLO by name (an invalid stored spec is skipped)."""
    rows = await conn.fetch("SELECT id, name, version, spec::text AS spec FROM slos")
    out = {}
    for r in rows:
        try:
            spec = SLOSpec.model_validate(orjson.loads(r["spec"]))
        except ValueError:
            continue
        out[r["name"]] = StoredSLO(int(r["id"]), r["name"], int(r["version"]), spec)
    return out
