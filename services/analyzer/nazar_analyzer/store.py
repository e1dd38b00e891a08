"""Database adapter of the analyzer: rules, checkpoints of the evaluation
state, partition claims, alerts, outbox, detector snapshots and history.
Only this module runs SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from nazar_analyzer import templates
from nazar_analyzer.machine import Status, Transition
from nazar_analyzer.rules import Rule, fingerprint, parse_rule
from nazar_analyzer.state import EPS, Snapshot, Subject
from nazar_common.db import slo as slo_sql
from nazar_common.db.events import recent_events
from nazar_common.messaging.topology import ALERTS_EXCHANGE, ALERTS_ROUTING_KEY
from nazar_common.schemas.events import Event
from nazar_common.schemas.slo import Measure, SLOSpec
from nazar_common.schemas.wire import AlertEventV1, ExpectedBand

#: Namespace of the deterministic AlertEventV1 ids (uuid5 of "alert id:seq").
EVENT_NAMESPACE = uuid.UUID("6f0c1c1e-8a57-4d0e-9a43-6e617a617261")

def event_key(rule_id: int, subject: str, tr: Transition) -> uuid.UUID:
    """The id of a transition's event, from what the transition is: replaying
    the samples that caused it gives the same id, so it is recorded once."""
    return uuid.uuid5(
        EVENT_NAMESPACE,
        f"{rule_id}|{subject}|{tr.started_at!r}|{tr.previous}>{tr.state}|{tr.at!r}",
    )


def to_dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


# -- configuration ----------------------------------------------------------


async def load_rules(conn: asyncpg.Connection | asyncpg.Pool) -> list[Rule]:
    rows = await conn.fetch("SELECT id, name, version, spec::text AS spec FROM rules ORDER BY id")
    out = []
    for row in rows:
        rule = parse_rule({**row, "spec": orjson.loads(row["spec"])})
        if rule is not None:
            out.append(rule)
    return out


async def load_hosts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, dict[str, str]]:
    rows = await conn.fetch("SELECT host, labels::text AS labels FROM hosts")
    return {r["host"]: orjson.loads(r["labels"]) for r in rows}


async def load_events(
    conn: asyncpg.Connection | asyncpg.Pool, lookback: float, limit: int
) -> list[Event]:
    """Events that started within ``lookback`` seconds (the newest ``limit``)."""
    since = datetime.now(UTC) - timedelta(seconds=lookback)
    return await recent_events(conn, since, limit)


async def load_slos(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, SLOSpec]:
    """The stored SLOs by name (for burn_rate rules)."""
    return {name: slo.spec for name, slo in (await slo_sql.load_slos(conn)).items()}


async def measure_slo(
    conn: asyncpg.Connection | asyncpg.Pool, spec: SLOSpec, windows: Sequence[float],
    now: float, raw_from: float,
) -> dict[float, Measure]:
    """Good and total over each window ending at ``now``."""
    found = await slo_sql.measure(conn, spec, [now - w for w in windows], now, raw_from)
    return dict(zip(windows, found, strict=True))


# -- partitions and checkpoints ------------------------------------------------


_STATE_COLUMNS = (
    "rule_id, subject, state, since, fired_at, last_breach, last_ts, prior_state, alert_id"
)


def _status(row: asyncpg.Record) -> Status:
    return Status(
        state=row["state"],
        since=row["since"],
        fired_at=row["fired_at"],
        last_breach=row["last_breach"],
        last_ts=row["last_ts"],
        prior=row["prior_state"],
        alert_id=row["alert_id"],
    )


async def claim_partition(pool: asyncpg.Pool, part: int, owner: str) -> int:
    """Take partition ``part`` over: its new epoch (checkpoints of any older
    epoch are refused from now on)."""
    epoch = await pool.fetchval(
        "INSERT INTO analyzer_partitions (part, epoch, owner, claimed_at) "
        "VALUES ($1, 1, $2, now()) ON CONFLICT (part) DO UPDATE SET "
        "epoch = analyzer_partitions.epoch + 1, owner = EXCLUDED.owner, claimed_at = now() "
        "RETURNING epoch",
        part,
        owner,
    )
    return int(epoch)


async def load_partition(
    pool: asyncpg.Pool, part: int
) -> list[tuple[int, Subject, Status]]:
    """The checkpointed states of partition ``part`` and their subjects
    (host labels are left to the caller, which holds them in memory)."""
    rows = await pool.fetch(
        f"SELECT {', '.join('a.' + c.strip() for c in _STATE_COLUMNS.split(','))}, "
        "a.host, a.series_id, s.metric, s.labels::text AS labels "
        "FROM analyzer_state a LEFT JOIN series s ON s.id = a.series_id WHERE a.part = $1",
        part,
    )
    out = []
    for r in rows:
        labels = orjson.loads(r["labels"]) if r["labels"] else {}
        subject = Subject(r["subject"], r["host"], r["series_id"], r["metric"],
                          tuple(sorted(labels.items())))
        out.append((r["rule_id"], subject, _status(r)))
    return out


ModelRow = tuple[int, int, int, str, float, float | None, int, bytes, float | None]


async def checkpoint(
    pool: asyncpg.Pool,
    part: int,
    epoch: int,
    states: Sequence[tuple[int, Subject, Status]],
    deleted: Iterable[tuple[int, str]],
    models: Sequence[ModelRow],
    samples: int,
) -> bool:
    """Write a partition's changed states (and detector snapshots) in one
    transaction, if ``epoch`` is still the partition's; False if it is not
    (another replica took the partition over: nothing was written)."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval(
            "UPDATE analyzer_partitions SET checkpointed_at = now(), "
            "checkpoints = checkpoints + 1, samples = samples + $3 "
            "WHERE part = $1 AND epoch = $2 RETURNING epoch",
            part,
            epoch,
            samples,
        )
        if current is None:
            return False
        if states:
            items = sorted(states, key=lambda x: (x[0], x[1].key))
            await conn.execute(
                "INSERT INTO analyzer_state (rule_id, subject, host, series_id, part, state, "
                "since, fired_at, last_breach, last_ts, prior_state, alert_id) "
                "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], "
                "$5::int[], $6::text[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], "
                "$11::text[], $12::bigint[]) "
                "ON CONFLICT (rule_id, subject) DO UPDATE SET part = EXCLUDED.part, "
                "state = EXCLUDED.state, since = EXCLUDED.since, fired_at = EXCLUDED.fired_at, "
                "last_breach = EXCLUDED.last_breach, last_ts = EXCLUDED.last_ts, "
                "prior_state = EXCLUDED.prior_state, alert_id = EXCLUDED.alert_id, "
                "updated_at = now()",
                [r for r, _, _ in items],
                [s.key for _, s, _ in items],
                [s.host for _, s, _ in items],
                [s.series_id for _, s, _ in items],
                [part] * len(items),
                [st.state for _, _, st in items],
                [st.since for _, _, st in items],
                [st.fired_at for _, _, st in items],
                [st.last_breach for _, _, st in items],
                [st.last_ts for _, _, st in items],
                [st.prior for _, _, st in items],
                [st.alert_id for _, _, st in items],
            )
        await delete_states(conn, deleted)
        if models:
            await _save_snapshots(conn, models)
    return True


