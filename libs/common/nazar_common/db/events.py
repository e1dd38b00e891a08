"""Events (deploys, configuration changes, incidents): all their SQL.

The ingest API records, lists and deletes them; ingest's maintenance prunes
them; the analyzer loads the recent ones (see migration ``0008_events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import orjson

from nazar_common.schemas.events import Event, EventIn

#: Announces every change of the events table (migration 0008's trigger).
EVENTS_CHANNEL = "nazar_events"

_COLUMNS = (
    "id, kind, title, service, version, hosts, selector::text AS selector, start_time, "
    "end_time, link, labels::text AS labels, created_at"
)


def _event(row: asyncpg.Record) -> Event:
    return Event(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        service=row["service"],
        version=row["version"],
        hosts=tuple(row["hosts"]),
        selector=orjson.loads(row["selector"]),
        start=row["start_time"],
        end=row["end_time"],
        link=row["link"],
        labels=orjson.loads(row["labels"]),
        created_at=row["created_at"],
    )


def _json(labels: dict[str, str]) -> str:
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()


async def insert_event(conn: asyncpg.Connection | asyncpg.Pool, event: EventIn,
                       created_by: str = "") -> Event:
    row = await conn.fetchrow(
        "INSERT INTO events (kind, title, service, version, hosts, selector, start_time, "
        "end_time, link, labels, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10::jsonb, $11) "
        f"RETURNING {_COLUMNS}",
        event.kind,
        event.title or event.default_title(),
        event.service,
        event.version,
        list(dict.fromkeys(event.hosts)),
        _json(event.selector),
        event.start,
        event.end,
        event.link,
        _json(event.labels),
        created_by,
    )
    return _event(row)


async def get_event(conn: asyncpg.Connection | asyncpg.Pool, event_id: int) -> Event | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE id = $1", event_id)
    return None if row is None else _event(row)


async def delete_event(conn: asyncpg.Connection | asyncpg.Pool, event_id: int) -> bool:
    deleted = await conn.fetchval("DELETE FROM events WHERE id = $1 RETURNING id", event_id)
    return deleted is not None


@dataclass(frozen=True)
class EventFilter:
    """Events overlapping ``[start, end]``, optionally of some kinds, touching
    one host (by name, by a selector matching its labels, or fleet-wide) and
    carrying all of ``labels``."""

    start: datetime
    end: datetime
    kinds: Sequence[str] = ()
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    limit: int = 1000


async def list_events(conn: asyncpg.Connection | asyncpg.Pool, f: EventFilter) -> list[Event]:
    """Matching events, newest first (at most ``f.limit``)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events e "
        "WHERE e.start_time <= $2 AND coalesce(e.end_time, e.start_time) >= $1 "
        "AND ($3::text[] IS NULL OR e.kind = ANY($3)) "
        "AND e.labels @> $4::jsonb "
        "AND ($5::text IS NULL OR $5 = ANY(e.hosts) "
        "     OR (e.hosts = '{}' AND e.selector = '{}'::jsonb) "
        "     OR (e.selector <> '{}'::jsonb AND e.selector <@ coalesce("
        "         (SELECT h.labels FROM hosts h WHERE h.host = $5), '{}'::jsonb))) "
        "ORDER BY e.start_time DESC, e.id DESC LIMIT $6",
        f.start,
        f.end,
        list(f.kinds) or None,
        _json(f.labels),
        f.host,
        f.limit,
    )
    return [_event(r) for r in rows]


async def recent_events(
    conn: asyncpg.Connection | asyncpg.Pool, since: datetime, limit: int
) -> list[Event]:
    """Events that started at or after ``since``, oldest first (the newest
    ``limit`` of them)."""
    rows = await conn.fetch(
        f"SELECT * FROM (SELECT {_COLUMNS} FROM events WHERE start_time >= $1 "
        "ORDER BY start_time DESC, id DESC LIMIT $2) e ORDER BY start_time, id",
        since,
        limit,
    )
    return [_event(r) for r in rows]


async def prune_events(conn: asyncpg.Connection | asyncpg.Pool, retention: timedelta) -> int:
    """Delete events that ended (or, without an end, started) before the retention."""
    result = await conn.execute(
        "DELETE FROM events WHERE coalesce(end_time, start_time) < now() - $1::interval",
        retention,
    )
    return int(result.split()[-1])
