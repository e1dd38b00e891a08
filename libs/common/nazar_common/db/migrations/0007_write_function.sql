-- nazar_write_samples: one ingest group commit in one statement.
--
-- Ingest batches the requests that arrive together into one transaction
-- (group commit). Sent as separate statements, that transaction costs six
-- round trips (BEGIN, idempotency keys, rollup watermark, samples, outbox,
-- COMMIT); as this one function call in autocommit mode it costs one, so a
-- busy event loop delays each commit once instead of six times.
--
-- In one transaction, it:
--   1. records the requests' idempotency keys (p_keys, distinct). If any
--      was already recorded, it raises SQLSTATE 'NZ409' and writes
--      nothing: the caller then sorts out the duplicates with separate
--      statements (a retried request is rare);
--   2. calls the storage backend's nazar_prepare_write (0006);
--   3. inserts the samples, given as three arrays (Unix seconds, series id,
--      value);
--   4. inserts the outbox row that carries the batch to the analysis queue.
CREATE FUNCTION nazar_write_samples(
    p_keys        text[],
    p_min_time    timestamptz,
    p_series      bigint[],
    p_times       float8[],
    p_values      float8[],
    p_exchange    text,
    p_routing_key text,
    p_message_id  uuid,
    p_body        bytea
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    fresh bigint;
BEGIN
    INSERT INTO ingest_requests (key)
    SELECT k FROM unnest(p_keys) AS t(k) ORDER BY k
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS fresh = ROW_COUNT;
    IF fresh <> coalesce(cardinality(p_keys), 0) THEN
        RAISE EXCEPTION 'an ingest request of this group was already stored'
            USING ERRCODE = 'NZ409';
    END IF;

    PERFORM nazar_prepare_write(p_min_time);

    INSERT INTO samples (time, series_id, value)
    SELECT to_timestamp(t), s, v FROM unnest(p_times, p_series, p_values) AS u(t, s, v);

    INSERT INTO outbox (exchange, routing_key, message_id, body)
    VALUES (p_exchange, p_routing_key, p_message_id, p_body);
END
$$;

-- Outbox bodies are written once and read once, and large ones (sample
-- batches) arrive compressed already (LZ4, see nazar_common.schemas.wire):
-- stored without a second compression, which would only cost CPU.
ALTER TABLE outbox ALTER COLUMN body SET STORAGE EXTERNAL;
