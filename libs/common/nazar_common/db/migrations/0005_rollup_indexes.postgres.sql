-- Indexes on the rollups' bucket alone. The primary keys (series_id, bucket)
-- serve per-series reads; reads of one time window across all series (the
-- hosts' sample rates over the 1-minute rollup, the 1-hour rollup's refresh
-- from the 1-minute one) need the bucket first. Created on the partitioned
-- parents, so every existing and future partition gets its own index.
--
-- Runs inside the migrator's transaction (CONCURRENTLY is not available on
-- partitioned tables): writes to the rollups wait while existing partitions
-- are indexed.

CREATE INDEX samples_1m_bucket_idx ON samples_1m (bucket);
CREATE INDEX samples_1h_bucket_idx ON samples_1h (bucket);
