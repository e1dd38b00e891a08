-- Nothing to do on TimescaleDB: this version exists because the plain
-- PostgreSQL path adds indexes on the rollups' bucket
-- (0005_rollup_indexes.postgres.sql). The continuous aggregates samples_1m
-- and samples_1h (0002_samples.timescaledb.sql) already have them: their
-- materialization hypertables are created with a default index on the
-- time column, (bucket DESC), and one per GROUP BY column combined with the
-- bucket, (series_id, bucket DESC).

SELECT 1;