# Periodic rule kinds (forecast, burn_rate) keep their states in rows locked
# per evaluation, as they are evaluated by a sweep, not on the sample stream.


async def ensure_states(conn: asyncpg.Connection, keys: Sequence[tuple[int, Subject]]) -> None:
    """Create missing state rows. Run OUTSIDE the evaluating transaction: new
    rows then never stay locked out of the global lock order."""
    ordered = sorted({(rule_id, s.key): s for rule_id, s in keys}.items())
    if not ordered:
        return
    await conn.execute(
        "INSERT INTO analyzer_state (rule_id, subject, host, series_id) "
        "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) "
        "ORDER BY 1, 2 ON CONFLICT DO NOTHING",
        [k[0] for k, _ in ordered],
        [k[1] for k, _ in ordered],
        [s.host for _, s in ordered],
        [s.series_id for _, s in ordered],
    )


async def lock_states(
    conn: asyncpg.Connection,
    keys: Sequence[tuple[int, str]],
    *,
    skip_locked: bool = False,
) -> dict[tuple[int, str], Status]:
    """Lock state rows in one global order (concurrent transactions never
    deadlock). With ``skip_locked`` rows held by another transaction are left
    out of the result."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
    rows = await conn.fetch(
        f"SELECT {_STATE_COLUMNS} FROM analyzer_state "
        "WHERE (rule_id, subject) IN (SELECT * FROM unnest($1::bigint[], $2::text[])) "
        f"ORDER BY rule_id, subject {lock}",
        [k[0] for k in ordered],
        [k[1] for k in ordered],
    )
    return {(r["rule_id"], r["subject"]): _status(r) for r in rows}


async def save_states(conn: asyncpg.Connection, states: dict[tuple[int, str], Status]) -> None:
    if not states:
        return
    items = sorted(states.items())
    await conn.execute(
        "UPDATE analyzer_state AS a SET state = t.state, since = t.since, fired_at = t.fired_at, "
        "last_breach = t.last_breach, last_ts = t.last_ts, prior_state = t.prior, "
        "alert_id = t.alert_id, updated_at = now() "
        "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[], "
        "$6::float8[], $7::float8[], $8::text[], $9::bigint[]) "
        "AS t(rule_id, subject, state, since, fired_at, last_breach, last_ts, prior, alert_id) "
        "WHERE a.rule_id = t.rule_id AND a.subject = t.subject",
        [k[0] for k, _ in items],
        [k[1] for k, _ in items],
        [s.state for _, s in items],
        [s.since for _, s in items],
        [s.fired_at for _, s in items],
        [s.last_breach for _, s in items],
        [s.last_ts for _, s in items],
        [s.prior for _, s in items],
        [s.alert_id for _, s in items],
    )


async def delete_states(conn: asyncpg.Connection, keys: Iterable[tuple[int, str]]) -> None:
    keys = sorted(keys)
    if not keys:
        return
    await conn.execute(
        "DELETE FROM analyzer_state WHERE (rule_id, subject) IN "
        "(SELECT * FROM unnest($1::bigint[], $2::text[]))",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    await conn.execute(
        "DELETE FROM analyzer_models m WHERE NOT EXISTS "
        "(SELECT 1 FROM analyzer_state a WHERE a.rule_id = m.rule_id "
        "AND a.subject = 's:' || m.series_id) AND m.rule_id = ANY($1::bigint[])",
        sorted({k[0] for k in keys}),
    )


async def lock_unpartitioned_orphans(
    conn: asyncpg.Connection, live_rule_ids: Sequence[int]
) -> dict[tuple[int, str], tuple[Status, str, int | None]]:
    """Lock the state rows outside every partition (forecast and burn_rate
    rules) whose rule is gone or disabled: ``{(rule_id, subject): (status,
    host, series_id)}``. Rows held by another transaction are skipped."""
    rows = await conn.fetch(
        f"SELECT {_STATE_COLUMNS}, host, series_id FROM analyzer_state "
        "WHERE part IS NULL AND NOT (rule_id = ANY($1::bigint[])) "
        "ORDER BY rule_id, subject FOR UPDATE SKIP LOCKED",
        sorted(live_rule_ids),
    )
    return {(r["rule_id"], r["subject"]): (_status(r), r["host"], r["series_id"]) for r in rows}


async def alert_rows(
    conn: asyncpg.Pool | asyncpg.Connection, alert_ids: Sequence[int]
) -> dict[int, asyncpg.Record]:
    """What is needed to close alerts of deleted rules."""
    rows = await conn.fetch(
        "SELECT id, rule_name, kind, severity, metric FROM alerts WHERE id = ANY($1::bigint[])",
        list(alert_ids),
    )
    return {r["id"]: r for r in rows}


# -- alerts, transitions and the outbox ----------------------------------------


def alert_labels(rule: Rule, subject: Subject) -> dict[str, str]:
    return {**dict(subject.labels), **rule.spec.labels}


async def record_transitions(
    conn: asyncpg.Connection,
    rule: Rule,
    subject: Subject,
    status: Status,
    transitions: Sequence[Transition],
    start_alert_id: int | None,
) -> list[AlertEventV1]:
    """Write the alert rows, transition history and outbox events of
    ``transitions`` (in order); leaves the open alert's id in ``status``."""
    events: list[AlertEventV1] = []
    current = start_alert_id
    labels = alert_labels(rule, subject)
    labels_json = orjson.dumps(labels).decode()
    for tr in transitions:
        closing = tr.state in ("resolved", "normal")
        eid = event_key(rule.id, subject.key, tr)
        done = await conn.fetchval(
            "SELECT alert_id FROM alert_transitions WHERE event_id = $1", eid
        )
        if done is not None:  # recorded before (a replay after a crash or rebalance)
            current = None if closing else done
            continue
        obs = tr.observation
        context = {
            "rule": rule.name,
            "host": subject.host,
            "metric": subject.metric,
            "labels": labels,
            "host_labels": dict(subject.host_labels),
            "value": obs.value if obs else None,
            "expected": {"low": obs.low, "high": obs.high, "centre": obs.centre}
            if obs
            else {},
            "score": obs.score if obs else None,
            "explanation": obs.explanation if obs else None,
            "state": tr.state,
            "previous_state": tr.previous,
            "severity": rule.spec.severity,
            "started_at": to_dt(tr.started_at),
            "at": to_dt(tr.at),
        }
        added = dict(tr.annotations)
        context["deploy"] = added.get("deploy")
        annotations = {**templates.render(rule.spec.annotations, context), **added}
        obs_cols = (
            obs.value if obs else None,
            obs.low if obs else None,
            obs.high if obs else None,
            obs.centre if obs else None,
            obs.score if obs else None,
            obs.explanation if obs else None,
            list(obs.contributors) if obs else [],
        )
        if current is None or tr.new_alert:
            row = await conn.fetchrow(
                "INSERT INTO alerts (fingerprint, rule_id, rule_name, kind, subject, host, "
                "series_id, metric, labels, annotations, channels, severity, state, seq, "
                "started_at, fired_at, resolved_at, value, expected_low, expected_high, "
                "expected_centre, score, explanation, contributors) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13, 1, "
                "$14, $15, $16, $17, $18, $19, $20, $21, $22, $23) "
                "RETURNING id, seq, started_at, resolved_at",
                fingerprint(rule.name, subject.key),
                rule.id,
                rule.name,
                rule.kind,
                subject.key,
                subject.host,
                subject.series_id,
                subject.metric,
                labels_json,
                orjson.dumps(annotations).decode(),
                list(rule.spec.channels),
                rule.spec.severity,
                tr.state,
                to_dt(tr.started_at),
                to_dt(tr.at) if tr.state == "firing" else None,
                to_dt(tr.at) if closing else None,
                *obs_cols,
            )
        else:
            row = await conn.fetchrow(
                "UPDATE alerts SET state = $2, seq = seq + 1, "
                "fired_at = CASE WHEN $2 = 'firing' THEN coalesce(fired_at, $3) ELSE fired_at END, "
                "resolved_at = CASE WHEN $2 IN ('resolved', 'normal') THEN $3 ELSE NULL END, "
                "value = coalesce($4, value), expected_low = coalesce($5, expected_low), "
                "expected_high = coalesce($6, expected_high), "
                "expected_centre = coalesce($7, expected_centre), score = coalesce($8, score), "
                "explanation = coalesce($9, explanation), "
                "contributors = CASE WHEN cardinality($10::text[]) > 0 THEN $10 "
                "ELSE contributors END, "
                "annotations = $11::jsonb, severity = $12, channels = $13, updated_at = now() "
                "WHERE id = $1 RETURNING id, seq, started_at, resolved_at",
                current,
                tr.state,
                to_dt(tr.at),
                *obs_cols,
                orjson.dumps(annotations).decode(),
                rule.spec.severity,
                list(rule.spec.channels),
            )
            if row is None:  # the alert row vanished (deleted by hand): open a new one
                current = None
                events += await record_transitions(conn, rule, subject, status, [tr], None)
                current = status.alert_id
                continue
        alert_id, seq = row["id"], row["seq"]
        await conn.execute(
            "INSERT INTO alert_transitions (alert_id, seq, event_id, from_state, to_state, at, "
            "value, expected_low, expected_high, expected_centre, score, explanation) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            alert_id,
            seq,
            eid,
            tr.previous,
            tr.state,
            to_dt(tr.at),
            *obs_cols[:6],
        )
        event = AlertEventV1(
            id=eid,
            alert_id=alert_id,
            fingerprint=fingerprint(rule.name, subject.key),
            rule_id=rule.id,
            rule_name=rule.name,
            kind=rule.kind,
            state=tr.state,  # type: ignore[arg-type]
            previous_state=tr.previous,  # type: ignore[arg-type]
            severity=rule.spec.severity,
            host=subject.host,
            metric=subject.metric,
            labels=labels,
            annotations=annotations,
            value=obs.value if obs else None,
            expected=ExpectedBand(low=obs.low, high=obs.high, centre=obs.centre)
            if obs and (obs.low is not None or obs.high is not None)
            else None,
            score=obs.score if obs else None,
            explanation=obs.explanation if obs else None,
            contributors=list(obs.contributors) if obs else [],
            channels=list(rule.spec.channels),
            started_at=row["started_at"],
            resolved_at=row["resolved_at"],
            at=to_dt(tr.at),
        )
        await conn.execute(
            "INSERT INTO outbox (exchange, routing_key, message_id, body) VALUES ($1, $2, $3, $4)",
            ALERTS_EXCHANGE,
            ALERTS_ROUTING_KEY,
            eid,
            event.to_bytes(),
        )
        events.append(event)
        current = None if closing else alert_id
    status.alert_id = current
    return events


