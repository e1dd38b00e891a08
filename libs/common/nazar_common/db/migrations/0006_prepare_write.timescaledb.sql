-- nazar_prepare_write: what a write transaction does before inserting
-- samples (see StorageBackend.prepare_write in nazar_common.db.backends).
--
-- TimescaleDB: nothing. Chunks are created on insert and the continuous
-- aggregates are invalidated by TimescaleDB itself.
CREATE FUNCTION nazar_prepare_write(p_min_time timestamptz) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
