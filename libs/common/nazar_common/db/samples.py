"""Writing samples: series resolution and bulk inserts.

Series are identified by ``(metric, host, labels)``; labels travel as a
canonical JSON text (sorted keys) so the same label set always maps to the
same key, and PostgreSQL compares them as jsonb.
"""

from __future__ import annotations

import uuid
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


def key_columns(keys: Sequence[SeriesKey]) -> tuple[list[str], list[str], list[str]]:
    """Metrics, hosts and label texts of ``keys``: three query parameters."""
    return [k.metric for k in keys], [k.host for k in keys], [k.labels for k in keys]


class SeriesResolver:
    """Maps series keys to ids, creating missing series.

    A dictionary keeps the hot path to one lookup per key once series are
    known; it is cleared when it reaches ``max_size`` (series ids never
    change, so a cleared entry only costs one more database lookup)."""

    def __init__(self, max_size: int = 500_000) -> None:
        self._cache: dict[SeriesKey, int] = {}
        self._max_size = max_size

    def cached(self, key: SeriesKey) -> int | None:
        return self._cache.get(key)

    def cached_many(self, keys: Sequence[SeriesKey]) -> list[int | None]:
        """The known ids of ``keys``, None where unknown (no database access)."""
        return list(map(self._cache.get, keys))

    def remember(self, key: SeriesKey, sid: int) -> None:
        if len(self._cache) >= self._max_size:
            self._cache.clear()
        self._cache[key] = sid

    async def resolve(self, conn: asyncpg.Connection, keys: Sequence[SeriesKey]) -> list[int]:
        """Ids for ``keys`` (in order; keys may repeat). Missing series are
        created: inside the caller's transaction if there is one, else in
        their own (a series without samples is harmless)."""
        ids = self.cached_many(keys)
        if None not in ids:
            return ids  # type: ignore[return-value]
        missing = sorted({k for k, i in zip(keys, ids, strict=True) if i is None})
        found = dict(await self.lookup(conn, missing))
        unknown = [k for k in missing if k not in found]
        if unknown:
            await insert_series(conn, unknown)
            found.update(await self.lookup(conn, unknown))
        if len(found) != len(missing):  # pragma: no cover - would be a bug
            raise RuntimeError("series resolution failed")
        return [i if i is not None else found[k] for k, i in zip(keys, ids, strict=True)]

    async def lookup(
        self, conn: asyncpg.Connection, keys: Sequence[SeriesKey]
    ) -> list[tuple[SeriesKey, int]]:
        """The ``(key, id)`` of those ``keys`` that exist (and remember them).

        A correlated subquery per key makes PostgreSQL use the unique index
        for each lookup instead of hashing the whole series table."""
        rows = await conn.fetch(
            "SELECT t.ord, (SELECT s.id FROM series s WHERE s.metric = t.m AND s.host = t.h "
            "AND s.labels = t.l::jsonb) AS id "
            "FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(m, h, l, ord)",
            *key_columns(keys),
        )
        found = []
        for row in rows:
            if row["id"] is not None:
                key = keys[row["ord"] - 1]
                self.remember(key, row["id"])
                found.append((key, row["id"]))
        return found

    def forget(self) -> None:
        self._cache.clear()


async def insert_series(conn: asyncpg.Connection, keys: Sequence[SeriesKey]) -> int:
    """Create the series ``keys`` that do not exist; returns how many were new."""
    # Sorted input: concurrent writers take index locks in one order.
    result = await conn.execute(
        "INSERT INTO series (metric, host, labels) "
        "SELECT m, h, l::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) "
        "AS t(m, h, l) ORDER BY m, h, l ON CONFLICT DO NOTHING",
        *key_columns(keys),
    )
    return int(result.split()[-1])


async def host_series_keys(
    conn: asyncpg.Connection, host: str
) -> list[tuple[SeriesKey, int]]:
    """Every series of ``host`` with its id."""
    rows = await conn.fetch(
        "SELECT id, metric, labels::text AS labels FROM series WHERE host = $1", host
    )
    # jsonb prints its own canonical form; keys compare by canonical_labels
    return [
        (SeriesKey(r["metric"], host, canonical_labels(orjson.loads(r["labels"]))), r["id"])
        for r in rows
    ]