# -- detector snapshots -------------------------------------------------------


class PgHistory:
    """Stored history and detector snapshots, for the engine to bring detectors
    up to date (at a partition's restore, or for a series first seen)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch_ranges(
        self, ranges: Sequence[tuple[int, float | None, float, int]]
    ) -> list[list[tuple[float, float]]]:
        return await fetch_ranges(self.pool, ranges)

    async def load_snapshots(
        self, keys: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], Snapshot]:
        return await load_snapshots(self.pool, keys)


async def load_snapshots(
    conn: asyncpg.Connection | asyncpg.Pool, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], Snapshot]:
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT m.rule_id, m.series_id, rule_version, detector, interval_s, last_ts, points, "
        "state, origin FROM analyzer_models m JOIN unnest($1::bigint[], $2::bigint[]) AS t(r, s) "
        "ON m.rule_id = t.r AND m.series_id = t.s",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {
        (r["rule_id"], r["series_id"]): Snapshot(
            r["rule_version"], r["detector"], r["interval_s"], r["last_ts"], r["points"],
            bytes(r["state"]), r["origin"],
        )
        for r in rows
    }


async def _save_snapshots(conn: asyncpg.Connection, rows: Sequence[ModelRow]) -> None:
    """Upsert snapshots (taken at the checkpoint's position)."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    await conn.executemany(
        "INSERT INTO analyzer_models (rule_id, series_id, rule_version, detector, "
        "interval_s, last_ts, points, state, origin) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (rule_id, series_id) DO UPDATE SET rule_version = EXCLUDED.rule_version, "
        "detector = EXCLUDED.detector, interval_s = EXCLUDED.interval_s, "
        "last_ts = EXCLUDED.last_ts, points = EXCLUDED.points, state = EXCLUDED.state, "
        "origin = EXCLUDED.origin, updated_at = now()",
        rows,
    )


