"""Reading back what the protocol endpoints stored (SQL against the test database)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


async def stored(database_url: str, host: str) -> list[dict[str, Any]]:
    """Every sample of ``host``: metric, labels (dict), time (Unix s), value; in time order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT x.metric, x.labels::text AS labels, extract(epoch FROM s.time) AS t, "
            "s.value FROM samples s JOIN series x ON x.id = s.series_id WHERE x.host = $1 "
            "ORDER BY s.time, x.metric, x.labels::text",
            host,
        )
    finally:
        await conn.close()
    return [
        {"metric": r["metric"], "labels": orjson.loads(r["labels"]), "t": float(r["t"]),
         "value": r["value"]}
        for r in rows
    ]


async def series_count(database_url: str, host_like: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM series WHERE host LIKE $1", host_like
        ))
    finally:
        await conn.close()


async def scalar(database_url: str, sql: str, *args: object) -> int:
    """One integer from the test database (a count)."""
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def host_samples(database_url: str, host: str) -> int:
    """How many samples ``host`` has."""
    return await scalar(
        database_url,
        "SELECT count(*) FROM samples s JOIN series x ON x.id = s.series_id WHERE x.host = $1",
        host,
    )
