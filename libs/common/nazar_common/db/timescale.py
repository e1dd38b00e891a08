"""The TimescaleDB storage path.

The schema (hypertable ``samples`` in 1-day chunks, compression settings,
continuous aggregates ``samples_1m`` and hierarchical ``samples_1h``) comes
from ``migrations/0002_samples.timescaledb.sql``. This module applies what
depends on configuration, as TimescaleDB *policies* (background jobs run by
TimescaleDB's own scheduler):

- refresh of ``samples_1m`` (from ``samples``) and ``samples_1h`` (from
  ``samples_1m``);
- compression of raw chunks once late writes are unlikely;
- retention: raw chunks after ``retention.raw``, rollup chunks after
  ``retention.rollup_1m`` / ``retention.rollup_1h``.

``configure()`` is idempotent: a policy that already has the wanted settings
is kept (with its schedule and statistics), any other is replaced.
``maintain()`` has nothing to do. ``run_jobs()`` runs every Nazar policy now,
for tests and for servers whose job scheduler does not run (PGlite).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from nazar_common.db.backends import (
    MAINTENANCE_LOCK_KEY,
    MaintenanceReport,
    Retention,
    StorageBackend,
)
from nazar_common.db.migrate import Backend

log = logging.getLogger(__name__)

#: Same origin as ``backends.BUCKET_ORIGIN`` (and TimescaleDB's default).
BUCKET_ORIGIN_SQL = "TIMESTAMPTZ '2000-01-03 00:00:00+00'"

#: Relations whose policies Nazar owns, in the order ``run_jobs`` runs them:
#: minutes are refreshed before hours are built from them.
SAMPLES, ROLLUP_1M, ROLLUP_1H = "samples", "samples_1m", "samples_1h"

#: TimescaleDB procedure names of the policy kinds (``timescaledb_information.jobs.proc_name``).
REFRESH, COMPRESSION, RETENTION = (
    "policy_refresh_continuous_aggregate",
    "policy_compression",
    "policy_retention",
)

#: Nazar's policy jobs, one row per job. Continuous-aggregate policies are
#: attached to the aggregate's materialization hypertable, so it is mapped
#: back to the view name. Offsets are read from the job's JSON config and
#: cast to interval so they compare as durations, whatever their spelling.
_JOBS_SQL = """
SELECT j.job_id,
       j.proc_name,
       coalesce(ca.view_name, j.hypertable_name)::text AS relation,
       j.schedule_interval,
       (j.config ->> 'drop_after')::interval     AS drop_after,
       (j.config ->> 'compress_after')::interval AS compress_after,
       (j.config ->> 'start_offset')::interval   AS start_offset,
       (j.config ->> 'end_offset')::interval     AS end_offset
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression',
                      'policy_retention')
  AND coalesce(ca.view_schema, j.hypertable_schema) = current_schema()
  AND coalesce(ca.view_name, j.hypertable_name) IN ('samples', 'samples_1m', 'samples_1h')