# -- history --------------------------------------------------------------------


async def fetch_ranges(
    conn: asyncpg.Connection | asyncpg.Pool,
    ranges: Sequence[tuple[int, float | None, float, int]],
) -> list[list[tuple[float, float]]]:
    """Raw points of each (series id, after, until, limit) request: the most
    recent ``limit`` points with ``after < time <= until``, oldest first."""
    if not ranges:
        return []
    rows = await conn.fetch(
        "SELECT t.ord, extract(epoch FROM s.time)::float8 AS ts, s.value "
        "FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::int[]) "
        "WITH ORDINALITY AS t(sid, lo, hi, lim, ord) "
        "CROSS JOIN LATERAL (SELECT time, value FROM samples "
        "WHERE series_id = t.sid AND time <= to_timestamp(t.hi + 0.0000005) "
        "AND (t.lo IS NULL OR time >= to_timestamp(t.lo)) "
        "ORDER BY time DESC LIMIT t.lim) s",
        [r[0] for r in ranges],
        [r[1] for r in ranges],
        [r[2] for r in ranges],
        [r[3] for r in ranges],
    )
    out: list[list[tuple[float, float]]] = [[] for _ in ranges]
    for r in rows:
        i = r["ord"] - 1
        lo = ranges[i][1]
        if lo is None or r["ts"] > lo + EPS:
            out[i].append((r["ts"], r["value"]))
    for points in out:
        points.sort()
    return out


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    id: int
    metric: str
    host: str
    labels: dict[str, str]


