"""Writing samples: series resolution and bulk inserts.

Series are identified by ``(metric, host, labels)``; labels travel as a
canonical JSON text (sorted keys) so the same label set always maps to the
same key, and PostgreSQL compares them as jsonb.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import asyncpg
import orjson


class SeriesKey(NamedTuple):
    metric: str
    host: str
    labels: str  # canonical JSON object text


def canonical_labels(labels: dict[str, str]) -> str:
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()


class SeriesResolver:
    """Maps series keys to ids, creating missing series. An LRU cache keeps
    the hot path to a dictionary lookup once series are known."""

    def __init__(self, max_size: int = 500_000) -> None:
        self._cache: OrderedDict[SeriesKey, int] = OrderedDict()
        self._max_size = max_size

    def cached(self, key: SeriesKey) -> int | None:
        sid = self._cache.get(key)
        if sid is not None:
            self._cache.move_to_end(key)
        return sid

    def _remember(self, key: SeriesKey, sid: int) -> None:
        self._cache[key] = sid
        if len(self._cache) > self._max_size:
            self._cache.popitem(last=False)

    async def resolve(self, conn: asyncpg.Connection, keys: Sequence[SeriesKey]) -> list[int]:
        """Ids for ``keys`` (in order). Runs inside the caller's transaction."""
        ids: list[int | None] = [self.cached(k) for k in keys]
        missing = sorted({k for k, i in zip(keys, ids, strict=True) if i is None})
        if missing:
            unknown = await self._lookup(conn, missing)
            if unknown:
                # Sorted input: concurrent writers take index locks in one order.
                await conn.execute(
                    "INSERT INTO series (metric, host, labels) "
                    "SELECT m, h, l::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) "
                    "AS t(m, h, l) ORDER BY m, h, l ON CONFLICT DO NOTHING",
                    [k.metric for k in unknown],
                    [k.host for k in unknown],
                    [k.labels for k in unknown],
                )
                await self._lookup(conn, unknown)
            ids = [
                i if i is not None else self._cache.get(k) for k, i in zip(keys, ids, strict=True)
            ]
        if any(i is None for i in ids):  # pragma: no cover - would be a bug
            raise RuntimeError("series resolution failed")
        return ids  # type: ignore[return-value]

    async def _lookup(self, conn: asyncpg.Connection, keys: list[SeriesKey]) -> list[SeriesKey]:
        """Cache the ids of ``keys`` that exist; return those that do not.

        A correlated subquery per key makes PostgreSQL use the unique index
        for each lookup instead of hashing the whole series table."""
        rows = await conn.fetch(
            "SELECT t.ord, (SELECT s.id FROM series s WHERE s.metric = t.m AND s.host = t.h "
            "AND s.labels = t.l::jsonb) AS id "
            "FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(m, h, l, ord)",
            [k.metric for k in keys],
            [k.host for k in keys],
            [k.labels for k in keys],
        )
        unknown = []
        for row in rows:
            key = keys[row["ord"] - 1]
            if row["id"] is None:
                unknown.append(key)
            else:
                self._remember(key, row["id"])
        return unknown

    def forget(self) -> None:
        self._cache.clear()


def to_datetimes(times: Sequence[float]) -> list[datetime]:
    fromts = datetime.fromtimestamp
    return [fromts(t, UTC) for t in times]


async def insert_samples(
    conn: asyncpg.Connection,
    series_ids: Sequence[int],
    times: Sequence[datetime],
    values: Sequence[float],
    *,
    use_copy: bool = True,
) -> None:
    """Insert samples with COPY, or with one ``unnest`` INSERT where COPY is
    not available (some proxies and single-session servers)."""
    if use_copy:
        await conn.copy_records_to_table(
            "samples",
            records=zip(times, series_ids, values, strict=True),
            columns=("time", "series_id", "value"),
        )
    else:
        await conn.execute(
            "INSERT INTO samples (time, series_id, value) "
            "SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::float8[])",
            list(times),
            list(series_ids),
            list(values),
        )


async def insert_samples_epoch(
    conn: asyncpg.Connection,
    series_ids: Sequence[int],
    times: Sequence[float],
    values: Sequence[float],
) -> None:
    """Insert samples given Unix-second timestamps, as three arrays unnested
    by the server: the arrays are encoded in C and PostgreSQL converts the
    times, so this costs the client far less than COPY of Python rows."""
    await conn.execute(
        "INSERT INTO samples (time, series_id, value) "
        "SELECT to_timestamp(t), s, v FROM unnest($1::float8[], $2::int8[], $3::float8[]) "
        "AS u(t, s, v)",
        times,
        series_ids,
        values,
    )


async def record_request_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Store idempotency keys; returns those that were new."""
    if not keys:
        return set()
    rows = await conn.fetch(
        "INSERT INTO ingest_requests (key) SELECT k FROM unnest($1::text[]) AS t(k) ORDER BY k "
        "ON CONFLICT DO NOTHING RETURNING key",
        sorted(set(keys)),
    )
    return {r["key"] for r in rows}


async def upsert_hosts(conn: asyncpg.Connection, seen: dict[str, tuple[str, datetime]]) -> None:
    """Record hosts as seen: ``{host: (canonical labels, latest sample time)}``."""
    if not seen:
        return
    names = sorted(seen)
    await conn.execute(
        "INSERT INTO hosts (host, labels, last_seen, last_sample) "
        "SELECT h, l::jsonb, now(), t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) "
        "AS u(h, l, t) ORDER BY h "
        "ON CONFLICT (host) DO UPDATE SET labels = CASE WHEN EXCLUDED.labels = '{}'::jsonb "
        "THEN hosts.labels ELSE EXCLUDED.labels END, last_seen = now(), "
        "last_sample = greatest(hosts.last_sample, EXCLUDED.last_sample)",
        names,
        [seen[n][0] for n in names],
        [seen[n][1] for n in names],
    )
