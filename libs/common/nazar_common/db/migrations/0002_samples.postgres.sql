-- Plain PostgreSQL storage: range partitions by day, rollup tables.
-- Partitions are created ahead of time and dropped for retention by
-- PostgresBackend.maintain (nazar_common.db.backends); rollups are refreshed
-- incrementally there.

CREATE TABLE samples (
    time      timestamptz NOT NULL,
    series_id bigint NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX samples_series_time_idx ON samples (series_id, time);
-- Rollup refreshes read recent time ranges of a partition: a BRIN index
-- finds them cheaply since rows arrive roughly in time order.
CREATE INDEX samples_time_brin_idx ON samples USING brin (time);

-- Rollups keep sum and count (avg = sum / count) so coarser buckets and
-- re-aggregation over any step stay exact.
CREATE TABLE samples_1m (
    bucket    timestamptz NOT NULL,
    series_id bigint NOT NULL,
    count     bigint NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE samples_1h (
    bucket    timestamptz NOT NULL,
    series_id bigint NOT NULL,
    count     bigint NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);

-- Everything before the watermark has been rolled up, except the ranges
-- listed in rollup_invalidations (late samples written below the watermark).
CREATE TABLE rollup_watermarks (
    resolution text PRIMARY KEY,
    watermark  timestamptz NOT NULL
);
CREATE TABLE rollup_invalidations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    start_time timestamptz NOT NULL,
    end_time   timestamptz NOT NULL
);