async def matching_series(
    conn: asyncpg.Connection | asyncpg.Pool,
    metric: str,
    labels: dict[str, str],
    hosts: list[str] | None,
    limit: int,
) -> list[SeriesInfo]:
    rows = await conn.fetch(
        "SELECT id, metric, host, labels::text AS labels FROM series "
        "WHERE metric = $1 AND labels @> $2::jsonb AND ($3::text[] IS NULL OR host = ANY($3)) "
        "ORDER BY host, id LIMIT $4",
        metric,
        orjson.dumps(labels).decode(),
        hosts,
        limit,
    )
    return [SeriesInfo(r["id"], r["metric"], r["host"], orjson.loads(r["labels"])) for r in rows]


async def host_last_seen(
    conn: asyncpg.Connection | asyncpg.Pool, lookback: float, also: Sequence[str]
) -> list[tuple[str, dict[str, str], float]]:
    rows = await conn.fetch(
        "SELECT host, labels::text AS labels, extract(epoch FROM last_sample)::float8 AS ts "
        "FROM hosts WHERE last_sample > now() - make_interval(secs => $1) OR host = ANY($2)",
        lookback,
        list(also),
    )
    return [(r["host"], orjson.loads(r["labels"]), r["ts"]) for r in rows]


async def series_last_seen(
    conn: asyncpg.Connection | asyncpg.Pool, series_ids: Sequence[int], lookback: float
) -> dict[int, float]:
    if not series_ids:
        return {}
    rows = await conn.fetch(
        "SELECT t.sid, (SELECT extract(epoch FROM max(time))::float8 FROM samples "
        "WHERE series_id = t.sid AND time > now() - make_interval(secs => $2)) AS ts "
        "FROM unnest($1::bigint[]) AS t(sid)",
        list(series_ids),
        lookback,
    )
    return {r["sid"]: r["ts"] for r in rows if r["ts"] is not None}