async def lock_host_series(conn: asyncpg.Connection, hosts: Sequence[str]) -> dict[str, int]:
    """In the caller's transaction: take each host's series-creation lock (a
    transaction-scoped advisory lock, in one global order, so writers of
    different hosts never wait for each other) and count its series."""
    ordered = sorted(set(hosts))
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('nazar.series:' || h, 0)) "
        "FROM (SELECT h FROM unnest($1::text[]) AS t(h) ORDER BY h) AS o",
        ordered,
    )
    rows = await conn.fetch(
        "SELECT t.h, (SELECT count(*) FROM series s WHERE s.host = t.h) AS n "
        "FROM unnest($1::text[]) AS t(h)",
        ordered,
    )
    return {r["h"]: int(r["n"]) for r in rows}


async def count_series(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM series"))


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


async def record_request_keys(
    conn: asyncpg.Connection,
    keys: Sequence[str],
    body_hashes: Sequence[bytes | None] | None = None,
) -> set[str]:
    """Store idempotency keys (with their request bodies' digests, aligned
    with ``keys``; the first of a repeated key counts); returns the new ones."""
    if not keys:
        return set()
    first: dict[str, bytes | None] = {}
    for key, digest in zip(keys, body_hashes or [None] * len(keys), strict=True):
        first.setdefault(key, digest)
    ordered = sorted(first)
    rows = await conn.fetch(
        "INSERT INTO ingest_requests (key, body_hash) "
        "SELECT k, h FROM unnest($1::text[], $2::bytea[]) AS t(k, h) ORDER BY k "
        "ON CONFLICT DO NOTHING RETURNING key",
        ordered,
        [first[k] for k in ordered],
    )
    return {r["key"] for r in rows}


async def stored_body_hashes(
    conn: asyncpg.Connection, keys: Sequence[str]
) -> dict[str, bytes | None]:
    """The body digests stored with these idempotency keys (None: no digest)."""
    rows = await conn.fetch(
        "SELECT key, body_hash FROM ingest_requests WHERE key = ANY($1::text[])", list(keys)
    )
    return {r["key"]: r["body_hash"] for r in rows}


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


def array_literal(numbers: Sequence[float]) -> str:
    """PostgreSQL's text form of a one-dimensional array of finite numbers."""
    text = orjson.dumps(numbers).decode()
    return "{" + text[1:-1] + "}"


#: SQLSTATE raised by ``nazar_write_group`` when a request key is already stored.
DUPLICATE_REQUEST_SQLSTATE = "NZ409"


async def write_samples_with_outbox(
    conn: asyncpg.Connection,
    request_keys: Sequence[str],
    series_ids: Sequence[int],
    times: Sequence[float],
    values: Sequence[float],
    outbox: Sequence[tuple[str, str, uuid.UUID, bytes]],
    body_hashes: Sequence[bytes | None] | None = None,
) -> bool:
    """Write one group commit in one statement (``nazar_write_group``,
    migration 0016): the requests' idempotency keys (distinct), the samples
    (Unix-second times) and the ``outbox`` rows ``(exchange, routing_key,
    message_id, body)``, all of one exchange; ``body_hashes`` are the keys'
    request-body digests (aligned with ``request_keys``).

    Run outside a transaction, it is its own transaction: one round trip.
    Returns False, having written nothing, when one of ``request_keys`` was
    already stored; the caller then handles the duplicates statement by
    statement (see :func:`record_request_keys`)."""
    exchanges = {row[0] for row in outbox}
    if len(exchanges) != 1:
        raise ValueError("the outbox rows of a group commit go to one exchange")
    try:
        # The three columns travel as array literals in text, serialised by
        # orjson in compiled code and parsed by the server: several times
        # cheaper for the client than encoding the arrays value by value.
        await conn.execute(
            "SELECT nazar_write_group($1, $2, $3::text::bigint[], $4::text::float8[], "
            "$5::text::float8[], $6, $7, $8, $9, $10)",
            request_keys,
            datetime.fromtimestamp(min(times), UTC),
            array_literal(series_ids),
            array_literal(times),
            array_literal(values),
            exchanges.pop(),
            [row[1] for row in outbox],
            [row[2] for row in outbox],
            [row[3] for row in outbox],
            body_hashes if body_hashes is not None and any(body_hashes) else None,
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == DUPLICATE_REQUEST_SQLSTATE:
            return False
        raise
    return True