"""

#: Removing a policy that does not exist is not an error (``if_exists``).
_REMOVE_SQL = {
    REFRESH: "SELECT remove_continuous_aggregate_policy($1::regclass, if_exists => true)",
    COMPRESSION: "SELECT remove_compression_policy($1::regclass, if_exists => true)",
    RETENTION: "SELECT remove_retention_policy($1::regclass, if_exists => true)",
}

#: Adding returns the new job id. Parameters: relation, the policy's
#: interval(s), then the schedule interval.
_ADD_SQL = {
    REFRESH: (
        "SELECT add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval, "
        "end_offset => $3::interval, schedule_interval => $4::interval)"
    ),
    COMPRESSION: (
        "SELECT add_compression_policy($1::regclass, compress_after => $2::interval, "
        "schedule_interval => $3::interval)"
    ),
    RETENTION: (
        "SELECT add_retention_policy($1::regclass, drop_after => $2::interval, "
        "schedule_interval => $3::interval)"
    ),
}

#: Runs one job now, in the caller's session (must not be in a transaction:
#: refreshing a continuous aggregate commits as it goes).
_RUN_JOB_SQL = "CALL run_job($1::integer)"


@dataclass(frozen=True)
class Policy:
    """One wanted policy. ``settings`` are the config keys of the job, in
    the order ``_ADD_SQL`` takes them."""

    kind: str
    relation: str
    settings: tuple[tuple[str, timedelta], ...]
    schedule: timedelta

    def matches(self, job: asyncpg.Record) -> bool:
        return job["schedule_interval"] == self.schedule and all(
            job[key] == value for key, value in self.settings
        )


class TimescaleBackend(StorageBackend):
    name: Backend = "timescaledb"

    #: Raw chunks are compressed when this old: past the window in which the
    #: ingest path accepts late samples (1 day by default), so compressed
    #: chunks are rarely written to again.
    COMPRESS_AFTER = timedelta(days=2)
    #: How far back refreshes look for changed data. TimescaleDB records
    #: every write below the materialized range (invalidation log) but a
    #: policy only re-materializes inside its window: it covers the late-sample
    #: window (NAZAR_ACCEPT_PAST, 1 day by default) plus margin. Only
    #: invalidated ranges are recomputed, so a wide window costs little once
    #: the aggregate is filled.
    REFRESH_LOOKBACK = timedelta(days=1, hours=2)
    #: Buckets this close to now are still filling; refreshes leave them.
    REFRESH_LAG_1M = timedelta(minutes=1)
    REFRESH_LAG_1H = timedelta(hours=1)
    REFRESH_EVERY_1M = timedelta(minutes=1)
    REFRESH_EVERY_1H = timedelta(minutes=10)
    #: How often retention and compression jobs look for work.
    HOUSEKEEPING_EVERY = timedelta(hours=1)

    def __init__(self, *, refresh_lookback: timedelta | None = None) -> None:
        # Set it above the ingest's accept_past if that is raised. A shorter
        # one makes the first refresh of an empty aggregate cheaper (policy
        # refreshes of TimescaleDB 2.23 walk an invalid range in batches of
        # about one bucket): the tests on the slow WASM server use 6 hours.
        self.refresh_lookback = refresh_lookback or self.REFRESH_LOOKBACK

    def bucket_sql(self, interval_param: str, column: str) -> str:
        return f"time_bucket({interval_param}, {column}, {BUCKET_ORIGIN_SQL})"

    async def prepare_write(self, conn: asyncpg.Connection, min_time: datetime) -> None:
        """Nothing to prepare: chunks are created on insert and TimescaleDB
        invalidates the continuous aggregates by itself."""

    def policies(self, retention: Retention) -> list[Policy]:
        """The policies wanted for ``retention``."""
        # A refresh window must stay inside the data its source keeps: a
        # refresh over a range whose source chunks were dropped would empty
        # the aggregate there. It must also span at least two buckets.
        start_1m = max(
            min(self.refresh_lookback, retention.raw - self.HOUSEKEEPING_EVERY),
            self.REFRESH_LAG_1M + 2 * timedelta(minutes=1),
        )
        start_1h = max(
            min(
                self.refresh_lookback + timedelta(hours=2), retention.rollup_1m - timedelta(hours=1)
            ),
            self.REFRESH_LAG_1H + 2 * timedelta(hours=1),
        )
        wanted = [
            Policy(
                REFRESH,
                ROLLUP_1M,
                (("start_offset", start_1m), ("end_offset", self.REFRESH_LAG_1M)),
                self.REFRESH_EVERY_1M,
            ),
            Policy(
                REFRESH,
                ROLLUP_1H,
                (("start_offset", start_1h), ("end_offset", self.REFRESH_LAG_1H)),
                self.REFRESH_EVERY_1H,
            ),
        ]
        # Compressing a chunk that retention drops first would be wasted work.
        if retention.raw > self.COMPRESS_AFTER:
            wanted.append(
                Policy(
                    COMPRESSION,
                    SAMPLES,
                    (("compress_after", self.COMPRESS_AFTER),),
                    self.HOUSEKEEPING_EVERY,
                )
            )
        for relation, keep in (
            (SAMPLES, retention.raw),
            (ROLLUP_1M, retention.rollup_1m),
            (ROLLUP_1H, retention.rollup_1h),
        ):
            wanted.append(
                Policy(RETENTION, relation, (("drop_after", keep),), self.HOUSEKEEPING_EVERY)
            )
        return wanted

    async def configure(self, conn: asyncpg.Connection, retention: Retention) -> None:
        wanted = self.policies(retention)
        async with conn.transaction():
            # Replicas starting together apply the policies one at a time.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MAINTENANCE_LOCK_KEY)
            jobs = await conn.fetch(_JOBS_SQL)
            for kind in (REFRESH, COMPRESSION, RETENTION):
                for relation in (SAMPLES, ROLLUP_1M, ROLLUP_1H):
                    existing = [
                        j for j in jobs if j["proc_name"] == kind and j["relation"] == relation
                    ]
                    policy = next(
                        (p for p in wanted if p.kind == kind and p.relation == relation), None
                    )
                    if policy is None and not existing:
                        continue
                    if policy is not None and len(existing) == 1 and policy.matches(existing[0]):
                        continue
                    if existing:
                        await conn.execute(_REMOVE_SQL[kind], relation)
                    if policy is not None:
                        job_id = await conn.fetchval(
                            _ADD_SQL[kind],
                            relation,
                            *(value for _, value in policy.settings),
                            policy.schedule,
                        )
                        log.info(
                            "timescaledb policy set",
                            extra={
                                "policy": kind,
                                "relation": relation,
                                "job_id": job_id,
                                "settings": {k: str(v) for k, v in policy.settings},
                            },
                        )
                    else:
                        log.info(
                            "timescaledb policy removed",
                            extra={"policy": kind, "relation": relation},
                        )

    async def maintain(
        self,
        conn: asyncpg.Connection,
        retention: Retention,
        *,
        now: datetime | None = None,
        accept_past: timedelta = timedelta(days=1),
        accept_future: timedelta = timedelta(hours=1),
    ) -> MaintenanceReport:
        """Nothing to do: TimescaleDB's job scheduler runs the policies, and
        chunks are created on insert."""
        return MaintenanceReport()

    async def jobs(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """Nazar's policy jobs (``job_id``, ``proc_name``, ``relation``,
        ``schedule_interval`` and the config offsets as intervals), in the
        order ``run_jobs`` runs them."""
        order = {
            (REFRESH, ROLLUP_1M): 0,
            (REFRESH, ROLLUP_1H): 1,
            (COMPRESSION, SAMPLES): 2,
            (RETENTION, SAMPLES): 3,
            (RETENTION, ROLLUP_1M): 4,
            (RETENTION, ROLLUP_1H): 5,
        }
        rows = await conn.fetch(_JOBS_SQL)
        return sorted(
            rows, key=lambda r: (order.get((r["proc_name"], r["relation"]), 9), r["job_id"])
        )

    async def run_jobs(self, conn: asyncpg.Connection) -> list[int]:
        """Run every Nazar policy job now (refresh 1m, refresh 1h, compression,
        retention) and return their ids. For tests and for servers where
        TimescaleDB's background workers do not run. Call it outside a
        transaction."""
        ran = []
        for job in await self.jobs(conn):
            await conn.execute(_RUN_JOB_SQL, job["job_id"])
            ran.append(job["job_id"])
        return ran