async def load_history(
    conn: asyncpg.Connection | asyncpg.Pool,
    series_ids: Sequence[int],
    start: float,
    end: float,
    resolution: str,
    max_points: int,
) -> dict[int, tuple[list[float], list[float]]]:
    """Points of several series in [start, end]: raw samples, or the average
    of each bucket of a rollup (``1m`` / ``1h``)."""
    if resolution == "raw":
        sql = (
            "SELECT series_id, extract(epoch FROM time)::float8 AS ts, value FROM samples "
            "WHERE series_id = ANY($1::bigint[]) AND time >= to_timestamp($2) "
            "AND time <= to_timestamp($3) ORDER BY series_id, time LIMIT $4"
        )
    else:
        table = {"1m": "samples_1m", "1h": "samples_1h"}[resolution]
        sql = (
            f"SELECT series_id, extract(epoch FROM bucket)::float8 AS ts, sum / count AS value "
            f"FROM {table} WHERE series_id = ANY($1::bigint[]) AND bucket >= to_timestamp($2) "
            f"AND bucket <= to_timestamp($3) AND count > 0 ORDER BY series_id, bucket LIMIT $4"
        )
    rows = await conn.fetch(sql, list(series_ids), start, end, max_points)
    out: dict[int, tuple[list[float], list[float]]] = {}
    for r in rows:
        times, values = out.setdefault(r["series_id"], ([], []))
        times.append(r["ts"])
        values.append(r["value"])
    return out


def as_jsonable(record: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


# -- membership -------------------------------------------------------------------


async def heartbeat(pool: asyncpg.Pool, member: str, alive_within: float) -> int:
    """Record ``member`` as alive; returns how many members are (seen within
    ``alive_within`` seconds), and forgets those silent for long."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO analyzer_members (member) VALUES ($1) "
            "ON CONFLICT (member) DO UPDATE SET seen_at = now()",
            member,
        )
        await conn.execute(
            "DELETE FROM analyzer_members WHERE seen_at < now() - make_interval(secs => $1)",
            alive_within * 10,
        )
        n = await conn.fetchval(
            "SELECT count(*) FROM analyzer_members "
            "WHERE seen_at > now() - make_interval(secs => $1)",
            alive_within,
        )
    return int(n)


async def leave(pool: asyncpg.Pool, member: str) -> None:
    await pool.execute("DELETE FROM analyzer_members WHERE member = $1", member)
