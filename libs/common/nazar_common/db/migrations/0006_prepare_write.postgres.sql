-- nazar_prepare_write: what a write transaction does before inserting
-- samples (see StorageBackend.prepare_write in nazar_common.db.backends).
--
-- Plain PostgreSQL: take the rollup lock shared, so the refresher cannot
-- move the 1-minute rollup watermark during the write, and when samples
-- older than the watermark arrive, record their range for the refresher
-- (rollup_invalidations, see 0002).
CREATE FUNCTION nazar_prepare_write(p_min_time timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    watermark timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(336103887409);  -- backends.ROLLUP_LOCK_KEY
    SELECT w.watermark INTO watermark FROM rollup_watermarks w WHERE w.resolution = '1m';
    IF watermark IS NOT NULL AND p_min_time < watermark THEN
        INSERT INTO rollup_invalidations (start_time, end_time) VALUES (p_min_time, watermark);
    END IF;
END
$$;
