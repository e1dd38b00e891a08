-- An idempotency key sent by a client is stored with a digest of its
-- request's body, so that the key reused for a different body is refused
-- (422) instead of being acknowledged as a duplicate while the new samples
-- are dropped. Keys Nazar derives itself (from the payload, or generated)
-- have no digest.
ALTER TABLE ingest_requests ADD COLUMN body_hash bytea;

-- nazar_write_samples (0007) with the keys' digests, p_hashes (aligned with
-- p_keys; NULL for none).
DROP FUNCTION nazar_write_samples(
    text[], timestamptz, bigint[], float8[], float8[], text, text, uuid, bytea
);

CREATE FUNCTION nazar_write_samples(
    p_keys        text[],
    p_min_time    timestamptz,
    p_series      bigint[],
    p_times       float8[],
    p_values      float8[],
    p_exchange    text,
    p_routing_key text,
    p_message_id  uuid,
    p_body        bytea,
    p_hashes      bytea[] DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    fresh bigint;
BEGIN
    INSERT INTO ingest_requests (key, body_hash)
    SELECT k, h FROM unnest(p_keys, p_hashes) AS t(k, h) WHERE k IS NOT NULL ORDER BY k
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
