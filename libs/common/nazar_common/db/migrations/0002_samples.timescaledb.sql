-- TimescaleDB storage: the same tables readers see on plain PostgreSQL
-- (0002_samples.postgres.sql), built from TimescaleDB features instead.
-- Retention, compression and refresh *policies* are not set here: they
-- depend on configuration and are (re)applied at every start by
-- nazar_common.db.timescale.TimescaleBackend.configure().
--
-- Runs inside the migrator's transaction. Creating a continuous aggregate
-- that materializes data cannot run in a transaction block, so both are
-- created WITH NO DATA; the refresh policies fill them.

CREATE TABLE samples (
    time      timestamptz NOT NULL,
    series_id bigint NOT NULL,
    value     double precision NOT NULL
);
-- One chunk per day, like the plain path's day partitions. The default
-- (time DESC) index stays: continuous-aggregate refreshes scan by time.
SELECT create_hypertable('samples', by_range('time', INTERVAL '1 day'));
CREATE INDEX samples_series_time_idx ON samples (series_id, time DESC);

-- Compressed chunks store each series' values together, newest first.
ALTER TABLE samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time DESC'
);

-- Rollups: same columns as the plain rollup tables. Buckets use the plain
-- path's origin (a Monday, also TimescaleDB's default) so both paths put a
-- sample in the same bucket. materialized_only: rows appear when refreshed,
-- as on the plain path (no real-time union with raw data at read time).
CREATE MATERIALIZED VIEW samples_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       series_id,
       count(*)               AS count,
       sum(value)             AS sum,
       min(value)             AS min,
       max(value)             AS max,
       last(value, time)      AS last
FROM samples
GROUP BY time_bucket(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00'), series_id
WITH NO DATA;

-- Hierarchical: hours are aggregated from minutes (sum of counts and sums
-- stays exact; last of the hour is the last minute's last).
CREATE MATERIALIZED VIEW samples_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
       series_id,
       sum(count)::bigint     AS count,
       sum(sum)               AS sum,
       min(min)               AS min,
       max(max)               AS max,
       last(last, bucket)     AS last
FROM samples_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'), series_id
WITH NO DATA;

-- Chunk widths of the rollups match the plain path's partitions, so
-- retention drops them at the same granularity.
SELECT set_chunk_time_interval('samples_1m', INTERVAL '1 day');
SELECT set_chunk_time_interval('samples_1h', INTERVAL '28 days');
